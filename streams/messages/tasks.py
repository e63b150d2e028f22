"""The task protocol between the control plane and the events partitions.

A job's *task message* (`TaskMessage`) goes into every events partition with the `ls-task`
header; the partition carries it out between the events before and after it and answers with
a *task report* (`TaskReport`, command `_task_done`) on the control topic. Both are written by
livesegments, but both topics can be written by others too: decoding checks every field, and
the partition runs only a task whose bytes the job recorded (`task_digest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from state import AppliedSegment

from ..errors import BadMessage
from .events import encode

__all__ = [
    "FIGURES",
    "FORGED_TASK",
    "OUTCOMES",
    "SegmentOutcome",
    "TaskMessage",
    "TaskReport",
    "task_digest",
]

FORGED_TASK = "forged_task"
"""Dead-letter code of a task message the control plane did not issue (or garbled)."""
FIGURES = ("evaluated", "entered", "exited")
OUTCOMES = frozenset({"done", "failed", "skipped", "canceled"})
_LIMIT = 1 << 62


def task_digest(value: bytes) -> str:
    """What a job records about its task message: the hex sha256 of the exact bytes."""
    return hashlib.sha256(value).hexdigest()


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _LIMIT


def _text_list(value: Any, what: str, code: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise BadMessage(code, f"{what} must be a list of texts, got {value!r:.200}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """One job's work for every partition: evaluate `segments`, drop `remove`, or (`forget`)
    erase `customer_id`; `cause` labels the membership changes it makes."""

    job_id: str
    action: str
    cause: str
    segments: tuple[AppliedSegment, ...] = ()
    remove: tuple[str, ...] = ()
    cancelable: bool = False
    customer_id: str | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "action": self.action,
            "cause": self.cause,
            "segments": [
                {"id": s.segment_id, "version": s.version, "definition": s.definition}
                for s in self.segments
            ],
            "remove": list(self.remove),
            "cancelable": self.cancelable,
        }
        if self.customer_id is not None:
            body["customer_id"] = self.customer_id
        return encode(body)

    @classmethod
    def decode(cls, raw: bytes | None) -> TaskMessage:
        """The task `raw` carries; BadMessage(`forged_task`) says what is wrong with it."""
        try:
            value = msgpack.unpackb(raw or b"", raw=False)
        except Exception as exc:  # msgpack raises several unrelated types
            kind = type(exc).__name__
            raise BadMessage(FORGED_TASK, f"task message is not msgpack ({kind})") from None
        if not isinstance(value, dict):
            raise BadMessage(FORGED_TASK, "task message is not a map")
        texts: dict[str, str] = {}
        for name in ("job_id", "action", "cause"):
            text = value.get(name)
            if not isinstance(text, str) or not text:
                raise BadMessage(FORGED_TASK, f"task message has no {name!r} text")
            texts[name] = text
        segments = []
        for item in value.get("segments") or []:
            if not (
                isinstance(item, dict)
                and isinstance(item.get("id"), str)
                and _count(item.get("version"))
                and isinstance(item.get("definition"), dict)
            ):
                raise BadMessage(
                    FORGED_TASK, f"task segment {item!r:.200} is not id/version/definition"
                )
            segments.append(AppliedSegment(item["id"], item["version"], item["definition"]))
        customer_id = value.get("customer_id")
        if customer_id is not None and not isinstance(customer_id, str):
            raise BadMessage(FORGED_TASK, "task message's 'customer_id' is not text")
        return cls(
            texts["job_id"],
            texts["action"],
            texts["cause"],
            tuple(segments),
            _text_list(value.get("remove") or [], "task 'remove'", FORGED_TASK),
            value.get("cancelable") is True,
            customer_id,
        )


@dataclass(frozen=True, slots=True)
class SegmentOutcome:
    """What one partition did for one segment of the job."""

    status: str
    error: str | None = None
    evaluated: int = 0
    entered: int = 0
    exited: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, **self.figures()}

    def figures(self) -> dict[str, int]:
        return {"evaluated": self.evaluated, "entered": self.entered, "exited": self.exited}


@dataclass(frozen=True, slots=True)
class TaskReport:
    """A partition's `_task_done` report: its totals, each segment's outcome and figures."""

    job_id: str
    partition: int
    stats: Mapping[str, int]
    segments: Mapping[str, SegmentOutcome] = field(default_factory=dict)
    started_at: int | None = None
    ended_at: int | None = None
    done: int | None = None
    total: int | None = None
    canceled: bool = False
    erased: bool | None = None
    """`forget` only: whether this partition held the customer."""
    exited_segments: tuple[str, ...] = ()

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "command": "_task_done",
            "job_id": self.job_id,
            "partition": self.partition,
            "stats": dict(self.stats),
            "segments": {sid: o.to_dict() for sid, o in self.segments.items()},
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "done": self.done,
            "total": self.total,
            "canceled": self.canceled,
        }
        if self.erased is not None:
            body["erased"] = self.erased
            body["exited_segments"] = list(self.exited_segments)
        return encode(body)

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> TaskReport:
        """A report from the control topic; BadMessage(`invalid_value`) names a bad field."""

        def bad(message: str) -> BadMessage:
            return BadMessage("invalid_value", f"task report: {message}")

        job_id = value.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise bad(f"no 'job_id' text (got {job_id!r:.100})")
        partition = value.get("partition")
        if not _count(partition):
            raise bad(f"'partition' must be a partition number, got {partition!r:.100}")
        stats = value.get("stats")
        if not isinstance(stats, Mapping) or not all(_count(stats.get(k)) for k in FIGURES):
            raise bad(f"'stats' must map {', '.join(FIGURES)} to counts, got {stats!r:.200}")
        numbers: dict[str, int | None] = {}
        for name in ("done", "total", "started_at", "ended_at"):
            number = value.get(name)
            if number is not None and not _count(number):
                raise bad(f"{name!r} must be a count or epoch ms, got {number!r:.100}")
            numbers[name] = number
        raw_segments = value.get("segments")
        raw_segments = {} if raw_segments is None else raw_segments
        if not isinstance(raw_segments, Mapping):
            raise bad(f"'segments' must be a map, got {type(raw_segments).__name__}")
        segments = {}
        for segment_id, got in raw_segments.items():
            if not isinstance(got, Mapping) or got.get("status") not in OUTCOMES:
                raise bad(f"segment {segment_id!r:.100}: outcome {got!r:.200} has no known status")
            error = got.get("error")
            if error is not None and not isinstance(error, str):
                raise bad(f"segment {segment_id!r:.100}: 'error' must be text")
            if not all(_count(got.get(k, 0)) for k in FIGURES):
                raise bad(f"segment {segment_id!r:.100}: figures must be counts")
            figures = {k: int(got.get(k, 0)) for k in FIGURES}
            segments[str(segment_id)] = SegmentOutcome(got["status"], error, **figures)
        erased = value.get("erased")
        exited = value.get("exited_segments")
        return cls(
            job_id,
            partition,  # type: ignore[arg-type]  # checked by _count
            {k: int(stats[k]) for k in FIGURES},
            segments,
            numbers["started_at"],
            numbers["ended_at"],
            numbers["done"],
            numbers["total"],
            value.get("canceled") is True,
            None if erased is None else erased is True,
            () if exited is None else _text_list(exited, "'exited_segments'", "invalid_value"),
        )
