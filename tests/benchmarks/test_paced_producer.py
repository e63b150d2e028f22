"""The latency benchmark's paced producer, on a fake clock: the events due by each wake-up go
in one burst, stamped when sent, and the producer wakes at most once per tick."""

from __future__ import annotations

import random
from typing import Any

import msgpack
import pytest

from benchmarks import latency


class _Clock:
    """`time` as `_paced` uses it; each sleep wakes `late` s after it was due."""

    def __init__(self, late: float) -> None:
        self.now = 0.0
        self.late = late
        self.sleeps: list[float] = []

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds + self.late


class _Producer:
    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, float, Any]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any = None) -> None:
        self.calls.append(("produce", self.clock.now, msgpack.unpackb(value)))
        self.clock.now += 2e-6  # what a send costs

    def poll(self, timeout: float) -> int:
        self.calls.append(("poll", self.clock.now, None))
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def _run(
    monkeypatch: pytest.MonkeyPatch, rate: float, late: float, seconds: float = 2.0
) -> tuple[_Clock, _Producer, dict[str, float], int, float]:
    clock = _Clock(late)
    monkeypatch.setattr(latency, "time", clock)
    producer = _Producer(clock)
    sent_at: dict[str, float] = {}
    flips = [f"flip-{i}" for i in range(1000)]
    sent, took, flush_s = latency._paced(
        producer,  # type: ignore[arg-type]
        "events",
        random.Random(1),
        1000,
        flips,
        rate,
        seconds,
        0.1,
        "t",
        sent_at,
        {},
        [],
    )
    assert flush_s >= 0
    return clock, producer, sent_at, sent, took


def _bursts(producer: _Producer) -> list[int]:
    """Events sent between two polls."""
    sizes, size = [], 0
    for kind, _at, _event in producer.calls:
        if kind == "produce":
            size += 1
        elif size:
            sizes.append(size)
            size = 0
    return sizes


def test_late_wake_ups_send_what_is_due_in_one_burst_and_the_rate_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each wake-up comes 0.5 ms late (a loaded machine) at 5,000 events/s."""
    clock, producer, _sent_at, sent, took = _run(monkeypatch, 5000, late=0.0005)
    assert sent == 10_000
    assert sent / took >= 4950
    assert max(_bursts(producer)) >= 5
    assert len(clock.sleeps) <= 2.0 / latency.TICK_S  # not one wake-up per event


def test_events_are_stamped_when_sent_not_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    _clock, producer, sent_at, _sent, _took = _run(monkeypatch, 1000, late=0.0004)
    events = [(at, event) for kind, at, event in producer.calls if kind == "produce"]
    assert all(event["ts"] == int((1_700_000_000.0 + at) * 1000) for at, event in events)
    flips = [(at, event) for at, event in events if event["event_id"].startswith("flip-")]
    assert flips
    for at, event in flips:
        assert sent_at[event["customer_id"]] == 1_700_000_000.0 + at
    # the due times are 1 ms apart from 0; the sends come late with the wake-ups
    assert any(abs(at * 1000 - round(at * 1000)) > 0.1 for at, _event in events)


def test_at_1000_per_s_on_time_wake_ups_send_one_event_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, producer, _sent_at, sent, took = _run(monkeypatch, 1000, late=0.0)
    assert sent == 2000 and took == pytest.approx(2.0, abs=0.002)
    assert set(_bursts(producer)) == {1}
    assert len(clock.sleeps) == pytest.approx(2000, rel=0.01)  # one wake-up per event
