"""Jobs on the control side: their tasks, folding the partitions' reports, and `cancel`.

A job has one task per segment (`state.jobs.Task`). A task starts Queued (or Skipped at once
for an inactive segment of a refresh), is Processing once a partition reported on it, and
ends when every partition has: Failure if one failed, Canceled if the job was canceled,
Skipped if every partition skipped it (a segment it uses failed), else Successful.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from state import Job, Task
from state.jobs import CANCELED, FAILURE, FINAL, PROCESSING, SKIPPED, SUCCESSFUL

from ..errors import CommandError, field_error
from ..messages import SegmentOutcome, TaskReport
from .context import CANCELABLE, CommandEnv, CommandHandler, Context

__all__ = ["HANDLERS", "fold_report", "outcome", "report_problem"]


def report_problem(job: Job, report: TaskReport) -> str | None:
    """Why a well-formed `_task_done` report cannot be folded into `job` (None when it can).

    Reports arrive on the control topic, which anyone with access to Kafka can write:
    `TaskReport.decode` refuses fields of the wrong type or range; here a report for a
    partition the job does not have, or for a job without partition tasks (an export run), is
    refused before it touches the job.
    """
    if job.task_digest is None and not job.tasks:
        return f"job {job.job_id!r} ({job.command}) has no partition tasks"
    if job.command == "export":
        return f"job {job.job_id!r} is an export run; the exporter reports on it"
    if report.partition >= job.partitions:
        return f"partition {report.partition} is not one of the job's {job.partitions} partitions"
    return None


def fold_report(job: Job, report: TaskReport, now: int) -> Job:
    """`job` with one partition's `_task_done` report (checked by `report_problem`) folded into
    its tasks."""
    partition = report.partition
    figures: dict[str, Any] = {
        "done": report.done,
        "total": report.total,
        "started_at": report.started_at,
        "ended_at": report.ended_at,
    }
    if report.erased is not None:  # forget: whether this partition held the customer
        figures["erased"] = report.erased
        figures["exited_segments"] = list(report.exited_segments)
    figures["canceled"] = report.canceled
    done = {**job.done, partition: {**report.stats, **figures}}
    finished = len(done) >= job.partitions
    tasks = dict(job.tasks)
    for segment_id, task in job.tasks.items():
        if task.status == SKIPPED and not task.partitions:
            continue  # skipped by the control agent (inactive): no partition worked on it
        given = report.segments.get(segment_id) or SegmentOutcome("done")
        got: dict[str, Any] = given.to_dict()
        got.update(figures)
        parts = {**task.partitions, partition: got}
        started = [p["started_at"] for p in parts.values() if p.get("started_at") is not None]
        task = task.with_changes(
            partitions=parts,
            started_at=min(started) if started else task.started_at,
            last_processed_at=now,
        )
        if not task.finished:
            task = task.with_changes(status=PROCESSING)
        if finished:
            task = _finish(task, now)
        tasks[segment_id] = task
    return job.with_changes(done=done, tasks=tasks, finished_at=now if finished else None)


def _finish(task: Task, now: int) -> Task:
    """Every partition reported: the task's final status, errors and end."""
    reports = task.partitions.values()
    errors = _grouped(task.partitions, "failed")
    reasons = _grouped(task.partitions, "skipped")
    ends = [p["ended_at"] for p in reports if p.get("ended_at") is not None]
    statuses = {p.get("status") for p in reports}
    if task.status == CANCELED:  # canceled by the operator: stays so
        status = CANCELED
    elif "failed" in statuses:
        status = FAILURE
    elif "canceled" in statuses:
        status = CANCELED
    elif "skipped" in statuses:
        status = SKIPPED
    else:
        status = SUCCESSFUL
    return task.with_changes(
        status=status,
        ended_at=max(ends) if ends else now,
        errors=tuple(errors),
        warnings=task.warnings + tuple(r for r in reasons if r not in task.warnings),
    )


def _grouped(partitions: Mapping[int, Mapping[str, Any]], status: str) -> list[str]:
    """Each distinct message of the partitions in `status`, with the partitions it came from."""
    seen: dict[str, list[int]] = {}
    for partition, report in sorted(partitions.items()):
        if report.get("status") == status and report.get("error"):
            seen.setdefault(str(report["error"]), []).append(partition)
    return [
        f"{message} (partition{'s' if len(ps) > 1 else ''} {', '.join(map(str, ps))})"
        for message, ps in seen.items()
    ]


def outcome(job: Job) -> dict[str, Any]:
    """What a job's reply adds about its tasks: status and errors per segment."""
    return {
        segment_id: {"status": task.status, "errors": list(task.errors)}
        for segment_id, task in job.tasks.items()
    }


async def cancel(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> dict[str, Any] | None:
    """`{"command": "cancel", "job_id": ...}`: the job's unfinished tasks become Canceled.

    Partitions stop between chunks; the job still replies once, when all have reported.
    """
    job_id = command.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise field_error(
            job_id,
            f"'job_id' must be a job id string, got {job_id!r}",
            "job_id",
        )
    job = ctx.batch.jobs.get(job_id) or await runtime.store.job(job_id)
    if job is None:
        raise CommandError("not_found", f"no job {job_id!r} (finished jobs are kept for "
                           "LS_JOB_RETENTION_S)", "job_id")  # fmt: skip
    if job.finished_at is not None:
        raise CommandError(
            "already_finished",
            f"job {job_id!r} already finished ({job.status}); nothing to cancel",
            "job_id",
        )
    if job.command not in CANCELABLE:
        raise CommandError(
            "not_cancelable",
            f"a {job.command!r} job cannot be canceled: it removes a segment from every "
            "partition and must finish to leave them consistent; it ends on its own",
            "job_id",
        )
    if job.canceled_at is not None:
        return {"job_id": job_id, "status": job.status, "canceled": [], "changed": False}
    canceled = sorted(sid for sid, t in job.tasks.items() if t.status not in FINAL)
    tasks = {
        sid: task.with_changes(status=CANCELED, ended_at=ctx.now) if sid in canceled else task
        for sid, task in job.tasks.items()
    }
    job = job.with_changes(tasks=tasks, canceled_at=ctx.now)
    ctx.batch.jobs[job_id] = job
    ctx.batch.cancel_jobs[job_id] = ctx.now
    return {"job_id": job_id, "status": CANCELED, "canceled": canceled, "changed": True}


HANDLERS: dict[str, CommandHandler] = {"cancel": cancel}
