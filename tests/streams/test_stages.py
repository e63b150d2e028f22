"""StageClock: per-stage timings of the events path, off unless a report interval is set."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from streams.engine.stages import StageClock


def test_nothing_is_recorded_while_off() -> None:
    clock = StageClock()
    clock.add("commit", 0.5)
    clock.age("age_fetched", [1])
    assert clock.report() == {}


def test_a_report_summarises_each_stage_in_ms_and_starts_over() -> None:
    clock = StageClock()
    clock.enabled = True
    for ms in range(1, 101):
        clock.add("commit", ms / 1000)
    clock.add("decode", 0.002)
    report = clock.report()
    assert report["commit"] == {"n": 100, "p50": 51.0, "p90": 90.0, "p99": 99.0, "max": 100.0}
    assert report["decode"] == {"n": 1, "p50": 2.0, "p90": 2.0, "p99": 2.0, "max": 2.0}
    assert clock.report() == {}  # the next window starts empty


def test_running_records_gc_pauses_and_loop_lag_and_logs_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = StageClock()

    async def run() -> None:
        task = asyncio.ensure_future(clock.run(0.05))
        await asyncio.sleep(0.02)
        gc.collect()
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="streams.engine.stages"):
        asyncio.run(run())
    logged = [r.getMessage() for r in caplog.records if "stage timings" in r.getMessage()]
    assert logged and any('"gc2"' in line for line in logged)
    assert any('"loop_lag"' in line for line in logged)
    assert not clock.enabled and clock._on_gc not in gc.callbacks  # off again once stopped
