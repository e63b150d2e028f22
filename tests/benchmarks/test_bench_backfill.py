"""The bench's backfill phase: the quiet wait before its window, each partition's times, the
job's records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from benchmarks.bench import (
    QUIET_CORES,
    _decoded,
    _hops_text,
    _span,
    _wait_quiet,
    _worker_spans,
)


class _Meter:
    """A `CpuMeter` whose processes used the given CPU seconds between snapshots."""

    def __init__(self, used: list[float]) -> None:
        self._used: Iterator[float] = iter(used)
        self.total = 0.0
        self.snapshots = 0

    def snapshot(self) -> dict[str, float]:
        self.snapshots += 1
        if self.snapshots > 1:
            self.total += next(self._used)
        return {"worker0": self.total}


def test_the_window_waits_until_the_processes_are_quiet() -> None:
    """Busy, busy, quiet: the wait ends at the third step, reporting the quiet cores."""
    step = 0.01
    meter = _Meter([1.0 * step, 0.5 * step, QUIET_CORES / 2 * step, 1.0 * step])
    quiet = _wait_quiet(meter, timeout=10.0, step=step)  # type: ignore[arg-type]
    assert meter.snapshots == 4
    assert quiet["cores"] < QUIET_CORES


def test_the_wait_gives_up_at_its_timeout() -> None:
    meter = _Meter([1.0] * 10_000)
    quiet = _wait_quiet(meter, timeout=0.0, step=0.001)  # type: ignore[arg-type]
    assert meter.snapshots == 1
    assert quiet["cores"] == float("inf")


def test_the_span_is_first_start_to_last_end() -> None:
    parts: dict[str, dict[str, Any]] = {
        "0": {"start_s": 0.06, "end_s": 1.7},
        "1": {"start_s": 0.05, "end_s": 1.9},
        "2": {"start_s": None, "end_s": None},
    }
    assert _span(parts) == "0.05-1.90 s"
    assert _span({}) == "n/a"


def test_the_jobs_records_decode_as_json_or_msgpack() -> None:
    """Commands are JSON (the client's), reports and replies msgpack; anything else is skipped."""
    assert _decoded(b'{"request_id": "r1"}') == {"request_id": "r1"}
    report = {"command": "_task_done", "job_id": "j", "partition": 3}
    assert _decoded(msgpack.packb(report)) == report
    for odd in (b"", None, b"\xc1", msgpack.packb([1, 2])):
        with pytest.raises(ValueError):
            _decoded(odd)


def test_the_hops_row_says_command_reports_and_reply() -> None:
    hops = {"command_s": 0.002, "reports_s": [[4, 1.7], [0, 1.98], [1, 1.9]], "reply_s": 2.01}
    assert _hops_text(hops) == "command 0.002, reports 1.7-1.98, reply 2.01 s"
    assert _hops_text({"reports_s": []}) == "n/a"


def test_each_workers_span_is_its_own_partitions_first_start_to_last_end() -> None:
    parts: dict[str, dict[str, Any]] = {
        "0": {"start_s": 0.02, "end_s": 1.6},
        "1": {"start_s": 0.03, "end_s": 1.9},
        "2": {"start_s": 0.01, "end_s": 1.7},
        "3": {"start_s": None, "end_s": None},
    }
    spans = _worker_spans([[0, 2], [1, 3], None], parts)
    assert spans == [
        {"partitions": [0, 2], "start_s": 0.01, "end_s": 1.7},
        {"partitions": [1, 3], "start_s": 0.03, "end_s": 1.9},
        {"partitions": None, "start_s": None, "end_s": None},
    ]
