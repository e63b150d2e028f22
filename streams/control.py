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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis

from segment_rules import (
    DefinitionError,
    Limits,
    SegmentDefinition,
    check_references,
    parse_definition,
    topological_order,
)
from segment_rules.catalog import dependencies
from state import (
    FencedError,
    Job,
    KeySpace,
    OutboxRecord,
    RegistryBatch,
    RegistryMeta,
    RegistryStore,
    StoredSegment,
    Task,
)

from . import erasure, export_commands, jobs, lifecycle, metrics
from ._suggest import did_you_mean
from .engine import NO_LIMITS
from .errors import BadMessage, CommandError
from .infrastructure import is_infrastructure
from .messages import TASK_HEADER, decode_map, encode
from .partitions import Incoming, now_ms
from .publisher import Publisher
from .settings import Settings
from .task_auth import task_digest

__all__ = ["CORE_COMMANDS", "CommandHandler", "Context", "ControlRuntime"]

log = logging.getLogger(__name__)

CORE_COMMANDS = ("create", "update", "delete", "activate", "deactivate", "refresh")

CommandHandler = Callable[
    ["ControlRuntime", "Context", dict[str, Any], str], Awaitable[dict[str, Any] | None]
]
"""A command beyond the core ones: returns the reply's result now, or None when it started a
job whose completion replies (see `ControlRuntime.start_job`)."""


class Context:
    """One command's view: the registry as it will be after this command commits."""

    def __init__(self, segments: dict[str, StoredSegment], batch: RegistryBatch, now: int):
        self.segments = dict(segments)
        self.batch = batch
        self.now = now

    def put(self, segment: StoredSegment) -> None:
        self.segments[segment.segment_id] = segment
        self.batch.segments[segment.segment_id] = segment

    def drop(self, segment_id: str) -> None:
        del self.segments[segment_id]
        self.batch.segments[segment_id] = None


