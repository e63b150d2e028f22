"""The full bench's latency phases: a phase at a rate measured before sends events of its own."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from benchmarks import bench
from benchmarks.latency import LatencyResult


class _Meter:
    def snapshot(self) -> dict[str, float]:
        return {"worker0": 1.0}


class _Settings:
    events_topic = "events"
    membership_topic = "membership"
    events_partitions = 8
    redis_url = "redis://127.0.0.1:1/0"


class _Bench:
    """What `_measure` reads of a `BenchEnv`."""

    def __init__(self) -> None:
        self.bootstrap = ["127.0.0.1:1"]
        self.settings = _Settings()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`measure_latency`'s calls (the seed and the keyword arguments), Redis and the CPU meter
    left out."""
    made: list[dict[str, Any]] = []

    def measure(*args: Any, **kwargs: Any) -> LatencyResult:
        made.append({"seed": args[5], **kwargs})
        return LatencyResult(1000.0, 1000.0, 20.0, 20_000, 1, 1)

    monkeypatch.setattr(bench, "measure_latency", measure)
    monkeypatch.setattr(
        bench, "redis_forks", lambda url: {"forks": 0, "aof_rewriting": 0, "bgsaving": 0}
    )
    monkeypatch.setattr(bench.CpuMeter, "delta", staticmethod(lambda a, b: {}))
    return made


def test_the_one_worker_phase_does_not_replay_the_first_phases_events(
    calls: list[dict[str, Any]],
) -> None:
    args = argparse.Namespace(customers=100, seed=7, latency_seconds=1.0, quick=True)
    flips = ["f1", "f2"]
    bench._measure(args, _Bench(), _Meter(), 1000.0, flips)  # type: ignore[arg-type]
    bench._measure(args, _Bench(), _Meter(), 1000.0, flips, "-one")  # type: ignore[arg-type]
    first, one = calls
    assert first["rate"] == one["rate"] == 1000.0
    assert first["seed"] != one["seed"]  # another customer sequence
    assert first["phase_id"] != one["phase_id"]  # other event ids: no duplicates
    assert first["flip_ids"] is one["flip_ids"] is flips  # flips popped from one pool


def test_a_phase_counts_the_redis_forks_that_ran_in_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rewrite running when the phase starts counts, and so does each fork during it."""
    snapshots = iter(
        [
            {"forks": 3, "aof_rewriting": 1, "bgsaving": 0},
            {"forks": 5, "aof_rewriting": 0, "bgsaving": 0},
        ]
    )
    monkeypatch.setattr(bench, "redis_forks", lambda url: next(snapshots))
    monkeypatch.setattr(
        bench, "measure_latency", lambda *a, **k: LatencyResult(1000.0, 1000.0, 20.0, 1, 1, 1)
    )
    monkeypatch.setattr(bench.CpuMeter, "delta", staticmethod(lambda a, b: {}))
    args = argparse.Namespace(customers=100, seed=7, latency_seconds=1.0, quick=True)
    lat, _ = bench._measure(args, _Bench(), _Meter(), 1000.0, [])  # type: ignore[arg-type]
    assert lat.redis_forks == 3  # the one running at the start, and two more
    assert bench._latency(lat, {})["redis_forks"] == 3


def test_the_warm_up_phase_sends_events_of_its_own_for_as_long_as_asked(
    calls: list[dict[str, Any]],
) -> None:
    args = argparse.Namespace(customers=100, seed=7, latency_seconds=20.0, quick=False)
    for phase_id, seconds in (("-warm", 30.0), ("", None), ("-one", None)):
        bench._measure(args, _Bench(), _Meter(), 1000.0, [], phase_id, seconds)  # type: ignore[arg-type]
    warm, measured, one = calls
    assert warm["seconds"] == 30.0 and measured["seconds"] == one["seconds"] == 20.0
    assert len({warm["seed"], measured["seed"], one["seed"]}) == 3  # three customer sequences
    assert len({warm["phase_id"], measured["phase_id"], one["phase_id"]}) == 3  # three id sets


def test_the_warm_up_is_on_by_default_and_short_in_a_quick_run() -> None:
    assert bench._parse([]).latency_warmup_s == 30.0
    assert bench._parse(["--quick"]).latency_warmup_s == 5.0
    assert bench._parse(["--latency-warmup-s", "0"]).latency_warmup_s == 0.0
