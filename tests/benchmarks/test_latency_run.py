"""`benchmarks.latency_run`: every worker's log and CPU is read (`--workers N`), not the
first's; every phase sends events of its own."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgpack
import pytest

from benchmarks import latency, latency_run
from benchmarks.harness import WorkerProcess
from benchmarks.latency_run import _arm, _clients, _log_marks, _windows_since, _worker_cpu


def _stage_line(lane_p99: float) -> str:
    body = {"lane": {"n": 10, "p50": 1.0, "p90": 2.0, "p99": lane_p99, "max": lane_p99}}
    return f"[2026-11-30 12:00:00] stage timings {json.dumps(body)}\n"


def test_each_workers_stage_lines_are_read_after_its_own_mark(tmp_path: Path) -> None:
    worker = WorkerProcess({}, "latency-run-test", count=2)
    worker.log_path = tmp_path / "w.log"
    first, second = worker.log_paths
    assert (first, second) == (tmp_path / "w.log", tmp_path / "w.1.log")
    first.write_text(_stage_line(5.0))  # logged before the phase: not counted
    marks = _log_marks(worker)
    assert marks == [first.stat().st_size, 0]  # the second log is not there yet
    with first.open("a") as log:
        log.write(_stage_line(7.0))
    second.write_text("starting\n" + _stage_line(30.0) + _stage_line(40.0))
    by_worker = _windows_since(worker, marks)
    assert [[w["lane"]["p99"] for w in windows] for windows in by_worker] == [
        [7.0],
        [30.0, 40.0],
    ]


def test_every_workers_cpu_is_printed_with_their_sum() -> None:
    cpu = {"worker0": 5.0, "worker1": 6.0, "kafka": 12.0}
    assert _worker_cpu(cpu, 2, 10_000) == "5.0 + 6.0 = 11.0 s (500 + 600 = 1100 us/event)"
    assert _worker_cpu(cpu, 1, 10_000) == "5.0 s (500 us/event)"


def test_an_arm_may_set_its_own_worker_count_which_is_not_the_workers_environment() -> None:
    _label, _root, env = _arm("two::workers=2,LS_FREEZE_EVERY=250")
    count, worker, _clients_settings = _clients(env, workers=1)
    assert count == 2
    assert worker == {"LS_FREEZE_EVERY": "250"}
    _label, _root, env = _arm("base")
    assert _clients(env, workers=3)[0] == 3  # `--workers` when the arm says nothing


def test_every_phase_of_a_run_sends_events_no_other_phase_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Phases that repeat the events of another measure duplicates, which the worker skips:
    # until session 14 every turn after a run's first did so.
    monkeypatch.setattr(latency.time, "sleep", lambda seconds: None)
    seen: dict[str, str] = {}
    sequences = set()
    for turn in range(4):
        for rate_index in range(2):
            seed, tag = latency_run.phase_events(7, turn, rate_index)
            producer = _Recorder()
            latency._paced(
                producer,  # type: ignore[arg-type]
                "events",
                random.Random(seed + 2),  # as `measure_latency` seeds it at 1,000 events/s
                1000,
                [f"flip-{turn}-{rate_index}-{i}" for i in range(100)],
                20_000.0,
                0.01,
                0.1,
                f"lat{tag}",
                {},
                {},
                [],
            )
            assert len(producer.events) == 200
            for event in producer.events:
                assert event["event_id"] not in seen, (
                    event["event_id"],
                    seen.get(event["event_id"]),
                )
                seen[event["event_id"]] = tag
            sequences.add(tuple(e["customer_id"] for e in producer.events[:20]))
    assert len(sequences) == 8


class _Recorder:
    """What `_paced` uses of a librdkafka producer; keeps the events sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def produce(self, topic: str, key: bytes, value: bytes, on_delivery: Any = None) -> None:
        self.events.append(msgpack.unpackb(value))

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0
