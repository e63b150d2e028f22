"""The latency phase alone, with the full bench's state: for diagnosing and tuning the p99.

    .venv/bin/python -m benchmarks.latency_run --customers 100000 --segments 100 --events 20000

Starts the worker, creates the segments, preloads the population and `--events` activity
events (the worker running, so their histories are in Redis as after the full bench's
end-to-end phase), restarts the worker (cold profile cache, as in the full bench), catches it
up with a `refresh` round trip and measures latency at each `--latency-rate`. With
`--stages S` the worker logs per-stage timings every S s (`LS_STAGE_REPORT_S`, see
`streams/engine/stages.py`); those logged during each phase are printed after it (the
worst p99 and max over the windows). Keys and topics are cleaned up as in `bench`.

A/B on one preloaded state: each `--arm LABEL[:DIR][:K=V,...]` is a worker run from checkout
DIR (default: this one) with extra environment; the arms take turns `--rounds` times, each
turn on a restarted worker, so a busy machine's swings fall on every arm alike.

`--workers N`: every arm runs N worker processes in the one consumer group (as the full
bench's `--workers`); each phase waits until the group settled with every worker owning
partitions and no worker warms its cache, and prints each worker's CPU (and µs per event
of the whole offered rate) and stage timings merged over every worker's log. An arm's
`workers=N` key overrides it for that arm.
"""

from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path
from typing import Any

from streams.client import Client

from .bench import (
    _create_segments,
    _exit_on_sigterm,
    _latency,
    _loadavg,
    _meter,
    _say,
    _wait_settled,
)
from .harness import ROOT, BenchEnv, Progress, WorkerProcess, bulk_produce, end_offsets
from .latency import flip_pool, measure_latency
from .machine import redis_forks
from .procstat import CpuMeter
from .workload import Workload, segment_definitions

__all__ = ["main", "phase_events"]

_STAGE_MARK = "stage timings "

_CATCH_UP = {"command": "refresh", "segment_ids": ["bench-flip"]}
"""A round trip through every partition, cheaper than refreshing all segments (1.25M
evaluations a partition with 100k customers, minutes on a busy machine)."""


def _stage_lines(log_path: Path, skip: int) -> tuple[list[dict[str, Any]], int]:
    """The stage summaries the worker logged after byte `skip` of its log, and the log's size."""
    data = log_path.read_bytes()
    found = []
    for line in data[skip:].decode(errors="replace").splitlines():
        at = line.find(_STAGE_MARK)
        if at >= 0:
            found.append(json.loads(line[at + len(_STAGE_MARK) :]))
    return found, len(data)


def _log_marks(worker: WorkerProcess) -> list[int]:
    """The size of each worker's log now (0 if it is not there yet)."""
    return [path.stat().st_size if path.exists() else 0 for path in worker.log_paths]


def _windows_since(worker: WorkerProcess, marks: list[int]) -> list[list[dict[str, Any]]]:
    """Each worker's stage summaries logged after its mark (`_log_marks`)."""
    return [
        _stage_lines(path, skip)[0] if path.exists() else []
        for path, skip in zip(worker.log_paths, marks, strict=True)
    ]


def _worker_cpu(cpu: dict[str, float], count: int, events: float) -> str:
    """Each worker's CPU seconds and µs per event of the whole offered rate (with N workers
    each sees ~1/N of the events), then their sum when there are several."""
    seconds = [cpu.get(f"worker{n}", 0.0) for n in range(count)]
    per_event = [s / events * 1e6 if events else 0.0 for s in seconds]
    text = " + ".join(f"{s:.1f}" for s in seconds)
    us = " + ".join(f"{u:.0f}" for u in per_event)
    if count > 1:
        text += f" = {sum(seconds):.1f}"
        us += f" = {sum(per_event):.0f}"
    return f"{text} s ({us} us/event)"


