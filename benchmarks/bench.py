"""livesegments benchmark: raw ceiling, end-to-end throughput, latency, backfill, memory.

    .venv/bin/python -m benchmarks.bench [--customers 100000] [--segments 100]
        [--events 200000] [--seed 7] [--partitions 8] [--quick]

Runs against the Kafka broker and Redis of the environment (KAFKA_BOOTSTRAP, REDIS_URL) on
its own uuid-named topics, consumer group and Redis key prefix, which it deletes at the end.
See benchmarks/README.md for what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from streams.client import Client

from .harness import ROOT, BenchEnv, Progress, WorkerProcess, bulk_produce, end_offsets
from .latency import measure_latency
from .machine import describe_machine
from .raw import aiokafka_ceiling, kafka_python_ceiling
from .workload import Workload, backfill_segment, segment_definitions

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=8, help="LS_EVENTS_PARTITIONS")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the consumer group"
    )
    parser.add_argument("--latency-rate", type=float, default=1000.0, help="events/s offered")
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 5k customers, 20 segments, 20k events, 5 s latency phase",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.segments, args.events = 5_000, 20, 20_000
        args.latency_seconds = 5.0
        if args.output == RESULTS / "latest.json":
            args.output = RESULTS / "quick.json"
    return args


def _loadavg() -> str:
    """1/5/15-minute load: other processes on the machine skew every figure."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _create_segments(client: Client, definitions: list[dict[str, Any]]) -> float:
    """Send every `create` (activate: true) at once, then collect the replies; seconds."""
    started = time.perf_counter()
    ids = []
    for definition in definitions:
        request_id = uuid.uuid4().hex
        client.send_command(
            {"command": "create", "request_id": request_id, "activate": True, "segment": definition}
        )
        ids.append((request_id, definition["id"]))
    for request_id, segment_id in ids:
        reply = client.wait_reply(request_id, timeout=120)
        if not reply.get("ok"):
            raise RuntimeError(f"create {segment_id!r} refused: {reply}")
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    workload = Workload(args.customers, args.segments, args.events, args.seed)
    bench = BenchEnv(args.partitions)
    settings = bench.settings
    topic, parts = settings.events_topic, settings.events_partitions
    machine = describe_machine(settings.redis_url, ROOT)
    worker = WorkerProcess(bench.env, bench.run_id, args.workers)
    progress = Progress(bench, parts)
    out: dict[str, Any] = {
        "machine": machine,
        "run": {
            "run_id": bench.run_id,
            "customers": args.customers,
            "segments": args.segments,
            "events": args.events,
            "seed": args.seed,
            "workers": args.workers,
            "quick": args.quick,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "settings": {env: value for env, value, _doc in settings.describe()},
    }
    out["run"]["loadavg_at_start"] = _loadavg()
    client: Client | None = None
    try:
        used_before = bench.used_memory()
        _say(f"run {bench.run_id}: starting the worker (log {worker.log_path})")
        worker.start()
        client = Client(settings)
        started = time.perf_counter()
        reply = client.command({"command": "refresh", "all": True}, timeout=120)
        assert reply["ok"], reply
        out["worker_ready_s"] = time.perf_counter() - started

        now = int(time.time() * 1000)
        definitions = segment_definitions(args.segments, args.seed, now)
        _say(f"creating and activating {len(definitions)} segments")
        out["segments_create_s"] = _create_segments(client, definitions)

        _say(f"preloading {args.customers} profiles (worker running)")
        start0 = end_offsets(bench.bootstrap, topic, parts)
        started = time.perf_counter()
        bulk_produce(bench.bootstrap, topic, workload.profiles(now))
        produced_s = time.perf_counter() - started
        end0 = end_offsets(bench.bootstrap, topic, parts)
        _, _, t_last, done = progress.wait_until(start0, end0, timeout=1800, worker=worker)
        out["preload"] = {
            "profiles": args.customers,
            "produce_s": produced_s,
            "wall_s": t_last - started,
            "profiles_per_s": _rate(done, t_last - started),
        }
        out["memory_after_preload"] = bench.memory_usage()

        _say("stopping the worker; pre-producing the measured events")
        out["worker_stop_s"] = worker.stop()
        start1 = end_offsets(bench.bootstrap, topic, parts)
        started = time.perf_counter()
        sent = bulk_produce(bench.bootstrap, topic, workload.activity(int(time.time() * 1000)))
        out["produce"] = {"events": sent, "seconds": time.perf_counter() - started}
        end1 = end_offsets(bench.bootstrap, topic, parts)
        total = sum(end1[p] - start1[p] for p in end1)

        _say("raw ceilings (worker stopped)")
        raw = {}
        for name, measure in (
            ("kafka-python", kafka_python_ceiling),
            ("aiokafka", aiokafka_ceiling),
        ):
            count, seconds = measure(bench.bootstrap, topic, start1, end1)
            raw[name] = {"messages": count, "seconds": seconds, "per_s": _rate(count, seconds)}
        best = max(raw, key=lambda n: raw[n]["per_s"])
        out["raw_ceiling"] = {"by_client": raw, "best": best, "per_s": raw[best]["per_s"]}

        _say(f"restarting the worker on {total} pending events")
        started = time.perf_counter()
        worker.start()
        t_first, done_first, t_last, done_last = progress.wait_until(
            start1, end1, timeout=3600, worker=worker
        )
        measured = done_last - done_first
        e2e = _rate(measured, t_last - t_first)
        out["end_to_end"] = {
            "events": total,
            "measured_events": measured,
            "seconds": t_last - t_first,
            "per_s": e2e,
            "startup_to_first_commit_s": t_first - started,
            "ratio_to_raw": e2e / out["raw_ceiling"]["per_s"] if out["raw_ceiling"]["per_s"] else 0,
        }

        _say(f"latency at {args.latency_rate:.0f} events/s for {args.latency_seconds:.0f} s")
        lat = measure_latency(
            bench.bootstrap,
            topic,
            settings.membership_topic,
            parts,
            args.customers,
            args.seed,
            rate=args.latency_rate,
            seconds=args.latency_seconds,
            warmup_s=3.0 if not args.quick else 1.0,
        )
        out["latency"] = {
            "offered_per_s": lat.offered_rate,
            "achieved_per_s": lat.achieved_rate,
            "seconds": lat.seconds,
            "events": lat.sent,
            "flips": lat.flips,
            "matched": lat.matched,
            "p50_ms": lat.percentile(50),
            "p99_ms": lat.percentile(99),
            "max_ms": max(lat.latencies_ms, default=float("nan")),
            "p50_by_window_ms": [round(v, 1) for v in lat.p50_by_window_ms],
            "worker_p50_ms": lat.percentile(50, lat.worker_ms),
            "worker_p99_ms": lat.percentile(99, lat.worker_ms),
        }

        _say(f"backfill: activating one new segment over {args.customers} customers")
        started = time.perf_counter()
        reply = client.command(
            {"command": "create", "activate": True, "segment": backfill_segment(args.seed)},
            timeout=1800,
        )
        seconds = time.perf_counter() - started
        if not reply.get("ok"):
            raise RuntimeError(f"backfill create refused: {reply}")
        job = reply["result"].get("job", {})
        out["backfill"] = {
            "customers": args.customers,
            "seconds": seconds,
            "customers_per_s": _rate(args.customers, seconds),
            "evaluated": job.get("evaluated"),
            "members": reply["result"].get("members", {}).get("bench-backfill"),
        }

        out["run"]["loadavg_at_end"] = _loadavg()
        final = bench.memory_usage()
        used_after = bench.used_memory()
        preload = out.pop("memory_after_preload")
        out["memory"] = {
            "after_preload": preload,
            "final": final,
            "bytes_per_customer_preload": _per_customer(preload, args.customers),
            "bytes_per_customer_final": _per_customer(final, args.customers),
            "used_memory_delta_per_customer": (used_after - used_before) / args.customers,
        }
    finally:
        stop_s = worker.stop()
        if client is not None:
            client.close()
        keys, topics = bench.cleanup()
        _say(f"worker stopped in {stop_s:.1f}s; cleaned {keys} Redis keys and {topics} topics")
    return out


def _per_customer(usage: dict[str, int], customers: int) -> float:
    return (usage["profile_bytes"] + usage["other_bytes"]) / customers


def _table(out: dict[str, Any]) -> str:
    m, run = out["machine"], out["run"]
    raw, e2e, lat = out["raw_ceiling"], out["end_to_end"], out["latency"]
    back, mem = out["backfill"], out["memory"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    rows = [
        (
            "raw ceiling (fetch + msgpack decode)",
            f"{raw['per_s']:,.0f} events/s",
            f"{raw['best']}; "
            + ", ".join(f"{k} {v['per_s']:,.0f}/s" for k, v in raw["by_client"].items()),
        ),
        (
            f"end-to-end, {run['segments']} active segments",
            f"{e2e['per_s']:,.0f} events/s",
            f"{e2e['measured_events']:,} events in {e2e['seconds']:.1f} s; "
            f"{e2e['ratio_to_raw']:.1%} of raw",
        ),
        (
            "preload (profile events, producer running)",
            f"{out['preload']['profiles_per_s']:,.0f} events/s",
            f"{run['customers']:,} new customers in {out['preload']['wall_s']:.1f} s",
        ),
        (
            f"latency p50 @ {lat['offered_per_s']:.0f}/s",
            f"{lat['p50_ms']:.1f} ms",
            f"{lat['matched']}/{lat['flips']} flips matched, "
            f"achieved {lat['achieved_per_s']:.0f}/s",
        ),
        (
            "latency p99",
            f"{lat['p99_ms']:.1f} ms",
            f"max {lat['max_ms']:.1f} ms; p50 per window "
            + " ".join(f"{v:.0f}" for v in lat["p50_by_window_ms"])
            + " ms",
        ),
        (
            "  sent → stamped by the worker p50 / p99",
            f"{lat['worker_p50_ms']:.0f} / {lat['worker_p99_ms']:.0f} ms",
            "the change's own `at`: excludes publishing and the reader's delay",
        ),
        (
            "backfill (activate 1 segment)",
            f"{back['customers_per_s']:,.0f} customers/s",
            f"{back['customers']:,} customers in {back['seconds']:.1f} s",
        ),
        (
            "Redis memory per customer",
            f"{mem['bytes_per_customer_final']:,.0f} B",
            f"profiles {mem['final']['profile_bytes'] / run['customers']:,.0f} B + memberships,"
            f" index, timers {mem['final']['other_bytes'] / run['customers']:,.0f} B; "
            f"{mem['bytes_per_customer_preload']:,.0f} B after preload; used_memory delta "
            f"{mem['used_memory_delta_per_customer']:,.0f} B",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"Redis AOF {'on' if m['redis_aof'] else 'off'}",
        f"versions: {versions}",
        f"run: {run['customers']:,} customers, {run['segments']} segments, {run['events']:,} "
        f"events, seed {run['seed']}, {run.get('workers', 1)} worker process(es), "
        f"LS_EVENTS_PARTITIONS={out['settings']['LS_EVENTS_PARTITIONS']}"
        f", LS_BATCH_SIZE={out['settings']['LS_BATCH_SIZE']}"
        f", LS_BATCH_WITHIN_S={out['settings']['LS_BATCH_WITHIN_S']}; load average "
        f"{run['loadavg_at_start']} at start, {run.get('loadavg_at_end', '?')} at end",
        "",
        f"{'figure':<{width}}  {'value':>{vwidth}}  detail",
        f"{'-' * width}  {'-' * vwidth}  {'-' * 40}",
    ]
    lines += [f"{a:<{width}}  {b:>{vwidth}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run()'s cleanup


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    out = run(args)
    print(_table(out))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"\nfigures written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
