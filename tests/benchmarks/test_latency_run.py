"""`benchmarks.latency_run --workers N`: every worker's log and CPU is read, not the first's."""

from __future__ import annotations

import json
from pathlib import Path

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