def _worst(windows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per stage over the windows: samples, the median p50, p90 and p99, the worst p99 and max
    (ms)."""
    merged: dict[str, dict[str, float]] = {}
    for stage in sorted({s for w in windows for s in w}):
        rows = [w[stage] for w in windows if stage in w]
        p50s = sorted(r["p50"] for r in rows)
        p90s = sorted(r.get("p90", r["p99"]) for r in rows)
        p99s = sorted(r["p99"] for r in rows)
        merged[stage] = {
            "n": sum(r["n"] for r in rows),
            "p50": p50s[len(p50s) // 2],
            "p90": p90s[len(p90s) // 2],
            "p99_median": p99s[len(p99s) // 2],
            "p99": max(r["p99"] for r in rows),
            "max": max(r["max"] for r in rows),
        }
    return merged


_BENCH_CLIENTS = ("reader.", "paced.")
"""Arm keys with these prefixes set the bench's own clients (librdkafka settings of the change
reader, of the paced producer), not the worker's environment: `reader.fetch.wait.max.ms=500`."""


_WORKERS_KEY = "workers"
"""An arm key that sets that arm's worker count instead of `--workers` (`two::workers=2`), so
one and two workers alternate on one preloaded state."""


def _clients(
    env: dict[str, str], workers: int = 1
) -> tuple[int, dict[str, str], dict[str, dict[str, str]]]:
    """An arm's environment -> (its worker count, `workers` unless the arm sets its own; the
    workers' environment; {prefix: the bench client's settings})."""
    count = int(env.get(_WORKERS_KEY, workers))
    worker = {
        k: v for k, v in env.items() if not k.startswith(_BENCH_CLIENTS) and k != _WORKERS_KEY
    }
    clients = {
        prefix: {k[len(prefix) :]: v for k, v in env.items() if k.startswith(prefix)}
        for prefix in _BENCH_CLIENTS
    }
    return count, worker, clients


def _arm(text: str) -> tuple[str, Path, dict[str, str]]:
    """`LABEL[:DIR][:K=V,...]` -> (label, checkout, extra environment; `reader.`/`paced.` keys
    are the bench clients', see `_clients`)."""
    label, *rest = text.split(":")
    root, env = ROOT, dict[str, str]()
    for part in rest:
        if "=" in part:
            for pair in part.split(","):
                key, _, value = pair.partition("=")
                env[key] = value
        elif part:
            root = Path(part)
    return label, root, env


def _counts(windows: list[dict[str, Any]]) -> dict[str, int]:
    """Samples per stage over the windows (`lane`: batches, `fetch_call`: `getmany` calls)."""
    return {s: int(sum(w[s]["n"] for w in windows if s in w)) for s in ("lane", "fetch_call")}


def _rss_mib(pid: int) -> float:
    """A process's resident memory now (MiB; 0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def _idle(bench: BenchEnv, worker: WorkerProcess, seconds: float) -> dict[str, Any]:
    """Each process's CPU while the worker is caught up and nothing is sent: its fixed cost."""
    meter = _meter(bench, worker)
    marks = _log_marks(worker)
    before = meter.snapshot()
    time.sleep(seconds)
    cpu = CpuMeter.delta(before, meter.snapshot())
    by_worker = _windows_since(worker, marks)
    return {
        "seconds": seconds,
        "cpu_s": cpu,
        "counts": [_counts(windows) for windows in by_worker],
        "loadavg": _loadavg(),
    }


def phase_events(seed: int, turn: int, rate_index: int) -> tuple[int, str]:
    """The paced producer's seed and event-id tag for the `rate_index`th phase of an arm's
    `turn`: each phase of a run sends a customer sequence and event ids of its own."""
    return seed + 1000 * (1 + turn) + rate_index, f"-{turn}.{rate_index}"


