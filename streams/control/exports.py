"""Export commands: exports as managed objects in the registry, and their runs as jobs.

Registered in `CommandEnv.handlers` (through `lifecycle.HANDLERS`):

* `create_export` (`export`: a definition, `streams.exports.model`), `update_export`
  (`export`; a secret given as ``"***"`` keeps the stored one), `delete_export`
  (`export_id`), `duplicate_export` (`export_id`, `new_id`, `name`?),
  `add_export_segment` / `remove_export_segment` (`export_id`, `segment_id`).
* `export` (`export_id`, `wait`?): run it now. The reply carries the job id at once, or with
  ``"wait": true`` the job's outcome once every task ended.
* `run_export_schedule` (`export_id`, `due`): published by the exporter's leader timer when a
  scheduled export is due (request id `export-schedule:<id>:<due>`); the next run is set in
  the same commit.
* `_export_done` (internal): the exporter agent's report on one task (started or finished),
  folded into the job like the partitions' `_task_done` reports.

A run is a job (command ``export``) with one task per segment of the export. The control agent
never exports itself: it records the job and publishes a run request on the export-runs
topic (`streams.topics.export_runs_topic`) in the same commit; the exporter agent
(`streams.agents.exporter`) runs the tasks in order and reports each on the control topic.
After a **scheduled** refresh job ends (`after_refresh`), every export containing one of its
segments runs; a segment whose refresh did not succeed gets a Skipped task.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from state import Job, OutboxRecord, Task
from state.export_registry import ExportStore, StoredExport
from state.jobs import FAILURE, FINAL, PROCESSING, QUEUED, SKIPPED, STATUSES, SUCCESSFUL

from .._suggest import did_you_mean
from ..errors import BadMessage, CommandError, field_error, required_text
from ..exports.model import ExportDefinition, ExportError, export_to_json, parse_export
from ..exports.policy import ExportPolicy
from ..exports.urls import MASK, mask_url
from ..messages import ExportReport, ExportRun, Reply
from ..topics import export_runs_topic
from .context import CommandEnv, CommandHandler, Context
from .schedules import parse_cron, parse_timezone

log = logging.getLogger(__name__)

__all__ = ["HANDLERS", "after_refresh", "drop_segment", "export_done", "export_view"]

Result = dict[str, Any] | None


# -- helpers ------------------------------------------------------------------------------
def _parse(raw: Any, path: str = "export", policy: ExportPolicy | None = None) -> ExportDefinition:
    if not isinstance(raw, dict):
        raise field_error(
            raw,
            f"{path!r} must be an export definition object, got {type(raw).__name__}",
            path,
        )
    try:
        defn = parse_export(raw)
        if policy is not None:  # the export root, the project's own topics
            policy.check(defn)
        return defn
    except ExportError as exc:
        where = f"{path}.{exc.path}" if getattr(exc, "path", None) else path
        raise CommandError(exc.code, exc.message, where) from None


def export_view(stored: StoredExport) -> dict[str, Any]:
    """What the API and the CLI show of an export: secrets masked, with its times."""
    segments = list(stored.segment_ids)
    try:  # an export whose last segment was deleted has none: valid but for that
        defn = parse_export({**stored.definition, "segments": segments or ["x"]})
        body = {**export_to_json(defn, reveal_secrets=False), "segments": segments}
    except ExportError:  # written by another version: show what is safe to show
        body = {k: v for k, v in stored.definition.items() if k != "destination"}
        body["destination"] = MASK
    return {
        **body,
        "created_at": stored.created_at,
        "modified_at": stored.modified_at,
        "next_at": stored.next_at,
        "last_job": stored.last_job,
    }


def _masked(key: str, new: Any, old: Any) -> bool:
    """`new` is what the API shows of the stored `old`: "***", or a URL with masked parts."""
    if new == MASK:
        return True
    return key == "url" and isinstance(old, str) and new != old and new == mask_url(old)


def _keep_secrets(new: Any, old: Any) -> Any:
    """`new` with every masked value replaced by the stored value at the same place."""
    if isinstance(new, dict) and isinstance(old, dict):
        return {
            k: old[k] if k in old and _masked(k, v, old[k]) else _keep_secrets(v, old.get(k))
            for k, v in new.items()
        }
    return new


def _next_at(defn: ExportDefinition, now: int, path: str = "export.schedule") -> int | None:
    schedule = defn.schedule
    if not schedule:
        return None
    zone = parse_timezone(
        schedule.get("timezone", schedule.get("time_zone", "UTC")), f"{path}.timezone"
    )
    return parse_cron(schedule.get("cron"), zone, f"{path}.cron").next_after(now)  # fmt: skip


async def _current(runtime: CommandEnv, ctx: Context, export_id: str) -> StoredExport | None:
    writes = ctx.batch.export_writes.exports
    if export_id in writes:
        return writes[export_id]
    return await ExportStore(runtime.redis, runtime.keyspace).export(export_id)


async def _all(runtime: CommandEnv, ctx: Context) -> list[StoredExport]:
    found = {e.export_id: e for e in await ExportStore(runtime.redis, runtime.keyspace).exports()}
    for export_id, export in ctx.batch.export_writes.exports.items():
        if export is None:
            found.pop(export_id, None)
        else:
            found[export_id] = export
    return [found[i] for i in sorted(found)]


async def _existing(
    runtime: CommandEnv, ctx: Context, export_id: str, path: str = "export_id"
) -> StoredExport:
    export = await _current(runtime, ctx, export_id)
    if export is None:
        ids = [e.export_id for e in await _all(runtime, ctx)]
        raise CommandError(
            "not_found", f"no export {export_id!r}{did_you_mean(export_id, ids)}", path
        )
    return export


def _check_segments(runtime: CommandEnv, ctx: Context, defn: ExportDefinition) -> None:
    for n, segment_id in enumerate(defn.segments):
        runtime.lookup(ctx, segment_id, f"export.segments[{n}]")


def _store(ctx: Context, export: StoredExport) -> None:
    ctx.batch.export_writes.exports[export.export_id] = export


# -- managing -----------------------------------------------------------------------------
async def _create(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    defn = _parse(command.get("export"), policy=ExportPolicy.from_settings(runtime.settings))
    if await _current(runtime, ctx, defn.id) is not None:
        raise CommandError(
            "already_exists",
            f"export {defn.id!r} already exists; use 'update_export' or pick another id",
            "export.id",
        )
    _check_segments(runtime, ctx, defn)
    raw = export_to_json(defn, reveal_secrets=True)
    export = StoredExport(defn.id, raw, ctx.now, ctx.now, _next_at(defn, ctx.now))
    _store(ctx, export)
    return {"export": export_view(export)}


async def _update(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    raw = command.get("export")
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        _parse(raw)  # raises the usual error (not an object, or no usable id)
    assert isinstance(raw, dict)
    old = await _existing(runtime, ctx, raw["id"], "export.id")
    policy = ExportPolicy.from_settings(runtime.settings)
    defn = _parse(_keep_secrets(raw, old.definition), policy=policy)
    _check_segments(runtime, ctx, defn)
    stored = export_to_json(defn, reveal_secrets=True)
    next_at = old.next_at
    if stored.get("schedule") != old.definition.get("schedule") or next_at is None:
        next_at = _next_at(defn, ctx.now)
    export = old.with_changes(definition=stored, modified_at=ctx.now, next_at=next_at)
    _store(ctx, export)
    return {"export": export_view(export), "changed": stored != old.definition}


async def _delete(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    export = await _existing(runtime, ctx, required_text(command, "export_id"))
    ctx.batch.export_writes.exports[export.export_id] = None
    # the exporter forgets its delivery state (`state.export_cursors`), after any run queued before
    forget = ExportRun.forgetting(export.export_id).encode()
    topic = export_runs_topic(runtime.settings)
    ctx.batch.outbox.append(OutboxRecord(topic, export.export_id.encode(), forget))
    return {"export_id": export.export_id, "deleted": True}


async def _duplicate(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    source = await _existing(runtime, ctx, required_text(command, "export_id"))
    new_id = required_text(command, "new_id")
    if await _current(runtime, ctx, new_id) is not None:
        raise CommandError(
            "already_exists", f"export {new_id!r} already exists; pick another id", "new_id"
        )
    name = command.get("name")
    if name is None:
        name = f"{source.definition.get('name') or source.export_id} (copy)"
    raw = {**source.definition, "id": new_id, "name": name}
    defn = _parse(raw, policy=ExportPolicy.from_settings(runtime.settings))
    _check_segments(runtime, ctx, defn)
    copy = StoredExport(
        new_id, export_to_json(defn, reveal_secrets=True), ctx.now, ctx.now, _next_at(defn, ctx.now)
    )
    _store(ctx, copy)
    return {"export": export_view(copy), "source": source.export_id}


async def _change_segments(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], add: bool
) -> Result:
    export = await _existing(runtime, ctx, required_text(command, "export_id"))
    segment_id = required_text(command, "segment_id")
    present = segment_id in export.segment_ids
    if add:
        runtime.lookup(ctx, segment_id, "segment_id")
        if present:
            return {"export": export_view(export), "changed": False}
        segments = [*export.segment_ids, segment_id]
    else:
        if not present:
            raise CommandError(
                "not_found",
                f"export {export.export_id!r} does not contain segment {segment_id!r} "
                f"(it contains {', '.join(map(repr, export.segment_ids)) or 'none'})",
                "segment_id",
            )
        segments = [s for s in export.segment_ids if s != segment_id]
    defn = _parse({**export.definition, "segments": segments})
    export = export.with_changes(
        definition=export_to_json(defn, reveal_secrets=True), modified_at=ctx.now
    )
    _store(ctx, export)
    return {"export": export_view(export), "changed": True}


async def _add_segment(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    return await _change_segments(runtime, ctx, command, add=True)


async def _remove_segment(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    return await _change_segments(runtime, ctx, command, add=False)


async def drop_segment(runtime: CommandEnv, ctx: Context, segment_id: str) -> list[str]:
    """Remove a deleted segment from every export containing it; returns their ids."""
    removed = []
    for export in await _all(runtime, ctx):
        if segment_id in export.segment_ids:
            rest = [s for s in export.segment_ids if s != segment_id]
            definition = {**export.definition, "segments": rest}
            _store(ctx, export.with_changes(definition=definition, modified_at=ctx.now))
            removed.append(export.export_id)
    return removed


# -- running ------------------------------------------------------------------------------
def _start(
    runtime: CommandEnv,
    ctx: Context,
    export: StoredExport,
    request_id: str,
    trigger: str,
    wait: bool = False,
    skipped: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Record a run of `export` as a job and ask the exporter agent to carry it out."""
    job_id = uuid.uuid4().hex
    segment_ids = export.segment_ids
    tasks = {sid: Task(sid) for sid in segment_ids}
    reasons = dict(skipped or {})
    for sid in segment_ids:
        if sid not in ctx.segments:
            reasons.setdefault(sid, f"not exported: segment {sid!r} no longer exists")
    for sid, reason in reasons.items():
        if sid in tasks:
            tasks[sid] = Task.skipped(sid, reason, ctx.now)
    reply = {"export_id": export.export_id, "trigger": trigger, "wait": wait}
    job = Job(job_id, request_id, "export", segment_ids, 1, ctx.now, reply, tasks=tasks)
    queued = [sid for sid in segment_ids if tasks[sid].status == QUEUED]
    if queued:
        run = ExportRun(export.export_id, job_id, tuple(queued)).encode()
        topic = export_runs_topic(runtime.settings)
        ctx.batch.outbox.append(OutboxRecord(topic, export.export_id.encode(), run))
    else:
        job = _finish(job, ctx.now)
    ctx.batch.jobs[job_id] = job
    _store(ctx, export.with_changes(last_job=job_id))
    if job.finished_at is not None and wait:
        runtime.reply(ctx, Reply.success(request_id, _outcome(job)))
    return {
        "job_id": job_id,
        "status": job.status,
        "tasks": {s: t.status for s, t in tasks.items()},
    }


