"""The jobs API: list jobs, one job's tasks with live per-partition progress, cancel a job.

A job's tasks and finished partitions come from the registry (the control agent folds the
partitions' reports there); while a job runs, each partition's committed progress (customers
done of its total) is read from that partition's meta, where the task's chunks commit it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from state import Job, Task
from state.insights import ProgressStore
from state.jobs import PROCESSING, QUEUED, STATUSES

from ..messages import ANALYSIS_COMMANDS
from .api import ApiBase, Page
from .auth import require_token
from .errors import ApiError
from .requests import json_response, query_int

__all__ = ["JobViews", "job_detail", "job_row", "register"]

_FIGURES = ("evaluated", "entered", "exited")


def job_row(job: Job) -> dict[str, Any]:
    """One line of `GET /jobs`."""
    totals = {k: sum(int(d.get(k, 0)) for d in job.done.values()) for k in _FIGURES}
    return {
        "job_id": job.job_id,
        "command": job.command,
        "status": job.status,
        "segment_ids": list(job.tasks) or list(job.segment_ids),
        "tasks": {sid: t.status for sid, t in job.tasks.items()},
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "canceled_at": job.canceled_at,
        "partitions": job.partitions,
        "partitions_done": len(job.done),
        **totals,
    }


def job_detail(
    job: Job, live: dict[int, dict[str, Any]] | None, stage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`GET /jobs/{id}`: the job, its tasks and the progress of every partition.

    `live` is `StateReads.task_progress` for a running job (None once finished); `stage` the
    progress of a running analysis job (`state.insights.ProgressStore`).
    """
    if job.command in ANALYSIS_COMMANDS:
        return _analysis_detail(job, stage)
    partitions: list[dict[str, Any]] = []
    for partition in range(job.partitions):
        reported = job.done.get(partition)
        now = (live or {}).get(partition, {})
        if reported is not None:
            state = "canceled" if reported.get("canceled") else "done"
            done, total = reported.get("done"), reported.get("total")
        elif now.get("running"):
            state, done, total = "processing", now.get("done"), now.get("total")
        else:
            state, done, total = "queued", 0, now.get("total")
        partitions.append({"partition": partition, "status": state, "done": done, "total": total})
    running = [p for p in partitions if p["status"] == "processing"]
    started = [int(now["started_at"]) for now in (live or {}).values() if now.get("started_at")]
    tasks = [_task(t, bool(running), min(started, default=None)) for t in job.tasks.values()]
    status = job.status
    if status == QUEUED and running:
        status = PROCESSING
    known = [p for p in partitions if p["done"] is not None and p["total"] is not None]
    return {
        **job_row(job),
        "status": status,
        "request_id": job.request_id,
        "progress": {
            "done": sum(int(p["done"]) for p in known),
            "total": sum(int(p["total"]) for p in known),
            "partitions": partitions,
        },
        "tasks": tasks,
    }


def _analysis_detail(job: Job, stage: dict[str, Any] | None) -> dict[str, Any]:
    """An analysis job: its parameters, stage (done of total), then result or error."""
    status = job.status
    running = job.finished_at is None and stage is not None
    if status == QUEUED and running:
        status = PROCESSING
    body: dict[str, Any] = {
        **job_row(job),
        "status": status,
        "request_id": job.request_id,
        "params": job.reply.get("params", {}),
        "progress": (
            {"stage": stage["stage"], "done": stage["done"], "total": stage["total"]}
            if running and stage is not None
            else None
        ),
        "tasks": [_task(t, running, None) for t in job.tasks.values()],
    }
    for key in ("result", "error"):
        if key in job.reply:
            body[key] = job.reply[key]
    return body


def _task(task: Task, running: bool, started_at: int | None) -> dict[str, Any]:
    status, started = task.status, task.started_at
    if status == QUEUED and running:  # a partition committed a chunk, none reported yet
        status, started = PROCESSING, started_at
    return {
        "segment_id": task.segment_id,
        "status": status,
        "started_at": started,
        "ended_at": task.ended_at,
        "processing_ms": task.processing_ms,
        "last_processed_at": task.last_processed_at,
        "errors": list(task.errors),
        "warnings": list(task.warnings),
        **task.totals(),
        "partitions": [
            {
                "partition": p,
                "status": r.get("status"),
                "error": r.get("error"),
                **{k: int(r.get(k, 0)) for k in _FIGURES},
            }
            for p, r in sorted(task.partitions.items())
        ],
    }


def _status_filter(text: str | None) -> str | None:
    if not text:
        return None
    for status in STATUSES:
        if status.lower() == text.lower():
            return status
    raise ApiError(
        400,
        "invalid_value",
        f"unknown job status {text!r}; expected one of {', '.join(STATUSES)}",
        "status",
    )


class JobViews:
    def __init__(self, api: ApiBase) -> None:
        self.api = api
        self.stages = ProgressStore(api.reads, api.settings.job_retention_s)

    async def _job(self, job_id: str) -> Job:
        job = await self.api.reads.job(job_id)
        if job is None:
            raise ApiError(
                404,
                "not_found",
                f"no job {job_id!r}; jobs are kept LS_JOB_RETENTION_S after they start",
                "job_id",
            )
        return job

    async def list_jobs(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        limit = query_int(request, "limit", 50, 1, 500)
        jobs = await self.api.reads.recent_jobs(
            limit,
            segment_id=request.query.get("segment") or None,
            status=_status_filter(request.query.get("status")),
            request_id=request.query.get("request_id") or None,
        )
        rows = [job_row(j) for j in jobs]
        for row in rows:  # a running analysis: Processing once its runner reported a stage
            queued = row["command"] in ANALYSIS_COMMANDS and row["status"] == QUEUED
            if queued and await self.stages.get(row["job_id"]) is not None:
                row["status"] = PROCESSING
        return json_response(web, {"jobs": rows})

    async def show_job(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        job = await self._job(id)
        running = job.finished_at is None
        if job.command in ANALYSIS_COMMANDS:
            stage = await self.stages.get(id) if running else None
            return json_response(web, job_detail(job, None, stage))
        live = await self.api.reads.task_progress(id) if running else None
        return json_response(web, job_detail(job, live))

    async def cancel(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=True)
        result = await self.api.gateway.command({"command": "cancel", "job_id": id})
        return json_response(web, result)


Handler = Callable[..., Awaitable[Any]]


def register(page: Page, api: ApiBase) -> JobViews:
    """Add the job routes through `page(path, name, **method_handlers)`."""
    views = JobViews(api)
    page("/jobs", "jobs", get=views.list_jobs)
    page("/jobs/{id}", "job", get=views.show_job)
    page("/jobs/{id}/cancel", "job_cancel", post=views.cancel)
    return views