def _phase(
    bench: BenchEnv,
    worker: WorkerProcess,
    client: Client,
    args: argparse.Namespace,
    flips: list[str],
    clients: dict[str, dict[str, str]] | None = None,
    number: int = 0,
) -> list[dict[str, Any]]:
    """Restart `worker`, catch it up, (measure it idle,) measure one latency phase per rate;
    a row per rate with its stages (the idle figures on the first). `clients`: the arm's
    settings of the bench's own clients (`_clients`). `number` (the arm's turn in the run)
    gives each phase events of its own: a phase that sent the events of another (one seed, one
    id each) would measure duplicates, which the worker skips (until session 14 every turn
    after the first did so, ~20 % less worker CPU than the full bench's phase)."""
    clients = clients or {}
    settings = bench.settings
    parts = settings.events_partitions
    worker.stop()
    worker.start()
    meter = _meter(bench, worker)
    _wait_settled(worker, parts)
    catch_up = {"command": "refresh", "all": True} if args.catch_up == "all" else _CATCH_UP
    started = time.perf_counter()
    assert client.command(dict(catch_up), timeout=300)["ok"]
    caught_up_s = time.perf_counter() - started
    warm_s = worker.wait_warm()  # as the full bench: the restart's warm-up is not measured
    idle = _idle(bench, worker, args.idle) if args.idle else None
    rows = []
    for rate in args.latency_rate or [1000.0]:
        marks = _log_marks(worker)
        load = _loadavg()
        forks = redis_forks(bench.settings.redis_url)
        before, window_from = meter.snapshot(), time.time()
        seed, phase = phase_events(args.seed, number, len(rows))
        lat = measure_latency(
            bench.bootstrap,
            settings.events_topic,
            settings.membership_topic,
            parts,
            args.customers,
            seed,
            rate=rate,
            seconds=args.latency_seconds,
            warmup_s=args.warmup_s,
            flip_share=min(0.2, 200 / rate),
            flip_ids=flips,
            linger_ms=args.linger_ms,
            reader_config=clients.get("reader."),
            phase_id=phase,
            producer_config=clients.get("paced."),
        )
        row = _latency(lat, CpuMeter.delta(before, meter.snapshot()))
        row["window_epoch_s"] = [window_from, time.time()]  # the CPU window (e.g. for GC logs)
        row["flip_hops_ms"] = {
            name: [round(lat.percentile(q, values), 1) for q in (50, 90, 99)]
            for name, values in (
                ("sent->produce_acked", lat.produced_ms),
                ("sent->worker_at", lat.worker_ms),
                ("worker_at->arrived", lat.after_worker_ms),
                ("sent->arrived", lat.latencies_ms),
            )
        }
        by_worker = _windows_since(worker, marks)
        row["stages_ms"] = _worst([w for windows in by_worker for w in windows])
        row["counts"] = [_counts(windows) for windows in by_worker]
        row["workers"] = worker.count
        row["assignments"] = worker.assignments()
        row["loadavg"] = [load, _loadavg()]
        row["catch_up_s"] = caught_up_s
        row["warm_wait_s"] = warm_s
        row["redis_forks"] = [forks, redis_forks(bench.settings.redis_url)]
        row["worker_rss_mib"] = [_rss_mib(pid) for pid in worker.pids]
        if idle is not None:
            row["idle"], idle = idle, None
        rows.append(row)
    return rows


