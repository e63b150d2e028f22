"""Control commands: validate, update the registry, fan tasks out to every events partition.

The control topic has one partition and one writer, so commands apply in order. A command
that changes memberships becomes a *job*: one task message per events partition, carried out
by that partition's owner inside its ordered processing; each partition reports back on the
control topic and the reply goes out once all have. Registry changes, the control offset and
the messages to publish (tasks, replies) commit atomically, like the partitions' state.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis

from segment_rules import DefinitionError
from state import FencedError, RegistryBatch, RegistryMeta, StoredSegment

from .. import metrics
from .._suggest import did_you_mean
from ..analyses import AnalysisRunner
from ..clock import now_ms
from ..errors import BadMessage, CommandError, field_error
from ..failures import is_infrastructure
from ..messages import Incoming, Reply, TaskReport, decode_map
from ..publisher import Publisher
from ..settings import Settings
from ..shard import deliver, take_over
from . import analyses, erasure, exports, jobs, lifecycle, segments
from .context import CommandEnv, Context

__all__ = ["ControlRuntime"]

log = logging.getLogger(__name__)


class ControlRuntime(CommandEnv):
    """The control topic's one consumer: loads the registry, runs each command, commits."""

    def __init__(
        self, settings: Settings, redis: Redis, publisher: Publisher, partitions: int
    ) -> None:
        super().__init__(settings, redis, partitions)
        self.publisher = publisher
        self.lock = asyncio.Lock()
        self._meta: RegistryMeta | None = None
        self._epoch = 0
        self._segments: dict[str, StoredSegment] = {}
        self.analyses = AnalysisRunner(settings, self.reads, self.store, publisher)
        """Runs the analysis jobs (`streams.control.analyses`) once their command committed."""
        for family in (segments, lifecycle, jobs, exports, erasure, analyses):
            clash = self.handlers.keys() & family.HANDLERS.keys()
            assert not clash, f"commands defined twice: {sorted(clash)}"
            self.handlers.update(family.HANDLERS)

    async def _load(self) -> RegistryMeta:
        meta = await self.store.load_meta()
        ver, self._epoch = await take_over(self.store, meta.ver, self.publisher, "registry")
        meta = RegistryMeta(ver, meta.offset)
        self._segments = await self.store.segments()
        self._meta = meta
        self._count_active()
        await self._resume_analyses()
        return meta

    async def _resume_analyses(self) -> None:
        """Run again the analysis jobs a previous owner left unfinished (they report once: the
        first report finishes the job, a repeat is ignored)."""
        ids = await self.store.recent_job_ids(0, 500)
        for job in await self.store.jobs(ids):
            if job.command in analyses.ANALYSES and job.finished_at is None:
                self.analyses.start(job)

    def _count_active(self) -> None:
        metrics.ACTIVE_SEGMENTS.set(sum(s.active for s in self._segments.values()))

    async def process(self, messages: Sequence[Incoming]) -> None:
        """Apply commands in order. Raises only infrastructure errors (the agent retries):
        a command that fails otherwise is answered with an `internal` error and skipped."""
        async with self.lock:
            for message in messages:
                for _attempt in range(2):
                    meta = self._meta or await self._load()
                    if message.offset <= meta.offset:
                        break
                    try:
                        await self._process_one(meta, message)
                        break
                    except FencedError as exc:
                        log.warning("%s; reloading the registry", exc)
                        self._meta = None

    async def _process_one(self, meta: RegistryMeta, message: Incoming) -> None:
        now = now_ms()
        batch = self._batch(meta, message, now)
        await self._forget_old(batch, now)
        ctx = Context(self._segments, batch, now)
        try:
            await self._handle(ctx, message)
            ver = await self.store.commit(meta.ver, batch)
        except FencedError:
            raise
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            # The command's own fault (or a bug it triggers): none of its registry changes
            # are kept; its offset and request id are, with an `internal` error reply.
            batch = self._batch(meta, message, now)
            ctx = Context(self._segments, batch, now)
            self._internal_error(ctx, message, exc)
            ver = await self.store.commit(meta.ver, batch)
        self._meta = RegistryMeta(ver, batch.offset)
        self._segments = ctx.segments
        self._count_active()
        for job in batch.jobs.values():  # committed: their analyses may start
            if job.command in analyses.ANALYSES and job.finished_at is None and not job.done:
                self.analyses.start(job)
        if batch.outbox:
            try:
                await deliver(self.store, self.publisher, [batch.outbox], self._epoch)
            except BaseException:
                # Committed but maybe not delivered: the reload publishes the whole outbox
                # again before the next command (never trim what Kafka did not acknowledge).
                self._meta = None
                raise

    def _batch(self, meta: RegistryMeta, message: Incoming, now: int) -> RegistryBatch:
        batch = RegistryBatch(self.store, meta)
        batch.offset = message.offset
        batch.now = now
        return batch

    def _internal_error(self, ctx: Context, message: Incoming, exc: Exception) -> None:
        """Answer a command whose handling raised unexpectedly; record its request id so that a
        redelivery is not answered twice."""
        where = f"{self.settings.control_topic}[{message.partition}]@{message.offset}"
        try:
            name = decode_map(message.value, "command").get("command")
        except BadMessage:
            name = None
        request_id = _salvage_request_id(message.value)
        log.error(
            "%s: command %r (request_id %r) failed; answered 'internal', nothing changed",
            where,
            name,
            request_id,
            exc_info=exc,
        )
        metrics.COMMAND_FAILURES.labels("internal").inc()
        if request_id is None:
            return  # a partition's or the exporter's report: nobody waits for a reply
        ctx.batch.requests[request_id] = _digest(message.value)
        shown = name if isinstance(name, str) else type(name).__name__
        error = {
            "code": "internal",
            "message": f"command {shown[:100]!r} failed with an internal error "
            f"({type(exc).__name__}) and changed nothing; the worker log has the details "
            f"(request_id {request_id!r})",
        }
        self.reply(ctx, Reply.failure(request_id, error))

    async def _forget_old(self, batch: RegistryBatch, now: int) -> None:
        """Bound the registry: forget request ids and jobs past their retention."""
        keys = self.store.keys
        batch.forget_requests = await self.store.older_than(
            keys.requests_by_time, now - int(self.settings.request_retention_s * 1000)
        )
        batch.forget_jobs = await self.store.older_than(
            keys.jobs_by_time, now - int(self.settings.job_retention_s * 1000)
        )

    # -- dispatch -------------------------------------------------------------------------
    async def _handle(self, ctx: Context, message: Incoming) -> None:
        where = f"{self.settings.control_topic}[{message.partition}]@{message.offset}"
        request_id: str | None = None
        try:
            command = decode_map(message.value, "command")
            if command.get("command") == "_task_done":
                await self._task_done(ctx, command)
                return
            if command.get("command") == "_export_done":  # the exporter's report (exports)
                await exports.export_done(self, ctx, command)
                return
            if command.get("command") == "_analysis_done":  # an analysis job's report
                await analyses.analysis_done(self, ctx, command)
                return
            raw_id = command.get("request_id")
            if not isinstance(raw_id, str) or not raw_id:
                raise field_error(
                    raw_id,
                    f"command has no usable 'request_id' (got {raw_id!r}); every command needs "
                    "a non-empty string request_id so that its reply can be matched",
                    "request_id",
                )
            request_id = raw_id
            digest = _digest(message.value)
            seen = ctx.batch.requests.get(request_id) or await self.store.request_digest(request_id)
            if seen == digest:
                log.info("%s: request %r already applied, ignored", where, request_id)
                return
            if seen is not None:
                raise CommandError(
                    "duplicate_request_id",
                    f"request_id {request_id!r} was already used by a different command; "
                    "use a fresh request_id for every command",
                    "request_id",
                )
            ctx.batch.requests[request_id] = digest
            name = command.get("command")
            handler = self.handlers.get(name) if isinstance(name, str) else None
            if handler is None:
                raise CommandError(
                    "unknown_command",
                    f"unknown command {name!r}{did_you_mean(name, self.handlers)}; "
                    f"expected one of {', '.join(self.handlers)}",
                    "command",
                )
            result = await handler(self, ctx, command, request_id)
            if result is not None:
                self.reply(ctx, Reply.success(request_id, result))
        except BadMessage as exc:
            log.warning("%s: bad command: %s", where, exc.message)
            request_id = request_id or _salvage_request_id(message.value)
            self.reply(ctx, Reply.failure(request_id, exc.to_dict()))
        except CommandError as exc:
            log.info("%s: command refused: %s", where, exc.message)
            self.reply(ctx, Reply.failure(request_id, exc.to_dict()))
        except DefinitionError as exc:
            path = f"segment.{exc.path}" if exc.path else "segment"
            log.info("%s: invalid definition at %s: %s", where, path, exc.message)
            error = {"code": exc.code, "message": exc.message, "path": path}
            self.reply(ctx, Reply.failure(request_id, error))

    # -- job completion -------------------------------------------------------------------
    async def _task_done(self, ctx: Context, raw: dict[str, Any]) -> None:
        try:
            report = TaskReport.decode(raw)
        except BadMessage as exc:
            log.warning("malformed task report ignored: %s", exc.message)
            return
        job = ctx.batch.jobs.get(report.job_id) or await self.store.job(report.job_id)
        if job is None:
            log.warning("task report for unknown job %r ignored", report.job_id[:100])
            return
        problem = jobs.report_problem(job, report)
        if problem is not None:
            log.warning("malformed task report for job %r ignored: %s", job.job_id, problem)
            return
        if report.partition in job.done or job.finished_at is not None:
            log.info("repeated task report of job %s ignored", job.job_id)
            return
        job = jobs.fold_report(job, report, ctx.now)
        ctx.batch.jobs[job.job_id] = job
        if job.finished_at is None:
            return
        done = job.done
        totals = {k: sum(s[k] for s in done.values()) for k in ("evaluated", "entered", "exited")}
        log.info(
            "%s job %s finished (%s): %d partitions, %s",
            job.command,
            job.job_id,
            job.status,
            job.partitions,
            totals,
        )
        members = await self.reads.member_counts(
            sid for sid in job.segment_ids if sid in ctx.segments and ctx.segments[sid].active
        )
        summary = {"job_id": job.job_id, "partitions": job.partitions, **totals}
        result = {
            **job.reply,
            "job": {**summary, "status": job.status},
            "members": members,
            "tasks": jobs.outcome(job),
        }
        if job.command == "forget":
            result["erased"] = any(d.get("erased") is True for d in done.values())
            result["exited_segments"] = sorted(
                {s for d in done.values() for s in d.get("exited_segments") or ()}
            )
        # exports: a scheduled refresh ended; the exports containing its segments run now
        ran = await exports.after_refresh(self, ctx, job)
        if ran:
            result["exports"] = ran
        self.reply(ctx, Reply.success(job.request_id, result))


def _salvage_request_id(value: bytes | None) -> str | None:
    """The request id of a command that does not decode as such (invalid UTF-8 somewhere in
    it, say), when a lenient reading finds a usable one: its sender still gets a reply."""
    if not value:
        return None
    try:
        if value.lstrip()[:1] == b"{":
            found = json.loads(value.decode("utf-8", "surrogateescape")).get("request_id")
        else:
            lenient = msgpack.unpackb(
                value, raw=False, strict_map_key=False, unicode_errors="surrogateescape"
            )
            found = lenient.get("request_id") if isinstance(lenient, dict) else None
        if isinstance(found, str) and found and found.encode():
            return found
    except Exception:  # anything unreadable: no request id to answer
        return None
    return None


def _digest(value: bytes | None) -> bytes:
    """What identifies a command's body: a redelivery with the same request id matches it."""
    return hashlib.blake2b(value or b"", digest_size=16).digest()
