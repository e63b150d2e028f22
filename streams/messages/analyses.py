"""The report of an analysis job (similar customers, suggested segments) on the control topic.

The analysis runs next to the control agent (`streams.analyses`), outside its commits; when
it ends it publishes an `AnalysisReport` (command `_analysis_done`) on the control topic, where
the control agent folds it into the job (and, for similar customers, writes the `expansion`
segment), in order with every other command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import BadMessage
from .events import encode

__all__ = ["ANALYSIS_COMMANDS", "ANALYSIS_OUTCOMES", "AnalysisReport"]

ANALYSIS_COMMANDS = frozenset({"similar", "suggest_measure", "suggest_activity"})
"""Commands whose job is an analysis: no partition tasks, one runner (`streams.analyses`)."""
ANALYSIS_OUTCOMES = frozenset({"successful", "failed", "canceled"})


@dataclass(frozen=True, slots=True)
class AnalysisReport:
    """How an analysis job ended: its `result`, or the `error` (code, message, path)."""

    job_id: str
    outcome: str
    result: Mapping[str, Any] = field(default_factory=dict)
    error: Mapping[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        return encode(
            {
                "command": "_analysis_done",
                "job_id": self.job_id,
                "outcome": self.outcome,
                "result": dict(self.result),
                "error": dict(self.error),
            }
        )

    @classmethod
    def decode(cls, value: Mapping[str, Any]) -> AnalysisReport:
        """A report from the control topic; BadMessage(`invalid_value`) names a bad field."""
        job_id = value.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise BadMessage("invalid_value", f"analysis report: no 'job_id' (got {job_id!r:.100})")
        outcome = value.get("outcome")
        if outcome not in ANALYSIS_OUTCOMES:
            raise BadMessage(
                "invalid_value",
                f"analysis report: 'outcome' must be one of {sorted(ANALYSIS_OUTCOMES)}, got "
                f"{outcome!r:.100}",
            )
        result, error = value.get("result") or {}, value.get("error") or {}
        if not isinstance(result, Mapping) or not isinstance(error, Mapping):
            raise BadMessage("invalid_value", "analysis report: 'result'/'error' must be maps")
        return cls(job_id, str(outcome), dict(result), dict(error))
