"""Analysis jobs: similar customers (an `expansion` segment) and suggested segments.

* `similar` (`source`, `size`?, `min_score`?, `attributes`?, `segment_id`?, `name`?): train a
  members-vs-non-members model on `source`'s members and keep the best-scored non-members as
  a new active segment of type `expansion` (default id `<source>-similar`).
* `suggest_measure` (`primary`, `using`?, `target`?, `max_depth`?) and `suggest_activity`
  (`event`, `value`?, `lookback`?): suggested segments, stored for preview and `accept`.
* `_analysis_done` (internal): the analysis runner's `AnalysisReport`, folded into the job;
  a successful `similar` writes its expansion segment and starts the job that applies it on
  every partition (`activate`, or `refresh` when it re-trained an existing one).

Each command is answered at once with the job (Queued); the analysis runs next to the
control agent (`streams.analyses`, CPU work in a process pool) and reports its progress in
the job (`state.insights.ProgressStore`). The inputs checked here are those the registry
knows (segments, sizes, scores); what needs the profiles (an unknown attribute, one of the
wrong kind) fails the job with the error and its path.
`refresh` of an expansion segment re-trains it through `similar_refresh`.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from insights.bands import band_of
from segment_rules.model import MAX_EXPANSION_MEMBERS
from segment_rules.parse import SLUG_RE
from state import Job, StoredSegment, Task
from state.jobs import CANCELED, FAILURE, SUCCESSFUL

from ..errors import BadMessage, CommandError, field_error, required_text
from ..messages import ANALYSIS_COMMANDS, AnalysisReport
from .context import CommandEnv, CommandHandler, Context, Result

__all__ = ["ANALYSES", "HANDLERS", "analysis_done", "similar_refresh"]

log = logging.getLogger(__name__)

ANALYSES = ANALYSIS_COMMANDS
TOP = 20
"""Chosen customers shown in a similar-customers job's result (the segment holds them all)."""
_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhdw])")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def _start(
    runtime: CommandEnv,
    ctx: Context,
    request_id: str,
    command: str,
    task_id: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Record a Queued analysis job; the runner picks it up once this command committed."""
    job_id = uuid.uuid4().hex
    job = Job(
        job_id,
        request_id,
        command,
        (task_id,) if command == "similar" else (),
        0,
        ctx.now,
        {"params": params},
        tasks={task_id: Task(task_id)},
    )
    ctx.batch.jobs[job_id] = job
    return {"job_id": job_id, "command": command, "status": job.status, "params": params}


def _size(command: dict[str, Any]) -> int | None:
    size = command.get("size")
    if size is None:
        return None
    if (
        not isinstance(size, int)
        or isinstance(size, bool)
        or not 1 <= size <= MAX_EXPANSION_MEMBERS
    ):
        raise CommandError(
            "invalid_value",
            f"'size' must be a whole number 1..{MAX_EXPANSION_MEMBERS} (customers an expansion "
            f"segment holds at most), got {size!r}",
            "size",
        )
    return size


def _min_score(command: dict[str, Any]) -> float:
    score = command.get("min_score", 0.4)
    if not isinstance(score, int | float) or isinstance(score, bool):
        raise field_error(score, f"'min_score' must be a number 0..1, got {score!r}", "min_score")
    if not 0 <= score <= 1:
        raise CommandError("invalid_value", f"'min_score' {score} is not in 0..1", "min_score")
    return float(score)


def _names(command: dict[str, Any], field: str) -> list[str] | None:
    value = command.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CommandError(
            "wrong_type", f"{field!r} must be a list of attribute names, got {value!r}", field
        )
    return list(value)


async def _non_empty_source(runtime: CommandEnv, ctx: Context, source: StoredSegment) -> None:
    count = (await runtime.reads.member_counts([source.segment_id]))[source.segment_id]
    if count == 0:
        why = "" if source.active else " (it is inactive: activate it first)"
        raise CommandError(
            "empty_segment",
            f"source segment {source.segment_id!r} has no members{why}; similar customers are "
            "found from a segment's members",
            "source",
        )


async def similar(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    source_id = required_text(command, "source")
    source = runtime.lookup(ctx, source_id, "source")
    if source.definition.get("type") == "expansion":
        raise CommandError(
            "invalid_value",
            f"source {source_id!r} is itself an expansion segment; use the segment it was "
            "found from",
            "source",
        )
    size, min_score = _size(command), _min_score(command)
    attributes = _names(command, "attributes")
    target = command.get("segment_id") or f"{source_id}-similar"[:64]
    if not isinstance(target, str) or not SLUG_RE.fullmatch(target):
        raise CommandError(
            "invalid_value",
            f"'segment_id' must be a segment id (lowercase letters, digits, '_' or '-'), got "
            f"{target!r}",
            "segment_id",
        )
    if target in ctx.segments:
        raise CommandError(
            "already_exists",
            f"segment {target!r} already exists; pick another 'segment_id' or refresh it",
            "segment_id",
        )
    name = command.get("name") or f"Similar to {source.definition.get('name', source_id)}"
    if not isinstance(name, str):
        raise field_error(name, f"'name' must be text, got {name!r}", "name")
    await _non_empty_source(runtime, ctx, source)
    params = {
        "source": source_id,
        "size": size,
        "min_score": min_score,
        "attributes": attributes,
        "segment_id": target,
        "name": name,
        "refresh": False,
    }
    return {"job": _start(runtime, ctx, request_id, "similar", target, params)}


def similar_refresh(
    runtime: CommandEnv, ctx: Context, segment: StoredSegment, request_id: str
) -> str:
    """`refresh` of an expansion segment: a `similar` job re-training it (its job id)."""
    spec = segment.definition["expansion"]
    params = {
        "source": spec["source"],
        "size": spec["size"],
        "min_score": spec["min_score"],
        "attributes": spec.get("attributes"),
        "segment_id": segment.segment_id,
        "name": segment.definition["name"],
        "refresh": True,
    }
    return str(_start(runtime, ctx, request_id, "similar", segment.segment_id, params)["job_id"])


async def suggest_measure(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    primary = required_text(command, "primary")
    using = _names(command, "using") or []
    depth = command.get("max_depth", 3)
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= 6:
        raise CommandError("invalid_value", f"'max_depth' must be 1..6, got {depth!r}", "max_depth")
    target = command.get("target")
    if target is not None and not isinstance(target, str | int | float | bool):
        raise field_error(target, f"'target' must be a value, got {target!r}", "target")
    params = {"primary": primary, "using": using, "target": target, "max_depth": depth}
    return {"job": _start(runtime, ctx, request_id, "suggest_measure", "suggestions", params)}


def _duration_ms(raw: Any, path: str) -> int:
    found = _DURATION.fullmatch(raw) if isinstance(raw, str) else None
    if found is None:
        raise CommandError("bad_duration", f"{raw!r} is not a duration like 90d or 12h", path)
    return int(found.group(1)) * _UNIT_MS[found.group(2)]


async def suggest_activity(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> Result:
    event = required_text(command, "event")
    value = command.get("value")
    if value is not None and (not isinstance(value, str) or not value):
        raise CommandError("wrong_type", f"'value' must be a property name, got {value!r}", "value")
    lookback = command.get("lookback", "90d")
    lookback_ms = _duration_ms(lookback, "lookback")
    if lookback_ms > runtime.settings.history_max_age_ms:
        raise CommandError(
            "limit_exceeded",
            f"lookback {lookback!r} is longer than the event history kept (LS_HISTORY_MAX_AGE_MS)",
            "lookback",
        )
    params = {"event": event, "value": value, "lookback": lookback, "lookback_ms": lookback_ms}
    return {"job": _start(runtime, ctx, request_id, "suggest_activity", "suggestions", params)}


# -- the runner's report ----------------------------------------------------------------------
async def analysis_done(runtime: CommandEnv, ctx: Context, raw: dict[str, Any]) -> None:
    """Fold an `_analysis_done` report into its job (a repeat, an unknown job or a malformed
    report is ignored: nobody waits for a reply to it)."""
    try:
        report = AnalysisReport.decode(raw)
    except BadMessage as exc:
        log.warning("malformed analysis report ignored: %s", exc.message)
        return
    job = ctx.batch.jobs.get(report.job_id) or await runtime.store.job(report.job_id)
    if job is None or job.command not in ANALYSES or job.finished_at is not None:
        return
    reply = dict(job.reply)
    errors: tuple[str, ...] = ()
    if job.canceled_at is not None or report.outcome == "canceled":
        status = CANCELED
    elif report.outcome == "failed":
        status, reply["error"] = FAILURE, dict(report.error)
        errors = (str(report.error.get("message", "failed")),)
    else:
        status = SUCCESSFUL
        try:
            reply["result"] = (
                _expansion(runtime, ctx, job, dict(report.result))
                if job.command == "similar"
                else dict(report.result)
            )
        except CommandError as exc:
            status, reply["error"], errors = FAILURE, exc.to_dict(), (exc.message,)
    tasks = {
        sid: task.with_changes(status=status, ended_at=ctx.now, errors=errors)
        for sid, task in job.tasks.items()
    }
    ctx.batch.jobs[job.job_id] = job.with_changes(reply=reply, tasks=tasks, finished_at=ctx.now)


def _expansion(
    runtime: CommandEnv, ctx: Context, job: Job, result: dict[str, Any]
) -> dict[str, Any]:
    """Write the expansion segment a similar-customers job found; the job that applies it."""
    params = job.reply["params"]
    sid = params["segment_id"]
    chosen = [
        {"customer_id": cid, "score": score, "band": band_of(score)}
        for cid, score in result.pop("chosen", [])
    ]
    bands = {b["band"]: b["customers"] for b in result.get("bands", [])}
    definition = {
        "id": sid,
        "name": params["name"],
        "type": "expansion",
        "expansion": {
            "source": params["source"],
            "size": min(int(result.get("requested_size") or 1), MAX_EXPANSION_MEMBERS),
            "min_score": params["min_score"],
            "attributes": params["attributes"],
            "auc": result.get("auc"),
            "grade": result.get("grade"),
            "trained_at": ctx.now,
            "job_id": job.job_id,
            "bands": bands,
        },
        "members": {c["customer_id"]: c["score"] for c in chosen},
    }
    old = ctx.segments.get(sid)
    if params["refresh"] and old is not None:
        for key in ("name", "description", "tags"):  # renamed meanwhile: kept
            if key in old.definition:
                definition[key] = old.definition[key]
    apply_request = f"{job.job_id}:apply"
    out = {**result, "segment_id": sid, "top": chosen[:TOP]}
    if params["refresh"]:
        if old is None or old.definition.get("type") != "expansion":
            raise CommandError(
                "not_found",
                f"expansion segment {sid!r} was deleted while it re-trained",
                "segment_id",
            )
        segment = old.with_changes(
            definition=definition, version=old.version + 1, modified_at=ctx.now
        )
        ctx.put(segment)
        if segment.active:
            applied = {"segment": {"id": sid, "version": segment.version}}
            out["apply_job_id"] = runtime.start_job(
                ctx, apply_request, "refresh", "refresh", [segment], [], applied
            )
        return out
    if old is not None:
        raise CommandError(
            "already_exists",
            f"segment {sid!r} was created while the similar customers were found",
            "segment_id",
        )
    active = sum(s.active for s in ctx.segments.values()) < runtime.settings.max_active_segments
    segment = StoredSegment(sid, definition, 1, active, ctx.now, ctx.now)
    ctx.put(segment)
    if not active:
        out["warnings"] = ["created inactive: LS_MAX_ACTIVE_SEGMENTS segments are active"]
        return out
    applied = {"segment": {"id": sid, "version": 1}}
    out["apply_job_id"] = runtime.start_job(
        ctx, apply_request, "activate", "activate", [segment], [], applied
    )
    return out


HANDLERS: dict[str, CommandHandler] = {
    "similar": similar,
    "suggest_measure": suggest_measure,
    "suggest_activity": suggest_activity,
}