def _print_row(label: str, round_no: int, row: dict[str, Any]) -> None:
    cpu = row["cpu_s"]
    # the producer's warm-up (3 s) is inside the CPU window: count its events too
    events = row["events"] * (1 + 3.0 / max(row["seconds"], 1e-9))
    print(
        f"[{label} r{round_no} {row['offered_per_s']:.0f}/s] p50 {row['p50_ms']:.1f} "
        f"p99 {row['p99_ms']:.1f} max {row['max_ms']:.1f} ms; worker-stamped p50 "
        f"{row['worker_p50_ms']:.1f} p99 {row['worker_p99_ms']:.1f}; matched "
        f"{row['matched']}/{row['flips']}; by window {row['p50_by_window_ms']}; worker cpu "
        f"{_worker_cpu(cpu, row.get('workers', 1), events)}; "
        f"cpu {cpu}; counts {row['counts']}; partitions {row.get('assignments')}; "
        f"load {row['loadavg']}; catch-up "
        f"{row.get('catch_up_s', 0):.1f} s, then warm-up {row.get('warm_wait_s', 0):.1f} s; "
        f"redis {row.get('redis_forks')}; worker rss "
        f"{row.get('worker_rss_mib')} MiB",
        flush=True,
    )
    if "idle" in row:
        print(f"    idle {row['idle']}", flush=True)
    print(f"    flip hops p50/p90/p99 ms {row['flip_hops_ms']}", flush=True)
    for phase in row.get("producer_phases", []):
        print(
            f"    paced producer {phase['phase']}: offered {phase['offered_per_s']:.0f}/s, "
            f"achieved {phase['achieved_per_s']:.0f}/s ({phase['sent']} events in "
            f"{phase['send_s']:.2f} s, flush {phase['flush_s']:.2f} s), cpu {phase['cpu_s']:.2f} s",
            flush=True,
        )
    for stage, figures in row["stages_ms"].items():
        print(f"    {stage:22s} {figures}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--latency-rate", type=float, action="append", help="events/s (repeatable; 1000)"
    )
    parser.add_argument("--linger-ms", type=int, default=0, help="the paced producer's linger")
    parser.add_argument(
        "--idle", type=float, default=0.0, help="measure the caught-up worker idle for S s first"
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--warmup-s",
        type=float,
        default=3.0,
        help="seconds the paced producer sends at the rate before the measured phase",
    )
    parser.add_argument(
        "--catch-up",
        choices=("flip", "all"),
        default="flip",
        help="after the restart: refresh one segment (flip) or all of them, as the full bench",
    )
    parser.add_argument("--stages", type=float, default=0.0, help="LS_STAGE_REPORT_S (0: off)")
    parser.add_argument("--arm", action="append", help="LABEL[:DIR][:K=V,...] (repeatable)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the one group (every arm)"
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    arms = [_arm(a) for a in args.arm or ["this"]]
    extra = {"LS_STAGE_REPORT_S": str(args.stages)} if args.stages else {}
    workload = Workload(args.customers, args.segments, args.events, args.seed)
    bench = BenchEnv(args.partitions, **extra)
    settings = bench.settings
    topic, parts = settings.events_topic, settings.events_partitions
    worker = WorkerProcess(bench.env, bench.run_id, args.workers)
    progress = Progress(bench, parts)
    out: dict[str, Any] = {"loadavg_at_start": _loadavg(), "run_id": bench.run_id, "rows": []}
    client: Client | None = None
    try:
        _say(f"run {bench.run_id}: starting {args.workers} worker(s) (logs {worker.log_paths})")
        worker.start()
        client = Client(settings)
        _wait_settled(worker, parts)
        assert client.command({"command": "refresh", "all": True}, timeout=120)["ok"]
        now = int(time.time() * 1000)
        _create_segments(client, segment_definitions(args.segments, args.seed, now))
        _say(f"preloading {args.customers} profiles and {args.events} events (worker running)")
        start = end_offsets(bench.bootstrap, topic, parts)
        bulk_produce(bench.bootstrap, topic, workload.profiles(now))
        bulk_produce(bench.bootstrap, topic, workload.activity(int(time.time() * 1000)))
        end = end_offsets(bench.bootstrap, topic, parts)
        progress.wait_until(start, end, timeout=1800, worker=worker)
        worker.stop()
        flips = flip_pool(args.customers, args.seed)
        for round_no in range(args.rounds):
            for label, root, env in arms:
                count, worker_env, clients = _clients(env, args.workers)
                worker = WorkerProcess({**bench.env, **worker_env}, bench.run_id, count, root=root)
                _say(f"round {round_no}, arm {label}: latency at {args.latency_rate or 1000}/s")
                turn = round_no * len(arms) + arms.index((label, root, env))
                for row in _phase(bench, worker, client, args, flips, clients, turn):
                    row |= {"arm": label, "round": round_no}
                    out["rows"].append(row)
                    _print_row(label, round_no, row)
                worker.stop()
        out["loadavg_at_end"] = _loadavg()
    finally:
        worker.stop()
        if client is not None:
            client.close()
        keys, topics = bench.cleanup()
        _say(f"cleaned {keys} Redis keys and {topics} topics")
    if args.output:
        args.output.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # cleanup runs on SIGTERM too
    raise SystemExit(main())
