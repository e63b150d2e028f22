"""The hop trace of the events path (diagnosis only): each record's hops, in order, once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from streams.engine import hops
from streams.engine.stages import STAGES


@dataclass
class _Record:
    timestamp: int


@pytest.fixture
def stages_on() -> object:
    STAGES.enabled = True
    STAGES.samples = {}
    yield STAGES
    STAGES.enabled = False
    STAGES.samples = {}


def test_each_hop_is_the_time_since_the_previous_one_and_the_age_since_the_send(
    stages_on: object,
) -> None:
    now = time.monotonic()
    wall = time.time()
    record = _Record(int((wall - 0.050) * 1000))  # sent 50 ms ago
    record._ls_fetched = now - 0.040  # type: ignore[attr-defined]
    record._ls_taken = now - 0.030  # type: ignore[attr-defined]
    record._ls_back = now - 0.025  # type: ignore[attr-defined]
    trace = hops.BatchTrace([record], now - 0.020)
    trace.mark("loaded")
    trace.mark("loaded")  # a second run of the batch does not move a hop
    trace.mark("committed")
    trace.finish()
    trace.finish()  # reported once
    samples = STAGES.samples
    names = sorted(s for s in samples if s.startswith("h"))
    assert names == [
        "h1_thread_fetch",
        "h2_thread_take",
        "h3_loop",
        "h4_lane",
        "h5_loaded",
        "h6_committed",
    ]
    assert all(len(samples[n]) == 1 for n in names)
    ms = {n: samples[n][0] * 1000 for n in names}
    assert ms["h1_thread_fetch"] == pytest.approx(10, abs=2)
    assert ms["h2_thread_take"] == pytest.approx(10, abs=0.1)
    assert ms["h3_loop"] == pytest.approx(5, abs=0.1)
    assert ms["h4_lane"] == pytest.approx(5, abs=0.1)
    assert samples["a4_lane"][0] * 1000 == pytest.approx(30, abs=2)
    assert samples["a6_committed"][0] * 1000 >= 50 - 2


def test_a_record_without_fetch_stamps_starts_at_its_lane(stages_on: object) -> None:
    record = _Record(int(time.time() * 1000))
    trace = hops.BatchTrace([record], time.monotonic())
    trace.finish()
    assert sorted(STAGES.samples) == ["a4_lane", "h4_lane"]


def test_off_without_the_stage_report() -> None:
    assert not STAGES.enabled
    hops.start(3, [_Record(0)], time.monotonic())
    assert hops.trace_of(3) is None
    hops.mark(3, "loaded")
    assert STAGES.samples == {}


def test_a_timed_request_passes_its_result_and_error_through_and_counts_each_call(
    stages_on: object,
) -> None:
    class _Client:
        async def request(self, value: int) -> int:
            if value < 0:
                raise ValueError(value)
            return value * 2

    timed = hops._timed(_Client.request, "fetch_request")
    client = _Client()
    assert asyncio.run(timed(client, 21)) == 42
    with pytest.raises(ValueError):
        asyncio.run(timed(client, -1))
    assert len(STAGES.samples["fetch_request"]) == 2  # the failed request counted too
    assert all(0 <= seconds < 5 for seconds in STAGES.samples["fetch_request"])
