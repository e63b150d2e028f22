"""The export protocol between the control plane and the exporter agent.

The control plane publishes an `ExportRun` on the export-runs topic (run these segments of an
export as job `job_id`, or `forget` a deleted export's delivery state); the exporter answers
each task with an `ExportReport` (command `_export_done`, phase `started`, then `finished`) on
the control topic, where the control plane folds it into the job. Anyone who may write these
topics can write them too: decoding checks every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadMessage
from .events import encode

__all__ = ["ExportReport", "ExportRun"]

_MAX_MS = 1 << 53
_MAX_COUNT = 1 << 62


def _whole(value: Any, high: int, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


@dataclass(frozen=True, slots=True)
class ExportRun:
    """Run `segments` of export `export_id` as job `job_id`; with `forget`, drop the deleted
    export's delivery state instead."""

    export_id: str
    job_id: str | None = None
    segments: tuple[str, ...] = ()
    forget: bool = False

    @classmethod
    def forgetting(cls, export_id: str) -> ExportRun:
        return cls(export_id, forget=True)

    def encode(self) -> bytes:
        if self.forget:
            return encode({"forget": self.export_id})
        return encode(
            {"job_id": self.job_id, "export_id": self.export_id, "segments": list(self.segments)}
        )

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> ExportRun:
        forget = value.get("forget")
        if forget is not None:
            if not isinstance(forget, str) or not forget:
                raise BadMessage(
                    "invalid_value", f"'forget' must be an export id, got {forget!r:.100}"
                )
            return cls.forgetting(forget)
        job_id, export_id = value.get("job_id"), value.get("export_id")
        if not isinstance(job_id, str) or not isinstance(export_id, str):
            raise BadMessage("invalid_value", "an export run needs 'job_id' and 'export_id' texts")
        segments = value.get("segments") or []
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise BadMessage("invalid_value", f"'segments' must be ids, got {segments!r:.200}")
        return cls(export_id, job_id, tuple(segments))


@dataclass(frozen=True, slots=True)
class ExportReport:
    """The exporter on one task of an export job: `started`, or `finished` with its outcome."""

    job_id: str
    segment_id: str
    phase: str
    at: int | None = None
    status: str | None = None
    count: int | None = None
    reason: str | None = None
    errors: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        body: dict[str, Any] = {
            "command": "_export_done",
            "job_id": self.job_id,
            "segment_id": self.segment_id,
            "phase": self.phase,
            "at": self.at,
        }
        if self.phase == "finished":
            body.update(
                status=self.status,
                count=self.count,
                reason=self.reason,
                errors=list(self.errors),
                details=dict(self.details),
            )
        return encode(body)

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> ExportReport:
        """A report from the control topic; BadMessage(`invalid_value`) names a bad field."""

        def bad(message: str) -> BadMessage:
            return BadMessage("invalid_value", f"export report: {message}")

        job_id, segment_id = value.get("job_id"), value.get("segment_id")
        if not isinstance(job_id, str) or not isinstance(segment_id, str):
            raise bad("'job_id' and 'segment_id' must be texts")
        phase = value.get("phase")
        if phase not in ("started", "finished"):
            raise bad(f"'phase' must be started or finished, got {phase!r:.50}")
        at, count = value.get("at"), value.get("count")
        if at is not None and not _whole(at, _MAX_MS, 1):
            raise bad(f"'at' must be epoch milliseconds, got {at!r:.100}")
        if count is not None and not _whole(count, _MAX_COUNT):
            raise bad(f"'count' must be a count, got {count!r:.100}")
        errors = value.get("errors")
        if errors is not None and not (
            isinstance(errors, list) and all(isinstance(e, str) for e in errors)
        ):
            raise bad(f"'errors' must be a list of texts, got {errors!r:.200}")
        reason, status = value.get("reason"), value.get("status")
        if not isinstance(reason, str | None) or not isinstance(status, str | None):
            raise bad("'reason' and 'status' must be text")
        details = value.get("details")
        return cls(
            job_id,
            segment_id,
            phase,
            at,
            status,
            count,
            reason,
            tuple(errors or ()),
            details if isinstance(details, Mapping) else {},
        )
