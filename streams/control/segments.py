"""The core segment commands: create, update, delete, activate, deactivate, refresh."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from segment_rules import DefinitionError, SegmentDefinition, check_references, topological_order
from segment_rules.catalog import dependencies
from state import Job, StoredSegment, Task

from ..errors import CommandError
from . import analyses, exports, lifecycle
from .context import CommandEnv, CommandHandler, Context, Result

__all__ = ["HANDLERS"]

log = logging.getLogger(__name__)


# -- the core commands -------------------------------------------------------------------------
async def create(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    defn = runtime.definition(ctx, command)
    if defn.id in ctx.segments:
        raise CommandError(
            "already_exists",
            f"segment {defn.id!r} already exists; use 'update' to change it or pick another id",
            "segment.id",
        )
    check_references(runtime.parsed_defs(ctx.segments), defn)
    activate = command.get("activate", False)
    if not isinstance(activate, bool):
        raise CommandError(
            "wrong_type", f"'activate' must be true or false, got {activate!r}", "activate"
        )
    if activate:
        runtime.check_active_limit(ctx)
    raw = command["segment"]
    segment = StoredSegment(defn.id, raw, 1, activate, ctx.now, ctx.now)
    ctx.put(segment)
    result: dict[str, Any] = {"segment": segment.to_dict()}
    if not activate:
        return result
    result["warnings"] = runtime.inactive_deps(ctx, defn)
    runtime.start_job(ctx, request_id, "activate", "activate", [segment], [], result)
    return None


async def update(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    defn = runtime.definition(ctx, command)
    old = runtime.lookup(ctx, defn.id, "segment.id")
    others = {k: v for k, v in runtime.parsed_defs(ctx.segments).items() if k != defn.id}
    check_references(others, defn)
    segment = old.with_changes(
        definition=command["segment"], version=old.version + 1, modified_at=ctx.now
    )
    ctx.put(segment)
    result: dict[str, Any] = {"segment": segment.to_dict()}
    if not segment.active:
        return result
    result["warnings"] = runtime.inactive_deps(ctx, defn)
    runtime.start_job(ctx, request_id, "update", "update", [segment], [], result)
    return None


async def delete(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    """Delete a segment nothing uses, with its schedules; take it out of its exports."""
    segment = runtime.existing(ctx, command)
    users = sorted(
        sid
        for sid, defn in runtime.parsed_defs(ctx.segments).items()
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
    await lifecycle.drop_schedules(runtime, ctx, segment.segment_id)
    result: dict[str, Any] = {"segment_id": segment.segment_id, "deleted": True}
    removed = await exports.drop_segment(runtime, ctx, segment.segment_id)
    if removed:
        result["removed_from_exports"] = removed
    if not segment.active:
        return result
    runtime.start_job(ctx, request_id, "delete", "delete", [], [segment.segment_id], result)
    return None


async def activate(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    segment = runtime.existing(ctx, command)
    if segment.active:
        return {"segment": segment.to_dict(), "changed": False}
    runtime.check_active_limit(ctx)
    segment = segment.with_changes(active=True, modified_at=ctx.now)
    ctx.put(segment)
    defn = runtime.parsed_defs({segment.segment_id: segment})[segment.segment_id]
    result = {
        "segment": segment.to_dict(),
        "changed": True,
        "warnings": runtime.inactive_deps(ctx, defn),
    }
    runtime.start_job(ctx, request_id, "activate", "activate", [segment], [], result)
    return None


async def deactivate(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    segment = runtime.existing(ctx, command)
    if not segment.active:
        return {"segment": segment.to_dict(), "changed": False}
    segment = segment.with_changes(active=False, modified_at=ctx.now)
    ctx.put(segment)
    result = {"segment": segment.to_dict(), "changed": True}
    runtime.start_job(ctx, request_id, "deactivate", "deactivate", [], [segment.segment_id], result)
    return None


async def refresh(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    chosen = runtime.selection(ctx, command)
    wanted = sorted(ctx.segments) if chosen is None else list(chosen)
    active = {i: ctx.segments[i] for i in wanted if ctx.segments[i].active}
    skipped = [i for i in wanted if i not in active]
    # expansion segments re-train on their source's members now: one analysis job each
    retraining = {
        i: analyses.similar_refresh(runtime, ctx, active.pop(i), request_id)
        for i in sorted(active)
        if active[i].definition.get("type") == "expansion"
    }
    order = _refresh_order(runtime, active)
    result: dict[str, Any] = {"segment_ids": order, "skipped_inactive": skipped}
    if retraining:
        result["retraining"] = retraining
    reasons = {i: "not evaluated: the segment is inactive" for i in skipped}
    if not order:
        if skipped and not retraining:  # still a job, for the record: every task Skipped
            job_id = uuid.uuid4().hex
            tasks = {i: Task.skipped(i, r, ctx.now) for i, r in reasons.items()}
            ctx.batch.jobs[job_id] = Job(
                job_id, request_id, "refresh", (), 0, ctx.now, result, {}, ctx.now, tasks
            )
            result["job"] = {"job_id": job_id, "partitions": 0, "status": "Skipped"}
        return result
    runtime.start_job(
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


def _refresh_order(runtime: CommandEnv, active: dict[str, StoredSegment]) -> list[str]:
    """Dependencies first. A stored definition this version cannot parse (written by
    another version) goes first: the partitions compile it, fail its task and skip the
    segments that use it."""
    parsed: dict[str, SegmentDefinition] = {}
    unreadable: list[str] = []
    for sid, segment in active.items():
        try:
            parsed.update(runtime.parsed_defs({sid: segment}))
        except DefinitionError as exc:
            log.warning("stored segment %r does not parse here: %s", sid, exc.message)
            unreadable.append(sid)
    return sorted(unreadable) + topological_order(parsed)


HANDLERS: dict[str, CommandHandler] = {
    "create": create,
    "update": update,
    "delete": delete,
    "activate": activate,
    "deactivate": deactivate,
    "refresh": refresh,
}
