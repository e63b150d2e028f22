"""`segments jobs`, `job ID [--watch]`, `cancel JOB_ID`, and the progress bar of a running job."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import render
from .errors import JobFailed, OperatorError
from .http import ApiClient
from .inputs import Add, quoted

__all__ = ["add_commands", "analysis_result", "progress_lines", "run_with_progress"]

POLL_S = 0.3
_RUNNING = ("Queued", "Processing")


def progress_bar(done: int | None, total: int | None, width: int = 30) -> str:
    """``[#########.........]   150/500  30%``; an empty partition counts as complete."""
    d, t = int(done or 0), int(total or 0)
    share = 1.0 if t == 0 else min(1.0, d / t)
    filled = round(width * share)
    return f"[{'#' * filled}{'.' * (width - filled)}] {d:>7}/{t:<7} {share:>4.0%}"


def progress_lines(job: dict[str, Any]) -> list[str]:
    """One line per partition, then the total: customers done of the partition's total (an
    analysis job: its stage, done of total)."""
    progress = job["progress"]
    lines = [f"job {job['job_id']} ({job['command']}): {job['status']}"]
    if "params" in job:  # an analysis job
        if progress:
            lines.append(
                f"  {progress['stage']:<22} {progress_bar(progress['done'], progress['total'])}"
            )
        return lines
    for p in progress["partitions"]:
        lines.append(f"  p{p['partition']:<3} {progress_bar(p['done'], p['total'])} {p['status']}")
    lines.append(f"  all  {progress_bar(progress['done'], progress['total'])}")
    return lines


class _Live:
    """Redraws a block of lines in place on a terminal; elsewhere prints each change once."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.shown: list[str] = []

    def show(self, lines: list[str]) -> None:
        if lines == self.shown:
            return
        if self.tty and self.shown:
            self.out.write(f"\x1b[{len(self.shown)}F\x1b[J")
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()
        self.shown = lines


def analysis_result(api: ApiClient, job: dict[str, Any], wait: bool, out: TextIO) -> Any:
    """An analysis job's result: watched to its end unless not `wait` (then the job itself).
    A failed job raises its error (code and path), a canceled one says so."""
    if not wait:
        return job
    done = watch(api, job["job_id"], out)
    if done["status"] == "Failure":
        error = done.get("error") or {}
        raise JobFailed(
            job["job_id"],
            error.get("code", "failed"),
            error.get("message", "failed"),
            error.get("path"),
        )
    if done["status"] != "Successful":
        raise OperatorError(f"job {job['job_id']} ended {done['status']}")
    return done["result"]


def watch(api: ApiClient, job_id: str, out: TextIO) -> dict[str, Any]:
    """Show the job's progress until it finishes; returns its last state."""
    live = _Live(out)
    while True:
        job = api.request("GET", f"/jobs/{quoted(job_id)}")
        live.show(progress_lines(job))
        if job["finished_at"] is not None and job["status"] not in _RUNNING:
            return dict(job)
        time.sleep(POLL_S)


def run_with_progress(
    api: ApiClient, send: Callable[[], Any], segment_id: str | None, out: TextIO
) -> Any:
    """Run `send` (a command that answers when its job is done) while showing the progress
    of the job it starts: the newest job (of `segment_id`) that was not there before."""
    query = {"segment": segment_id, "limit": 1}
    before = [j["job_id"] for j in api.request("GET", "/jobs", query=query)["jobs"]]
    answer: dict[str, Any] = {}

    def call() -> None:
        try:
            answer["result"] = send()
        except BaseException as exc:  # handed to the caller's thread
            answer["error"] = exc

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    live = _Live(out)
    job_id: str | None = None
    while thread.is_alive():
        if job_id is None:
            newest = api.request("GET", "/jobs", query=query)["jobs"]
            if newest and newest[0]["job_id"] not in before:
                job_id = newest[0]["job_id"]
        if job_id is not None:
            live.show(progress_lines(api.request("GET", f"/jobs/{quoted(job_id)}")))
        thread.join(POLL_S)
    if "error" in answer:
        raise answer["error"]
    result = answer["result"]
    final = (result.get("job") or {}).get("job_id") or job_id
    if final is not None:
        live.show(progress_lines(api.request("GET", f"/jobs/{quoted(final)}")))
    return result


# -- commands -----------------------------------------------------------------------------
def _jobs(api: ApiClient, args: argparse.Namespace) -> Any:
    query = {"segment": args.segment, "status": args.status, "limit": args.limit}
    body = api.request("GET", "/jobs", query=query)
    if args.json:
        return body
    rows = [
        [j["job_id"], j["command"], j["status"], j["segment_ids"], render.when(j["created_at"]),
         render.when(j["finished_at"]), j["evaluated"], j["entered"], j["exited"]]
        for j in body["jobs"]
    ]  # fmt: skip
    headers = ["JOB", "COMMAND", "STATUS", "SEGMENTS", "CREATED", "FINISHED", "EVALUATED",
               "ENTERED", "EXITED"]  # fmt: skip
    print(render.table(rows, headers) if rows else "no jobs")
    return None


def _job(api: ApiClient, args: argparse.Namespace) -> Any:
    if args.watch:
        job = watch(api, args.id, sys.stdout)
        if args.json:
            return job
    else:
        job = api.request("GET", f"/jobs/{quoted(args.id)}")
        if args.json:
            return job
        print("\n".join(progress_lines(job)))
    print(f"created {render.when(job['created_at'])}, finished {render.when(job['finished_at'])}")
    rows = [
        [t["segment_id"], t["status"], render.when(t["started_at"]), render.when(t["ended_at"]),
         t["processing_ms"], t["evaluated"], t["entered"], t["exited"]]
        for t in job["tasks"]
    ]  # fmt: skip
    headers = ["SEGMENT", "STATUS", "STARTED", "ENDED", "MS", "EVALUATED", "ENTERED", "EXITED"]
    print(render.table(rows, headers))
    for task in job["tasks"]:
        for error in task["errors"]:
            print(f"error: {task['segment_id']}: {error}")
        for warning in task["warnings"]:
            print(f"warning: {task['segment_id']}: {warning}")
    return None


def _cancel(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("POST", f"/jobs/{quoted(args.id)}/cancel")
    if args.json:
        return result
    if not result.get("changed", True):
        print(f"job {args.id} was already canceled")
    else:
        print(f"canceled job {args.id}: {', '.join(result['canceled']) or 'no task left'}")
    return None


def check_tasks(result: dict[str, Any], what: str) -> None:
    """After a command's job: a failed or canceled job is an error (exit code 1)."""
    status = (result.get("job") or {}).get("status")
    if status in ("Failure", "Canceled"):
        failed = [
            f"{sid} {task['status']}" + "".join(f" ({e})" for e in task["errors"])
            for sid, task in (result.get("tasks") or {}).items()
            if task["status"] != "Successful"
        ]
        job_id = result["job"]["job_id"]
        raise OperatorError(f"{what} job {job_id} ended {status}: {', '.join(failed)}")


def add_commands(add: Add) -> None:
    p = add("jobs", _jobs, "recent jobs (refresh, activation, ...) with their status")
    p.add_argument("--segment", help="only jobs with a task for this segment")
    p.add_argument("--status", help="Queued, Processing, Successful, Failure, Skipped, Canceled")
    p.add_argument("--limit", type=int, default=20, help="how many (1..500, default 20)")
    p = add("job", _job, "one job: its tasks, statuses, errors and per-partition progress")
    p.add_argument("id", help="job id")
    p.add_argument("--watch", action="store_true", help="show a live progress bar until it ends")
    add("cancel", _cancel, "cancel a running activate/update/refresh job").add_argument(
        "id", help="job id"
    )
