"""The analysis job's report on the control topic: encoded, decoded, checked."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from streams.errors import BadMessage
from streams.messages import AnalysisReport


def test_a_report_round_trips() -> None:
    report = AnalysisReport("j1", "failed", error={"code": "unknown_attribute", "path": "using[1]"})
    raw = msgpack.unpackb(report.encode(), raw=False)
    assert raw["command"] == "_analysis_done"
    assert AnalysisReport.decode(raw) == report


@pytest.mark.parametrize(
    "raw",
    [
        {"outcome": "successful"},
        {"job_id": "j1", "outcome": "maybe"},
        {"job_id": "j1", "outcome": "successful", "result": [1]},
        {"job_id": "", "outcome": "canceled"},
    ],
)
def test_a_malformed_report_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(BadMessage) as caught:
        AnalysisReport.decode(raw)
    assert caught.value.code == "invalid_value"
