"""What a command handler sees: the registry view of one command and the shared look-ups.

Handler modules (`segments`, `lifecycle`, `jobs`, `exports`) import this module and nothing
above it; `runtime` imports them all and registers their handlers. So the arrows run one
way: runtime -> handler modules -> context.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from segment_rules import NO_LIMITS, Limits, SegmentDefinition, parse_definition
from segment_rules.catalog import dependencies
from state import (
    AppliedSegment,
    Job,
    KeySpace,
    OutboxRecord,
    RegistryBatch,
    RegistryStore,
    StoredSegment,
    Task,
)
from state.reads import StateReads

from .._suggest import did_you_mean
from ..errors import CommandError, field_error
from ..messages import TASK_HEADER, Reply, TaskMessage, task_digest
from ..settings import Settings

__all__ = ["CANCELABLE", "CommandEnv", "CommandHandler", "Context", "Result"]

Result = dict[str, Any] | None
"""A handler's reply result now, or None when it started a job whose completion replies."""

CommandHandler = Callable[["CommandEnv", "Context", dict[str, Any], str], Awaitable[Result]]

CANCELABLE = frozenset(
    {"activate", "update", "refresh", "similar", "suggest_measure", "suggest_activity"}
)
"""Jobs that only (re)evaluate or analyse; a delete or deactivate must finish to keep state
consistent."""


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


class CommandEnv:
    """The registry, settings and look-ups every command handler uses (no Kafka, no loop)."""

    def __init__(self, settings: Settings, redis: Redis, partitions: int) -> None:
        self.settings = settings
        self.redis = redis
        self.partitions = partitions
        self.keyspace = KeySpace(settings.key_prefix)
        self.store = RegistryStore(redis, self.keyspace)
        self.reads = StateReads(redis, self.keyspace, partitions)
        self.limits = Limits(
            max_conditions=settings.max_conditions,
            max_depth=settings.max_depth,
            max_window_ms=settings.history_max_age_ms,
        )
        self._parsed: dict[tuple[str, int, int], SegmentDefinition] = {}
        self.handlers: dict[str, CommandHandler] = {}
        """Every command by name; the runtime fills it from the handler modules."""

    def reply(self, ctx: Context, reply: Reply) -> None:
        """Publish `reply` with this command's commit."""
        ctx.batch.outbox.append(
            OutboxRecord(self.settings.replies_topic, reply.key, reply.encode())
        )

    # -- look-ups --------------------------------------------------------------------------
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
            raise field_error(
                segment_id,
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

    def selection(self, ctx: Context, command: dict[str, Any]) -> tuple[str, ...] | None:
        """`"all": true` (None: every segment) or `segment_ids`, each an existing segment."""
        if command.get("all") is True:
            return None
        ids = command.get("segment_ids")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise field_error(
                ids,
                f"{command.get('command')} needs 'segment_ids' (a non-empty list of ids) or "
                f"'all': true, got segment_ids={ids!r}",
                "segment_ids",
            )
        return tuple(self.lookup(ctx, i, f"segment_ids[{n}]").segment_id for n, i in enumerate(ids))

    def definition(self, ctx: Context, command: dict[str, Any]) -> SegmentDefinition:
        raw = command.get("segment")
        if not isinstance(raw, dict):
            raise field_error(
                raw,
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
        customer_id: str | None = None,
    ) -> str:
        """Record a job with one task per segment and send its task to every partition.

        `skipped`: segments of the command that get a Skipped task and no work (the reason
        as its warning); `customer_id`: whom a `forget` erases.
        Returns the job id; the reply goes out when all partitions report. The job records
        the task message's digest: partitions carry out only that message (`task_auth`).
        """
        job_id = uuid.uuid4().hex
        segment_ids = tuple(s.segment_id for s in apply) + tuple(remove)
        warnings = reply.get("warnings") or []
        tasks = {sid: Task(sid, warnings=tuple(warnings)) for sid in segment_ids}
        for sid, reason in (skipped or {}).items():
            tasks[sid] = Task.skipped(sid, reason, ctx.now)
        task = TaskMessage(
            job_id,
            command,
            cause,
            tuple(AppliedSegment(s.segment_id, s.version, s.definition) for s in apply),
            tuple(remove),
            command in CANCELABLE,
            customer_id,
        ).encode()
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
