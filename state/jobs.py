"""The tasks of a job: one per segment, with its status, times, errors and per-partition figures.

A job (`state.registry.Job`) is the work of one command; each segment it touches is a task.
The control agent writes tasks (it folds the partitions' reports into them); the API reads
them. A job's own status is derived from its tasks (`job_status`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "CANCELED",
    "FAILURE",
    "FINAL",
    "PROCESSING",
    "QUEUED",
    "SKIPPED",
    "STATUSES",
    "SUCCESSFUL",
    "Task",
    "job_status",
]

QUEUED = "Queued"
PROCESSING = "Processing"
SUCCESSFUL = "Successful"
FAILURE = "Failure"
SKIPPED = "Skipped"
CANCELED = "Canceled"
STATUSES = (QUEUED, PROCESSING, SUCCESSFUL, FAILURE, SKIPPED, CANCELED)
FINAL = frozenset({SUCCESSFUL, FAILURE, SKIPPED, CANCELED})
"""Statuses a task never leaves."""


@dataclass(frozen=True)
class Task:
    """One segment's part of a job.

    `partitions` maps a partition to what it reported: ``status`` (``done``, ``failed``,
    ``skipped``, ``canceled``), ``evaluated``/``entered``/``exited``, ``done``/``total``
    customers, ``started_at``/``ended_at`` and ``error``.
    """

    segment_id: str
    status: str = QUEUED
    started_at: int | None = None
    ended_at: int | None = None
    last_processed_at: int | None = None
    """When a partition last reported work on this task."""
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    partitions: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def skipped(cls, segment_id: str, reason: str, now: int) -> Task:
        """A task that does no work, with `reason` as its warning."""
        return cls(segment_id, SKIPPED, now, now, now, warnings=(reason,))

    @property
    def processing_ms(self) -> int | None:
        """From the first partition's start to the last one's end (None while running)."""
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0, self.ended_at - self.started_at)

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def totals(self) -> dict[str, int]:
        return {
            k: sum(int(p.get(k, 0)) for p in self.partitions.values())
            for k in ("evaluated", "entered", "exited")
        }

    def with_changes(self, **changes: Any) -> Task:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment_id": self.segment_id,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "last_processed_at": self.last_processed_at,
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "partitions": self.partitions,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Task:
        return cls(
            raw["segment_id"],
            raw["status"],
            raw.get("started_at"),
            raw.get("ended_at"),
            raw.get("last_processed_at"),
            tuple(raw.get("errors", ())),
            tuple(raw.get("warnings", ())),
            {int(k): dict(v) for k, v in raw.get("partitions", {}).items()},
        )


def job_status(tasks: Iterable[Task], started: bool, finished: bool) -> str:
    """A job's status from its tasks'.

    Running: Processing once any partition started (`started`), else Queued. Finished:
    Failure if a task failed, else Canceled if one was canceled, else Skipped if every task
    was skipped, else Successful.
    """
    statuses = {t.status for t in tasks}
    if not finished and (not statuses or statuses - FINAL):
        return PROCESSING if started or PROCESSING in statuses else QUEUED
    for status in (FAILURE, CANCELED):
        if status in statuses:
            return status
    if statuses == {SKIPPED}:
        return SKIPPED
    return SUCCESSFUL