class ControlRuntime:
    def __init__(
        self, settings: Settings, redis: Redis, publisher: Publisher, partitions: int
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.publisher = publisher
        self.partitions = partitions
        self.keyspace = KeySpace(settings.key_prefix)
        self.store = RegistryStore(redis, self.keyspace)
        self.limits = Limits(
            max_conditions=settings.max_conditions,
            max_depth=settings.max_depth,
            max_window_ms=settings.history_max_age_ms,
        )
        self.lock = asyncio.Lock()
        self._meta: RegistryMeta | None = None
        self._epoch = 0
        self._segments: dict[str, StoredSegment] = {}
        self._parsed: dict[tuple[str, int, int], SegmentDefinition] = {}
        self.handlers: dict[str, CommandHandler] = {
            name: getattr(type(self), f"_cmd_{name}") for name in CORE_COMMANDS
        }
        self.handlers.update(jobs.HANDLERS)
        self.handlers.update(lifecycle.HANDLERS)
        self.handlers.update(export_commands.HANDLERS)
        self.handlers.update(erasure.HANDLERS)

    async def _load(self) -> RegistryMeta:
        meta = await self.store.load_meta()
        ver, self._epoch = await self.store.claim(meta.ver)
        meta = RegistryMeta(ver, meta.offset)
        self._segments = await self.store.segments()
        pending = await self.store.outbox()
        if pending:
            await self.publisher.publish(pending)
            await self.store.trim_outbox(len(pending), self._epoch)
        self._meta = meta
        self._count_active()
        return meta

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
        if batch.outbox:
            try:
                await self.publisher.publish(batch.outbox)
            except BaseException:
                # Committed but maybe not delivered: the reload publishes the whole outbox
                # again before the next command (never trim what Kafka did not acknowledge).
                self._meta = None
                raise
            await self.store.trim_outbox(len(batch.outbox), self._epoch)

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
        self.reply(ctx, request_id, {"ok": False, "error": error})

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
                await export_commands.export_done(self, ctx, command)
                return
            raw_id = command.get("request_id")
            if not isinstance(raw_id, str) or not raw_id:
                raise CommandError(
                    "missing_field" if raw_id is None else "wrong_type",
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
                self.reply(ctx, request_id, {"ok": True, "result": result})
        except BadMessage as exc:
            log.warning("%s: bad command: %s", where, exc.reason)
            request_id = request_id or _salvage_request_id(message.value)
            self.reply(
                ctx, request_id, {"ok": False, "error": {"code": exc.code, "message": exc.reason}}
            )
        except CommandError as exc:
            log.info("%s: command refused: %s", where, exc.message)
            self.reply(ctx, request_id, {"ok": False, "error": exc.to_reply()})
        except DefinitionError as exc:
            path = f"segment.{exc.path}" if exc.path else "segment"
            log.info("%s: invalid definition at %s: %s", where, path, exc.message)
            error = {"code": exc.code, "message": exc.message, "path": path}
            self.reply(ctx, request_id, {"ok": False, "error": error})

    def reply(self, ctx: Context, request_id: str | None, body: dict[str, Any]) -> None:
        reply = {"request_id": request_id, **body}
        key = request_id.encode() if request_id is not None else None
        ctx.batch.outbox.append(OutboxRecord(self.settings.replies_topic, key, encode(reply)))

    # -- helpers --------------------------------------------------------------------------
    def parsed_defs(self, segments: dict[str, StoredSegment]) -> dict[str, SegmentDefinition]:
        parsed = {}
        for sid, seg in segments.items():
            key = (sid, seg.version, seg.created_at)  # an id can be deleted and created again
            if key not in self._parsed:
                self._parsed[key] = parse_definition(seg.definition, NO_LIMITS)
            parsed[sid] = self._parsed[key]
        return parsed

    def existing(self, ctx: Context, command: dict[str, Any]) -> StoredSegment:
        segment_id = command.get("segment_id")
        if not isinstance(segment_id, str):
            raise CommandError(
                "missing_field" if segment_id is None else "wrong_type",
                f"'segment_id' must be a segment id string, got {segment_id!r}",
                "segment_id",
            )
        return self.lookup(ctx, segment_id, "segment_id")

    def lookup(self, ctx: Context, segment_id: str, path: str) -> StoredSegment:
        segment = ctx.segments.get(segment_id)
        if segment is None:
            raise CommandError(
                "not_found",
                f"no segment {segment_id!r}{did_you_mean(segment_id, ctx.segments)}",
                path,
            )
        return segment

    def definition(self, ctx: Context, command: dict[str, Any]) -> SegmentDefinition:
        raw = command.get("segment")
        if not isinstance(raw, dict):
            raise CommandError(
                "missing_field" if raw is None else "wrong_type",
                f"'segment' must be a segment definition object, got {type(raw).__name__}",
                "segment",
            )
        return parse_definition(raw, self.limits)

    def check_active_limit(self, ctx: Context) -> None:
        active = sum(s.active for s in ctx.segments.values())
        if active >= self.settings.max_active_segments:
            raise CommandError(
                "limit_exceeded",
                f"{active} segments are active, the limit is "
                f"{self.settings.max_active_segments} (LS_MAX_ACTIVE_SEGMENTS); "
                "deactivate one first",
            )

    def inactive_deps(self, ctx: Context, defn: SegmentDefinition) -> list[str]:
        return [
            f"uses inactive segment {dep!r}: in_segment is false for every customer until "
            "it is activated"
            for dep in sorted(dependencies(defn))
            if dep in ctx.segments and not ctx.segments[dep].active
        ]

    def start_job(
        self,
        ctx: Context,
        request_id: str,
        command: str,
        cause: str,
        apply: list[StoredSegment],
        remove: list[str],
        reply: dict[str, Any],
        skipped: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Record a job with one task per segment and send its task to every partition.

        `skipped`: segments of the command that get a Skipped task and no work (the reason
        as its warning); `extra`: more fields of the task message (forget: `customer_id`).
        Returns the job id; the reply goes out when all partitions report. The job records
        the task message's digest: partitions carry out only that message (`task_auth`).
        """
        job_id = uuid.uuid4().hex
        segment_ids = tuple(s.segment_id for s in apply) + tuple(remove)
        warnings = reply.get("warnings") or []
        tasks = {sid: Task(sid, warnings=tuple(warnings)) for sid in segment_ids}
        for sid, reason in (skipped or {}).items():
            tasks[sid] = jobs.skipped_task(sid, reason, ctx.now)
        task = encode(
            {
                "job_id": job_id,
                "action": command,
                "cause": cause,
                "segments": [
                    {"id": s.segment_id, "version": s.version, "definition": s.definition}
                    for s in apply
                ],
                "remove": remove,
                "cancelable": command in jobs.CANCELABLE,
                **(extra or {}),
            }
        )
        ctx.batch.jobs[job_id] = Job(
            job_id,
            request_id,
            command,
            segment_ids,
            self.partitions,
            ctx.now,
            reply,
            tasks=tasks,
            task_digest=task_digest(task),
        )
        for partition in range(self.partitions):
            ctx.batch.outbox.append(
                OutboxRecord(
                    self.settings.events_topic, b"", task, partition, ((TASK_HEADER, b"1"),)
                )
            )
        return job_id

    # -- commands -------------------------------------------------------------------------
    async def _cmd_create(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        defn = self.definition(ctx, command)
        if defn.id in ctx.segments:
            raise CommandError(
                "already_exists",
                f"segment {defn.id!r} already exists; use 'update' to change it or pick another id",
                "segment.id",
            )
        check_references(self.parsed_defs(ctx.segments), defn)
        activate = command.get("activate", False)
        if not isinstance(activate, bool):
            raise CommandError(
                "wrong_type", f"'activate' must be true or false, got {activate!r}", "activate"
            )
        if activate:
            self.check_active_limit(ctx)
        raw = command["segment"]
        segment = StoredSegment(defn.id, raw, 1, activate, ctx.now, ctx.now)
        ctx.put(segment)
        result: dict[str, Any] = {"segment": segment.to_dict()}
        if not activate:
            return result
        result["warnings"] = self.inactive_deps(ctx, defn)
        self.start_job(ctx, request_id, "activate", "activate", [segment], [], result)
        return None

    async def _cmd_update(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        defn = self.definition(ctx, command)
        old = self.lookup(ctx, defn.id, "segment.id")
        others = {k: v for k, v in self.parsed_defs(ctx.segments).items() if k != defn.id}
        check_references(others, defn)
        segment = old.with_changes(
            definition=command["segment"], version=old.version + 1, modified_at=ctx.now
        )
        ctx.put(segment)
        result: dict[str, Any] = {"segment": segment.to_dict()}
        if not segment.active:
            return result
        result["warnings"] = self.inactive_deps(ctx, defn)
        self.start_job(ctx, request_id, "update", "update", [segment], [], result)
        return None

    async def _cmd_delete(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        segment = self.existing(ctx, command)
        users = sorted(
            sid
            for sid, defn in self.parsed_defs(ctx.segments).items()
            if segment.segment_id in dependencies(defn)
        )
        if users:
            raise CommandError(
                "in_use",
                f"segment {segment.segment_id!r} is used by {', '.join(map(repr, users))} "
                "(in_segment); change or delete those first",
                "segment_id",
            )
        ctx.drop(segment.segment_id)
        result: dict[str, Any] = {"segment_id": segment.segment_id, "deleted": True}
        if not segment.active:
            return result
        self.start_job(ctx, request_id, "delete", "delete", [], [segment.segment_id], result)
        return None

    async def _cmd_activate(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        segment = self.existing(ctx, command)
        if segment.active:
            return {"segment": segment.to_dict(), "changed": False}
        self.check_active_limit(ctx)
        segment = segment.with_changes(active=True, modified_at=ctx.now)
        ctx.put(segment)
        defn = self.parsed_defs({segment.segment_id: segment})[segment.segment_id]
        result = {
            "segment": segment.to_dict(),
            "changed": True,
            "warnings": self.inactive_deps(ctx, defn),
        }
        self.start_job(ctx, request_id, "activate", "activate", [segment], [], result)
        return None

    async def _cmd_deactivate(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        segment = self.existing(ctx, command)
        if not segment.active:
            return {"segment": segment.to_dict(), "changed": False}
        segment = segment.with_changes(active=False, modified_at=ctx.now)
        ctx.put(segment)
        result = {"segment": segment.to_dict(), "changed": True}
        self.start_job(
            ctx, request_id, "deactivate", "deactivate", [], [segment.segment_id], result
        )
        return None

    async def _cmd_refresh(
        self, ctx: Context, command: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        if command.get("all") is True:
            wanted = sorted(ctx.segments)
        else:
            ids = command.get("segment_ids")
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise CommandError(
                    "missing_field" if ids is None else "wrong_type",
                    f"refresh needs 'segment_ids' (a non-empty list of ids) or 'all': true, "
                    f"got segment_ids={ids!r}",
                    "segment_ids",
                )
            wanted = [
                self.lookup(ctx, i, f"segment_ids[{n}]").segment_id for n, i in enumerate(ids)
            ]
        active = {i: ctx.segments[i] for i in wanted if ctx.segments[i].active}
        skipped = [i for i in wanted if i not in active]
        order = self._refresh_order(active)
        result: dict[str, Any] = {"segment_ids": order, "skipped_inactive": skipped}
        reasons = {i: "not evaluated: the segment is inactive" for i in skipped}
        if not order:
            if skipped:  # still a job, for the record: every task Skipped
                job_id = uuid.uuid4().hex
                tasks = {i: jobs.skipped_task(i, r, ctx.now) for i, r in reasons.items()}
                ctx.batch.jobs[job_id] = Job(
                    job_id, request_id, "refresh", (), 0, ctx.now, result, {}, ctx.now, tasks
                )
                result["job"] = {"job_id": job_id, "partitions": 0, "status": "Skipped"}
            return result
        self.start_job(
            ctx,
            request_id,
            "refresh",
            "refresh",
            [active[i] for i in order],
            [],
            result,
            skipped=reasons,
        )
        return None

    def _refresh_order(self, active: dict[str, StoredSegment]) -> list[str]:
        """Dependencies first. A stored definition this version cannot parse (written by
        another version) goes first: the partitions compile it, fail its task and skip the
        segments that use it."""
        parsed: dict[str, SegmentDefinition] = {}
        unreadable: list[str] = []
        for sid, segment in active.items():
            try:
                parsed.update(self.parsed_defs({sid: segment}))
            except DefinitionError as exc:
                log.warning("stored segment %r does not parse here: %s", sid, exc.message)
                unreadable.append(sid)
        return sorted(unreadable) + topological_order(parsed)

    # -- job completion -------------------------------------------------------------------
    async def _task_done(self, ctx: Context, report: dict[str, Any]) -> None:
        job_id = report.get("job_id")
        job = ctx.batch.jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None and isinstance(job_id, str):
            job = await self.store.job(job_id)
        if job is None:
            log.warning(
                "task report for unknown job %r ignored",
                job_id if isinstance(job_id, str) else type(job_id).__name__,
            )
            return
        problem = jobs.report_problem(job, report)
        if problem is not None:
            log.warning("malformed task report for job %r ignored: %s", job.job_id, problem)
            return
        if report["partition"] in job.done or job.finished_at is not None:
            log.info("repeated task report of job %s ignored", job.job_id)
            return
        job = jobs.fold_report(job, report, ctx.now)
        ctx.batch.jobs[job.job_id] = job
        if job.finished_at is None:
            return
        done = job.done
        totals = {k: sum(s[k] for s in done.values()) for k in ("evaluated", "entered", "exited")}
        members = {}
        for segment_id in job.segment_ids:
            if segment_id in ctx.segments and ctx.segments[segment_id].active:
                members[segment_id] = await self._member_count(segment_id)
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
        exports = await export_commands.after_refresh(self, ctx, job)
        if exports:
            result["exports"] = exports
        self.reply(ctx, job.request_id, {"ok": True, "result": result})

    async def _member_count(self, segment_id: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for partition in range(self.partitions):
            pipe.scard(self.keyspace.partition(partition).members(segment_id))
        return sum(await pipe.execute())


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
