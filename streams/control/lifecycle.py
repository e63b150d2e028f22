"""Segment lifecycle commands beyond the engine's core ones (registered in `CommandEnv`).

* `rename` (`segment_id`, `name`): the display name; the id never changes (memberships,
  `in_segment` references and the membership topic use it). `name_clash` when another segment
  has that name (compared case-insensitively).
* `duplicate` (`segment_id`, `new_id`, `name`?, `segment`? overrides): a new inactive segment.
* `set_type` (`segment_id`, `type`: static|dynamic): an update of the definition's type; an
  active segment is re-evaluated and its partitions take the new definition.
* `schedule` (`segment_id`, `action`, `at`) / `unschedule` (`schedule_id`): one-shot actions.
* `schedule_refresh` (`segment_ids` or `all`, `cron`, `timezone`) / `unschedule_refresh`.
* `run_schedule` / `run_refresh_schedule` (`schedule_id`, `due`): published by the leader's
  scheduler timer (`streams.agents.scheduler`) when a schedule is due, with the request id
  `schedule:<id>:<due>` / `refresh-schedule:<id>:<due>` so that a redelivery is applied once.
  The schedule is removed (or advanced) in the same commit as the action it triggers.
* `delete` wraps the core command to drop the deleted segment's pending schedules with it,
  and to remove it from every export containing it (`removed_from_exports` in the reply).
"""

from __future__ import annotations

import uuid
from typing import Any

from segment_rules import check_references, parse_definition
from state.schedules import ACTIONS, RefreshSchedule, Schedule, ScheduleStore

from .._suggest import did_you_mean
from ..errors import CommandError, required_text
from .context import CommandEnv, CommandHandler, Context
from .schedules import parse_at, parse_cron, parse_timezone

__all__ = ["HANDLERS", "drop_schedules"]

Result = dict[str, Any] | None


def _check_name(ctx: Context, name: str, exclude: str | None, path: str) -> None:
    wanted = name.casefold()
    for sid, seg in ctx.segments.items():
        if sid != exclude and str(seg.definition.get("name", "")).strip().casefold() == wanted:
            raise CommandError(
                "name_clash",
                f"segment {sid!r} is already named {name!r}; pick another name",
                path,
            )


def _store(runtime: CommandEnv) -> ScheduleStore:
    return ScheduleStore(runtime.redis, runtime.keyspace)