def _finish(job: Job, now: int) -> Job:
    exported = sum(int(t.partitions.get(0, {}).get("count") or 0) for t in job.tasks.values())
    return job.with_changes(finished_at=now, done={0: {"exported": exported}})


def _outcome(job: Job) -> dict[str, Any]:
    tasks = {
        sid: {
            "status": t.status,
            "errors": list(t.errors),
            "warnings": list(t.warnings),
            "count": t.partitions.get(0, {}).get("count"),
            "processing_ms": t.processing_ms,
        }
        for sid, t in job.tasks.items()
    }
    summary = {"job_id": job.job_id, "status": job.status, "finished_at": job.finished_at}
    return {**job.reply, "job": summary, "tasks": tasks}


async def _run(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    export = await _existing(runtime, ctx, required_text(command, "export_id"))
    wait = command.get("wait", False)
    if not isinstance(wait, bool):
        raise CommandError("wrong_type", f"'wait' must be true or false, got {wait!r}", "wait")
    job = _start(runtime, ctx, export, request_id, "on_demand", wait)
    if wait:
        return None  # the job's end replies (at once when nothing was left to run)
    return {"export_id": export.export_id, "job": job}


async def _run_schedule(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    export_id = required_text(command, "export_id")
    export = await _current(runtime, ctx, export_id)
    due = command.get("due")
    if export is None or export.next_at is None or export.next_at != due:
        return {"export_id": export_id, "ran": False, "reason": "no longer due"}
    try:
        next_at = _next_at(_parse(export.definition), max(ctx.now, export.next_at))
    except CommandError:
        next_at = None  # its schedule no longer parses: it stops
    export = export.with_changes(next_at=next_at)
    job = _start(runtime, ctx, export, request_id, "schedule")
    return {"export_id": export_id, "ran": True, "job": job, "next_at": next_at}


async def after_refresh(runtime: CommandEnv, ctx: Context, job: Job) -> list[dict[str, Any]]:
    """A scheduled refresh job ended: run every export containing one of its segments.

    Returns the started runs (`{"export_id", "job_id", "status", "tasks"}`) for its reply.
    """
    if job.command != "refresh" or not (job.request_id or "").startswith("refresh-schedule:"):
        return []
    refreshed = set(job.tasks) or set(job.segment_ids)
    started = []
    for export in await _all(runtime, ctx):
        if not refreshed & set(export.segment_ids):
            continue
        skipped = {
            sid: f"not exported: the refresh of segment {sid!r} ended {task.status}"
            for sid in export.segment_ids
            if (task := job.tasks.get(sid)) is not None and task.status != SUCCESSFUL
        }
        request_id = f"export-after:{job.job_id}:{export.export_id}"
        run = _start(runtime, ctx, export, request_id, f"refresh:{job.job_id}", skipped=skipped)
        started.append({"export_id": export.export_id, **run})
    return started


async def export_done(runtime: CommandEnv, ctx: Context, raw: dict[str, Any]) -> None:
    """Fold the exporter's report on one task into its job; reply when the job ends."""
    try:
        report = ExportReport.decode(raw)
    except BadMessage as exc:
        log.warning("malformed export report ignored: %s", exc.message)
        return
    job = ctx.batch.jobs.get(report.job_id) or await runtime.store.job(report.job_id)
    task = job.tasks.get(report.segment_id) if job is not None else None
    if job is None or task is None or task.finished or job.finished_at is not None:
        return  # unknown, or a redelivered report of a task already folded
    if job.command != "export":
        log.warning(
            "export report for job %r ignored: it is a %r job, not an export run",
            job.job_id,
            job.command,
        )
        return
    at = report.at or ctx.now
    if report.phase == "started":
        task = task.with_changes(status=PROCESSING, started_at=at, last_processed_at=ctx.now)
    else:
        status = report.status
        status = status if status in STATUSES and status in FINAL else FAILURE
        reason = report.reason
        warnings = task.warnings + ((reason,) if reason and status == SKIPPED else ())
        errors = report.errors
        if status == FAILURE and not errors:
            errors = (reason or "the export failed",)
        figures = {"status": status, "count": report.count, "details": dict(report.details)}
        task = task.with_changes(
            status=status,
            started_at=task.started_at or at,
            ended_at=at,
            last_processed_at=ctx.now,
            errors=errors,
            warnings=warnings,
            partitions={0: figures},
        )
    tasks = {**job.tasks, report.segment_id: task}
    job = job.with_changes(tasks=tasks)
    if all(t.status in FINAL for t in tasks.values()):
        job = _finish(job, ctx.now)
        if job.reply.get("wait"):
            runtime.reply(ctx, Reply.success(job.request_id, _outcome(job)))
    ctx.batch.jobs[report.job_id] = job


HANDLERS: dict[str, CommandHandler] = {
    "create_export": _create,
    "update_export": _update,
    "delete_export": _delete,
    "duplicate_export": _duplicate,
    "add_export_segment": _add_segment,
    "remove_export_segment": _remove_segment,
    "export": _run,
    "run_export_schedule": _run_schedule,
}