# -- rename, duplicate, set_type ---------------------------------------------------------
async def _rename(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    segment = runtime.existing(ctx, command)
    name = required_text(command, "name")
    if segment.definition.get("name") == name:
        return {"segment": segment.to_dict(), "changed": False}
    _check_name(ctx, name, segment.segment_id, "name")
    definition = {**segment.definition, "name": name}
    parse_definition(definition, runtime.limits)
    # the rules are unchanged: no job, the partitions keep evaluating the same definition
    segment = segment.with_changes(
        definition=definition, version=segment.version + 1, modified_at=ctx.now
    )
    ctx.put(segment)
    return {"segment": segment.to_dict(), "changed": True}


def _copy_name(ctx: Context, base: str) -> str:
    taken = {str(s.definition.get("name", "")).strip().casefold() for s in ctx.segments.values()}
    candidate = f"{base} (copy)"
    n = 2
    while candidate.casefold() in taken:
        candidate = f"{base} (copy {n})"
        n += 1
    return candidate


async def _duplicate(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    source = runtime.existing(ctx, command)
    new_id = required_text(command, "new_id")
    if new_id in ctx.segments:
        raise CommandError(
            "already_exists",
            f"segment {new_id!r} already exists; pick another id for the copy",
            "new_id",
        )
    overrides = command.get("segment", {})
    if not isinstance(overrides, dict):
        raise CommandError(
            "wrong_type",
            f"'segment' (overrides) must be an object, got {type(overrides).__name__}",
            "segment",
        )
    if overrides.get("id", new_id) != new_id:
        raise CommandError(
            "id_mismatch",
            f"the overrides' id {overrides['id']!r} differs from new_id {new_id!r}",
            "segment.id",
        )
    definition = {**source.definition, **overrides, "id": new_id}
    if command.get("name") is not None:
        definition["name"] = required_text(command, "name")
        _check_name(ctx, definition["name"], None, "name")
    elif "name" in overrides:
        _check_name(ctx, str(definition["name"]), None, "segment.name")
    else:
        definition["name"] = _copy_name(ctx, str(source.definition.get("name", source.segment_id)))
    defn = parse_definition(definition, runtime.limits)
    check_references(runtime.parsed_defs(ctx.segments), defn)
    copy = source.with_changes(
        segment_id=new_id,
        definition=definition,
        version=1,
        active=False,
        created_at=ctx.now,
        modified_at=ctx.now,
    )
    ctx.put(copy)
    return {"segment": copy.to_dict(), "source": source.segment_id}


async def _set_type(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    segment = runtime.existing(ctx, command)
    kind = required_text(command, "type")
    if kind not in ("static", "dynamic"):
        raise CommandError(
            "invalid_value", f"'type' must be 'static' or 'dynamic', got {kind!r}", "type"
        )
    if segment.definition.get("type", "dynamic") == kind:
        return {"segment": segment.to_dict(), "changed": False}
    update = {"command": "update", "segment": {**segment.definition, "type": kind}}
    return await runtime.handlers["update"](runtime, ctx, update, request_id)


# -- one-shot schedules ------------------------------------------------------------------
async def _schedule(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    segment = runtime.existing(ctx, command)
    action = command.get("action")
    if action not in ACTIONS:
        raise CommandError(
            "missing_field" if action is None else "invalid_value",
            f"'action' must be one of {', '.join(ACTIONS)}, got {action!r}"
            f"{did_you_mean(action, ACTIONS) if isinstance(action, str) else ''}",
            "action",
        )
    at = parse_at(command.get("at"), "at")
    if at < ctx.now:
        raise CommandError(
            "in_past",
            f"'at' {at} is {ctx.now - at} ms in the past (now is {ctx.now}); give a future time",
            "at",
        )
    schedule = Schedule(uuid.uuid4().hex, segment.segment_id, action, at, ctx.now, request_id)
    ctx.batch.schedule_writes.schedules[schedule.schedule_id] = schedule
    return {"schedule": schedule.to_dict()}


async def _pending_schedule(runtime: CommandEnv, ctx: Context, schedule_id: str) -> Schedule | None:
    """The one-shot schedule as this command sees it: its own writes first, then the store."""
    writes = ctx.batch.schedule_writes.schedules
    return (
        writes[schedule_id]
        if schedule_id in writes
        else await _store(runtime).schedule(schedule_id)
    )


async def _unschedule(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    schedule_id = required_text(command, "schedule_id")
    schedule = await _pending_schedule(runtime, ctx, schedule_id)
    if schedule is None:
        raise CommandError(
            "not_found",
            f"no pending schedule {schedule_id!r} (it ran or was removed)",
            "schedule_id",
        )
    ctx.batch.schedule_writes.schedules[schedule_id] = None
    return {"schedule": schedule.to_dict(), "removed": True}


async def _run_schedule(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    schedule_id = required_text(command, "schedule_id")
    schedule = await _pending_schedule(runtime, ctx, schedule_id)
    if schedule is None or schedule.at != command.get("due"):
        return {"schedule_id": schedule_id, "ran": False, "reason": "no longer pending"}
    ctx.batch.schedule_writes.schedules[schedule_id] = None
    action = {"command": schedule.action, "segment_id": schedule.segment_id}
    return await runtime.handlers[schedule.action](runtime, ctx, action, request_id)


# -- recurring refreshes -----------------------------------------------------------------
async def _schedule_refresh(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    ids = runtime.selection(ctx, command)
    zone = parse_timezone(command.get("timezone"), "timezone")
    spec = parse_cron(command.get("cron"), zone, "cron")
    refresh = RefreshSchedule(
        uuid.uuid4().hex, ids, spec.expression, zone.key, spec.next_after(ctx.now), ctx.now
    )
    ctx.batch.schedule_writes.refreshes[refresh.schedule_id] = refresh
    return {"refresh_schedule": refresh.to_dict()}


async def _pending_refresh(
    runtime: CommandEnv, ctx: Context, schedule_id: str
) -> RefreshSchedule | None:
    """The recurring refresh as this command sees it: its own writes first, then the store."""
    writes = ctx.batch.schedule_writes.refreshes
    return (
        writes[schedule_id] if schedule_id in writes else await _store(runtime).refresh(schedule_id)
    )


async def _unschedule_refresh(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    schedule_id = required_text(command, "schedule_id")
    refresh = await _pending_refresh(runtime, ctx, schedule_id)
    if refresh is None:
        raise CommandError("not_found", f"no refresh schedule {schedule_id!r}", "schedule_id")
    ctx.batch.schedule_writes.refreshes[schedule_id] = None
    return {"refresh_schedule": refresh.to_dict(), "removed": True}


async def _run_refresh_schedule(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    schedule_id = required_text(command, "schedule_id")
    refresh = await _pending_refresh(runtime, ctx, schedule_id)
    due = command.get("due")
    if refresh is None or refresh.next_at != due:
        return {"schedule_id": schedule_id, "ran": False, "reason": "no longer due"}
    wanted = sorted(ctx.segments) if refresh.segment_ids is None else list(refresh.segment_ids)
    present = [i for i in wanted if i in ctx.segments]
    # runs missed while no worker was up run once, now; the next run is the next one after now
    spec = parse_cron(refresh.cron, parse_timezone(refresh.timezone))
    last_run = {
        "due": due,
        "at": ctx.now,
        "request_id": request_id,
        "refreshed": sorted(i for i in present if ctx.segments[i].active),
        "skipped": sorted(i for i in present if not ctx.segments[i].active),
        "missing": sorted(set(wanted) - set(present)),
    }
    ctx.batch.schedule_writes.refreshes[schedule_id] = refresh.with_changes(
        next_at=spec.next_after(max(ctx.now, refresh.next_at)), last_run=last_run
    )
    if not last_run["refreshed"]:
        return {"segment_ids": [], "skipped_inactive": last_run["skipped"], "run": last_run}
    action = {"command": "refresh", "segment_ids": sorted(present)}  # skips the inactive
    result = await runtime.handlers["refresh"](runtime, ctx, action, request_id)
    if result is not None:
        result = {**result, "run": last_run}
    return result


# -- a deleted segment's schedules --------------------------------------------------------
async def drop_schedules(runtime: CommandEnv, ctx: Context, segment_id: str) -> None:
    """Delete `segment_id`'s one-shot schedules and take it out of refresh schedules."""
    writes = ctx.batch.schedule_writes
    for schedule in await _store(runtime).schedules_for(segment_id):
        writes.schedules[schedule.schedule_id] = None
    for refresh in await _store(runtime).refreshes():
        if refresh.segment_ids is not None and segment_id in refresh.segment_ids:
            rest = tuple(i for i in refresh.segment_ids if i != segment_id)
            writes.refreshes[refresh.schedule_id] = (
                refresh.with_changes(segment_ids=rest) if rest else None
            )


HANDLERS: dict[str, CommandHandler] = {
    "rename": _rename,
    "duplicate": _duplicate,
    "set_type": _set_type,
    "schedule": _schedule,
    "unschedule": _unschedule,
    "run_schedule": _run_schedule,
    "schedule_refresh": _schedule_refresh,
    "unschedule_refresh": _unschedule_refresh,
    "run_refresh_schedule": _run_refresh_schedule,
}
