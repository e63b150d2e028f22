"""livesegments benchmark: raw ceiling, end-to-end throughput, latency, backfill, memory.

    .venv/bin/python -m benchmarks.bench [--customers 100000] [--segments 100]
        [--events 200000] [--seed 7] [--partitions 8] [--quick]

Runs against the Kafka broker and Redis of the environment (KAFKA_BOOTSTRAP, REDIS_URL) on
its own uuid-named topics, consumer group and Redis key prefix, which it deletes at the end.
See benchmarks/README.md for what each figure means and how it is measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import signal
import sys
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgpack
from kafka import KafkaConsumer, TopicPartition

from state._codec import unpack
from state._redis import as_bytes
from streams.client import Client

from .group import GroupSettle
from .harness import ROOT, BenchEnv, Progress, WorkerProcess, bulk_produce, end_offsets
from .io_floor import io_floor
from .latency import LatencyResult, flip_pool, measure_latency
from .machine import describe_machine, redis_forks
from .procstat import CpuMeter, listening_pid, rss_bytes
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
    parser.add_argument(
        "--latency-rate",
        type=float,
        action="append",
        help="events/s offered in a latency phase (repeat for several; default 1000 and 5000)",
    )
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--latency-warmup-s",
        type=float,
        default=30.0,
        help="a paced phase at the first latency rate before the measured ones, reported on its "
        "own (a broker's JIT compiles the small produce and fetch requests' paths in it; 0: none)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run: 5k customers, 20 segments, 60k events, 5 s latency phases",
    )
    parser.add_argument(
        "--backfill-only",
        action="store_true",
        help="only the preload, the activity (worker running) and the backfill phase",
    )
    parser.add_argument(
        "--e2e-only",
        action="store_true",
        help="stop after the end-to-end phase (A/B runs of the worker's throughput and CPU)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    args.latency_rate = args.latency_rate or [1000.0, 5000.0]
    if args.quick:
        # 60k events: with --workers 2 the group settles after ~15k, the window needs the rest
        args.customers, args.segments, args.events = 5_000, 20, 60_000
        args.latency_seconds = 5.0
        args.latency_warmup_s = min(args.latency_warmup_s, 5.0)
    if args.output == RESULTS / "latest.json" and (args.quick or args.backfill_only):
        name = "backfill" if args.backfill_only else "quick"
        args.output = (
            RESULTS / f"{name}{'-quick' if args.quick and args.backfill_only else ''}.json"
        )
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


def run(args: argparse.Namespace, out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every phase in order; figures land in `out` as each phase ends (kept on failure)."""
    workload = Workload(args.customers, args.segments, args.events, args.seed)
    bench = BenchEnv(args.partitions)
    settings = bench.settings
    topic, parts = settings.events_topic, settings.events_partitions
    machine = describe_machine(settings.redis_url, ROOT)
    worker = WorkerProcess(bench.env, bench.run_id, args.workers)
    progress = Progress(bench, parts)
    out = {} if out is None else out
    out |= {
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
        _wait_settled(worker, parts)  # a command answered mid-rebalance may lose its reply
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
        if args.backfill_only:
            _say("backfill only: applying the activity with the worker running")
            start1 = end_offsets(bench.bootstrap, topic, parts)
            bulk_produce(bench.bootstrap, topic, workload.activity(int(time.time() * 1000)))
            end1 = end_offsets(bench.bootstrap, topic, parts)
            progress.wait_until(start1, end1, timeout=3600, worker=worker)
            out["backfill"] = _backfill(args, bench, client, worker, _meter(bench, worker))
            _finish(args, bench, out, used_before)
            return out

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
        outputs0 = end_offsets(bench.bootstrap, settings.membership_topic, parts)
        started = time.perf_counter()
        worker.start()
        meter = _meter(bench, worker)
        warm_at = max(1, int(total * WARMUP_SHARE))
        marks: dict[str, Any] = {}
        settle = GroupSettle(worker.assignments, parts)

        def on_poll(now: float, done: int) -> None:
            if "rss" not in marks:  # the worker is up, its caches are empty
                marks["rss"] = sum(rss_bytes(pid) or 0 for pid in worker.pids)
                marks["first"] = (done, meter.snapshot())
            # the window opens once warm and, with N workers, once every one owns partitions
            # one worker owns every partition: no group to wait for (its /health may not
            # answer within the poll's timeout on a loaded machine, and the window would not open)
            settled = args.workers == 1 or settle.poll(now)
            if "warm" not in marks and done >= warm_at and settled:
                offsets = progress.offsets()  # read again: asking the workers took a while
                marks["warm"] = (
                    time.perf_counter(),
                    sum(max(0, off + 1 - start1[p]) for p, off in enumerate(offsets)),
                    meter.snapshot(),
                )
                marks["offsets"] = offsets
                marks["batches"] = worker.batch_counts()

        t_first, done_first, t_last, done_last = progress.wait_until(
            start1, end1, timeout=3600, worker=worker, on_poll=on_poll
        )
        cpu_end = meter.snapshot()
        batches_end = worker.batch_counts()
        rss = sum(rss_bytes(pid) or 0 for pid in worker.pids)
        outputs1 = end_offsets(bench.bootstrap, settings.membership_topic, parts)
        changes = sum(outputs1[p] - outputs0[p] for p in outputs1)
        t_warm, done_warm, cpu_warm = marks.get("warm", (t_first, done_first, cpu_end))
        measured = done_last - done_warm
        e2e = _rate(measured, t_last - t_warm)
        cpu = CpuMeter.delta(cpu_warm, cpu_end)
        per_worker = _per_worker(settle, marks.get("offsets"), end1, cpu)
        done_at_first, cpu_first = marks.get("first", (done_first, cpu_end))
        cpu_all = CpuMeter.delta(cpu_first, cpu_end)
        applied_all = done_last - done_at_first
        out["end_to_end"] = {
            "events": total,
            "measured_events": measured,
            "seconds": t_last - t_warm,
            "per_s": e2e,
            "startup_to_first_commit_s": t_first - started,
            "warmup": {
                "events": done_warm - done_first,
                "seconds": t_warm - t_first,
                "per_s": _rate(done_warm - done_first, t_warm - t_first),
                "share_of_events": WARMUP_SHARE,
            },
            "ratio_to_raw": e2e / out["raw_ceiling"]["per_s"] if out["raw_ceiling"]["per_s"] else 0,
            "changes": changes,
            "changes_per_event": changes / total if total else 0.0,
            "cpu_s": cpu,
            "cpu_us_per_event": {k: v / measured * 1e6 for k, v in cpu.items()} if measured else {},
            "cpu_us_per_event_since_first_poll": {
                k: v / applied_all * 1e6 for k, v in cpu_all.items()
            }
            if applied_all
            else {},
            "events_per_batch": _per_batch(marks.get("batches"), batches_end),
            "group_settled": "warm" in marks,
            "group_rebalances_seen": settle.changes,
            "measured_share": measured / total if total else 0.0,
            "per_worker": per_worker,
            "worker_rss_bytes": rss,
            "worker_rss_at_first_commit_bytes": marks.get("rss", 0),
            "worker_rss_per_100k_customers": rss * 100_000 / args.customers,
            "worker_rss_growth_per_100k_customers": (rss - marks.get("rss", rss))
            * 100_000
            / args.customers,
        }

        if args.e2e_only:
            return out
        _say("stopping the worker; I/O floor and engine-only ceiling")
        worker.stop()
        out["io_floor"] = _io_floor(bench, start1, end1, out["end_to_end"]["changes_per_event"])
        out["engine_only"] = _engine_only(args, settings)
        ceilings = [c["per_s"] for c in (out["io_floor"], out["engine_only"]) if c.get("per_s")]
        out["end_to_end"]["fair_ceiling_per_s"] = min(ceilings) if ceilings else None
        out["end_to_end"]["ratio_to_fair_ceiling"] = e2e / min(ceilings) if ceilings else None

        _say("restarting the worker for the latency phases")
        flips = flip_pool(args.customers, args.seed)
        meter, out["latency_warmup_wait_s"] = _restart_caught_up(bench, client, worker)
        out["latency"] = out["latency_by_rate"] = []
        if args.latency_warmup_s > 0:
            rate = args.latency_rate[0]
            _say(f"warm-up at {rate:.0f} events/s for {args.latency_warmup_s:.0f} s (not measured)")
            lat, cpu = _measure(args, bench, meter, rate, flips, "-warm", args.latency_warmup_s)
            out["latency_warmup"] = _latency(lat, cpu)
        for rate in args.latency_rate:
            _say(f"latency at {rate:.0f} events/s for {args.latency_seconds:.0f} s")
            lat, cpu = _measure(args, bench, meter, rate, flips)
            out["latency_by_rate"].append(_latency(lat, cpu))
        out["latency"] = out["latency_by_rate"][0]
        if worker.count > 1:
            # the same offered rate served by one worker of the same code and state: a rate
            # one worker takes needs no second one, whose process shares the same two cores
            worker.stop()
            one = WorkerProcess(bench.env, bench.run_id, 1)
            _say(f"latency at {args.latency_rate[0]:.0f} events/s with one worker")
            try:
                one_meter, warm_s = _restart_caught_up(bench, client, one)
                lat, cpu = _measure(args, bench, one_meter, args.latency_rate[0], flips, "-one")
                out["latency_one_worker"] = _latency(lat, cpu) | {"warmup_wait_s": warm_s}
            finally:
                one.stop()
            meter, _ = _restart_caught_up(bench, client, worker)

        out["backfill"] = _backfill(args, bench, client, worker, meter)

        _finish(args, bench, out, used_before)
    finally:
        stop_s = worker.stop()
        if client is not None:
            client.close()
        keys, topics = bench.cleanup()
        _say(f"worker stopped in {stop_s:.1f}s; cleaned {keys} Redis keys and {topics} topics")
    return out


WARMUP_SHARE = 0.1
"""The first share of the pending events after the worker's restart (cold profile cache,
first claims) is reported on its own, outside the measured window."""


def _restart_caught_up(
    bench: BenchEnv, client: Client, worker: WorkerProcess
) -> tuple[CpuMeter, float]:
    """Start `worker`, wait until the group settled and every partition answered a `refresh`
    of all segments, then until the profile caches are warm: its meter and the seconds the
    warm-up was waited (reported on their own, outside the measured phases)."""
    worker.start()
    meter = _meter(bench, worker)
    _wait_settled(worker, bench.settings.events_partitions)
    reply = client.command({"command": "refresh", "all": True}, timeout=120)
    assert reply["ok"], reply
    return meter, worker.wait_warm()


def _measure(
    args: argparse.Namespace,
    bench: BenchEnv,
    meter: CpuMeter,
    rate: float,
    flips: list[str],
    phase_id: str = "",
    seconds: float | None = None,
) -> tuple[LatencyResult, dict[str, float]]:
    """One latency phase at `rate` (`seconds`: `--latency-seconds`) and each process's CPU over
    it; `phase_id` (and a seed of its own) for a phase at a rate measured before, whose events
    would be duplicates."""
    settings = bench.settings
    forks = redis_forks(settings.redis_url)
    before = meter.snapshot()
    lat = measure_latency(
        bench.bootstrap,
        settings.events_topic,
        settings.membership_topic,
        settings.events_partitions,
        args.customers,
        args.seed + (1000 + zlib.crc32(phase_id.encode()) % 100_000 if phase_id else 0),
        rate=rate,
        seconds=args.latency_seconds if seconds is None else seconds,
        warmup_s=3.0 if not args.quick else 1.0,
        flip_share=min(0.2, 200 / rate),
        flip_ids=flips,
        phase_id=phase_id,
    )
    cpu = CpuMeter.delta(before, meter.snapshot())
    after = redis_forks(settings.redis_url)
    lat.redis_forks = after["forks"] - forks["forks"] + forks["aof_rewriting"] + forks["bgsaving"]
    return lat, cpu


def _per_batch(start: tuple[float, float] | None, end: tuple[float, float] | None) -> float | None:
    """Events applied per committed batch over the measured window (the workers' counters)."""
    if start is None or end is None or end[1] <= start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


def _services(bench: BenchEnv) -> dict[str, list[int]]:
    """redis-server and the broker's JVM, by the ports of the run's URLs (when local)."""
    redis_port = int(bench.settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    broker_port = int(bench.bootstrap[0].rsplit(":", 1)[1])
    found = {
        "redis-server": listening_pid(redis_port),
        "kafka-broker": listening_pid(broker_port),
    }
    return {name: [pid] for name, pid in found.items() if pid is not None}


def _meter(bench: BenchEnv, worker: WorkerProcess) -> CpuMeter:
    """CPU of the worker(s), redis-server, the broker's JVM and this process (the producer)."""
    groups = {f"worker{n}": [pid] for n, pid in enumerate(worker.pids)}
    return CpuMeter({**groups, **_services(bench), "bench-producer": [os.getpid()]})


def _wait_settled(worker: WorkerProcess, partitions: int, timeout: float = 180) -> None:
    """Until every worker owns events partitions and the group stopped rebalancing."""
    settle = GroupSettle(worker.assignments, partitions)
    deadline = time.monotonic() + timeout
    while not settle.poll(time.monotonic()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the group did not settle within {timeout}s: {settle.current}")
        if not worker.alive():
            raise RuntimeError(f"worker exited; see {worker.log_path}")
        time.sleep(0.1)


def _per_worker(
    settle: GroupSettle,
    offsets: list[int] | None,
    end: dict[int, int],
    cpu: dict[str, float],
) -> list[dict[str, Any]]:
    """Each worker's partitions, events applied and CPU seconds over the measured window."""
    if offsets is None:
        return []
    rows = []
    owners = settle.current or [list(end)]  # one worker, not asked: it owns every partition
    for n, owned in enumerate(owners):
        parts = owned or []
        events = sum(max(0, end[p] - (offsets[p] + 1)) for p in parts)
        rows.append(
            {
                "worker": f"worker{n}",
                "partitions": parts,
                "events": events,
                "cpu_s": cpu.get(f"worker{n}", 0.0),
            }
        )
    return rows


def _latency(lat: LatencyResult, cpu: dict[str, float]) -> dict[str, Any]:
    return {
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
        "cpu_s": {**cpu, **{k: round(v, 3) for k, v in lat.load_cpu_s.items()}},
        "producer_phases": lat.producer_phases,
        "redis_forks": lat.redis_forks,
    }


def _io_floor(
    bench: BenchEnv, start: dict[int, int], end: dict[int, int], changes_per_event: float
) -> dict[str, Any]:
    meter = CpuMeter({"io-floor": [os.getpid()], **_services(bench)})
    before = meter.snapshot()
    floor = io_floor(bench.settings, start, end, changes_per_event, f"{bench.run_id}.floor-output")
    return {**dataclasses.asdict(floor), "cpu_s": CpuMeter.delta(before, meter.snapshot())}


def _engine_only(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """`benchmarks.engine_only.engine_ceiling` (from the engine work), when it is there."""
    try:
        module = importlib.import_module("benchmarks.engine_only")
    except ImportError as exc:
        return {"per_s": None, "unavailable": f"benchmarks.engine_only: {exc}"}
    result = module.engine_ceiling(
        args.customers,
        args.segments,
        args.events,
        args.seed,
        partitions=args.partitions,
        settings=settings,
    )
    values = dataclasses.asdict(result)
    return {**values, "per_s": values.get("events_per_s")}


def _finish(args: argparse.Namespace, bench: BenchEnv, out: dict[str, Any], before: int) -> None:
    """Load average at the end and the Redis memory figures."""
    out["run"]["loadavg_at_end"] = _loadavg()
    final = bench.memory_usage()
    used_after = bench.used_memory()
    preload = out.pop("memory_after_preload")
    out["memory"] = {
        "after_preload": preload,
        "final": final,
        "bytes_per_customer_preload": _per_customer(preload, args.customers),
        "bytes_per_customer_final": _per_customer(final, args.customers),
        "used_memory_delta_per_customer": (used_after - before) / args.customers,
    }


def _backfill(
    args: argparse.Namespace,
    bench: BenchEnv,
    client: Client,
    worker: WorkerProcess,
    meter: CpuMeter,
) -> dict[str, Any]:
    """Activate one more segment over every customer, once the events backlog is drained
    (every partition applied its topic's end offset, so the task does not share the worker
    with a backlog) and the machine is quiet (`_wait_quiet`: the worker(s), Redis and the
    broker done with the previous phase's tail); customers / round-trip seconds, each
    process's CPU over the round trip, and each partition's task start and end."""
    settings = bench.settings
    parts = settings.events_partitions
    _say("backfill: waiting for the events backlog to be applied")
    started = time.perf_counter()
    end = end_offsets(bench.bootstrap, settings.events_topic, parts)
    Progress(bench, parts).wait_until(dict.fromkeys(end, 0), end, timeout=1800, worker=worker)
    drained_s = time.perf_counter() - started
    quiet = _wait_quiet(meter)
    _say(f"backfill: activating one new segment over {args.customers} customers")
    loadavg = _loadavg()
    before = meter.snapshot()
    command = {"command": "create", "activate": True, "segment": backfill_segment(args.seed)}
    sent_ms = time.time() * 1000
    started = time.perf_counter()
    reply = client.command(command, timeout=1800)
    seconds = time.perf_counter() - started
    cpu = CpuMeter.delta(before, meter.snapshot())
    if not reply.get("ok"):
        raise RuntimeError(f"backfill create refused: {reply}")
    job = reply["result"].get("job", {})
    partitions = _partition_times(bench, str(job.get("job_id")), sent_ms)
    return {
        "customers": args.customers,
        "seconds": seconds,
        "customers_per_s": _rate(args.customers, seconds),
        "evaluated": job.get("evaluated"),
        "members": reply["result"].get("members", {}).get("bench-backfill"),
        "backlog_drain_s": drained_s,
        "quiet": quiet,
        "loadavg_at_start": loadavg,
        "cpu_s": cpu,
        "cpu_us_per_customer": {k: v / args.customers * 1e6 for k, v in cpu.items()},
        "partitions": partitions,
        "workers": _worker_spans(worker.assignments(), partitions),
        "hops": _job_hops(bench, str(command["request_id"]), str(job.get("job_id")), sent_ms),
    }


QUIET_CORES = 0.15
"""`_wait_quiet`: the CPU (cores) of the measured processes together below which the
machine counts as done with the previous phase."""


def _wait_quiet(meter: CpuMeter, timeout: float = 30.0, step: float = 0.5) -> dict[str, Any]:
    """Wait until the measured processes together (worker(s), redis-server, broker, this
    process) use under `QUIET_CORES` over `step` seconds, at most `timeout` seconds: after the
    5,000 events/s phase the worker still publishes and Redis and the broker still work off
    its tail when the last offset is applied. Returns the wait and the cores seen last."""
    started = time.perf_counter()
    last = meter.snapshot()
    cores = float("inf")
    while time.perf_counter() - started < timeout:
        time.sleep(step)
        now = meter.snapshot()
        cores = sum(CpuMeter.delta(last, now).values()) / step
        last = now
        if cores < QUIET_CORES:
            break
    return {"wait_s": round(time.perf_counter() - started, 2), "cores": round(cores, 3)}


def _partition_times(bench: BenchEnv, job_id: str, sent_ms: float) -> dict[str, dict[str, Any]]:
    """Each partition's task (the job's per-partition reports, as the control plane stored
    them): customers, and its start and end in seconds after the command was sent (a
    straggler shows as a late end)."""
    blob = bench.redis.hget(bench.keys.registry.jobs, job_id)
    done = unpack(as_bytes(blob)).get("done", {}) if blob else {}
    times: dict[str, dict[str, Any]] = {}
    for partition, report in sorted(done.items(), key=lambda kv: int(kv[0])):
        start, end = report.get("started_at"), report.get("ended_at")
        times[str(partition)] = {
            "customers": report.get("done"),
            "start_s": None if start is None else round((start - sent_ms) / 1000, 3),
            "end_s": None if end is None else round((end - sent_ms) / 1000, 3),
        }
    return times


def _job_hops(bench: BenchEnv, request_id: str, job_id: str, sent_ms: float) -> dict[str, Any]:
    """The job's round trip by the Kafka timestamps (the producers' clocks, seconds after the
    command was sent): the command on the control topic, each partition's `_task_done` report
    (in the order they were written), and the reply."""
    found: dict[str, Any] = {"command_s": None, "reports_s": [], "reply_s": None}

    def at(timestamp_ms: int) -> float:
        return round((timestamp_ms - sent_ms) / 1000, 3)

    settings = bench.settings
    for topic in (settings.control_topic, settings.replies_topic):
        for message in read_topic(bench.bootstrap, topic):
            try:
                value = _decoded(message.value)
            except ValueError:
                continue
            if value.get("request_id") == request_id:
                key = "command_s" if topic == settings.control_topic else "reply_s"
                found[key] = at(message.timestamp)
            elif value.get("command") == "_task_done" and value.get("job_id") == job_id:
                found["reports_s"].append([value.get("partition"), at(message.timestamp)])
    return found


def read_topic(bootstrap: list[str], topic: str) -> list[Any]:
    """Every record of `topic` (all partitions) up to its end offsets now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = {tp: off for tp, off in consumer.end_offsets(tps).items() if off > 0}
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while end and time.monotonic() < deadline:
            for tp, batch in consumer.poll(timeout_ms=500).items():
                records.extend(batch)
                if batch and batch[-1].offset + 1 >= end.get(tp, 0):
                    end.pop(tp, None)
        return records
    finally:
        consumer.close()


def _decoded(value: bytes | None) -> dict[str, Any]:
    """A control or reply record as a dict (JSON or msgpack); ValueError if neither."""
    if not value:
        raise ValueError("empty")
    try:
        decoded = json.loads(value) if value[:1] == b"{" else msgpack.unpackb(value, raw=False)
    except Exception as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(decoded, dict):
        raise ValueError("not a map")
    return decoded


def _per_customer(usage: dict[str, int], customers: int) -> float:
    return (usage["profile_bytes"] + usage["other_bytes"]) / customers


def _table(out: dict[str, Any]) -> str:
    m, run = out["machine"], out["run"]
    raw, e2e = out["raw_ceiling"], out["end_to_end"]
    back, mem = out["backfill"], out["memory"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    floor, engine = out["io_floor"], out["engine_only"]
    fair = e2e.get("fair_ceiling_per_s")
    warm = e2e["warmup"]
    rows = [
        (
            "raw ceiling (fetch + msgpack decode)",
            f"{raw['per_s']:,.0f} events/s",
            f"{raw['best']}; "
            + ", ".join(f"{k} {v['per_s']:,.0f}/s" for k, v in raw["by_client"].items()),
        ),
        (
            "engine-only ceiling (no I/O, 1 core)",
            f"{engine['per_s']:,.0f} events/s" if engine.get("per_s") else "n/a",
            engine.get("unavailable")
            or f"{engine.get('changes_per_event', 0):.2f} changes/event, "
            f"{engine.get('cpu_s', 0):.1f} CPU s",
        ),
        (
            "I/O floor (reads, fenced writes, outputs)",
            f"{floor['per_s']:,.0f} events/s",
            f"{floor['events']:,} events, {floor['outputs']:,} outputs, "
            f"{floor['commits']:,} commits, {floor['profile_reads']:,} profile reads; CPU s "
            + _cpu(floor["cpu_s"]),
        ),
        (
            f"end-to-end, {run['segments']} active segments, {run.get('workers', 1)} worker(s)",
            f"{e2e['per_s']:,.0f} events/s",
            f"{e2e['measured_events']:,} events in {e2e['seconds']:.1f} s; "
            + (f"{e2e['ratio_to_fair_ceiling']:.1%} of the lower fair ceiling, " if fair else "")
            + f"{e2e['ratio_to_raw']:.1%} of raw",
        ),
        *(
            (
                f"  {w['worker']}: partitions {','.join(map(str, w['partitions']))}",
                f"{w['events']:,} events",
                f"{w['cpu_s']:.1f} CPU s"
                + (f", {w['cpu_s'] / w['events'] * 1e6:,.0f} µs/event" if w["events"] else ""),
            )
            for w in e2e.get("per_worker", [])
        ),
        (
            "  measured window",
            f"{e2e.get('measured_share', 0):.0%} of events",
            (
                "opened once warm and the group settled"
                if e2e.get("group_settled", True)
                else "NOT VALID: the group never settled (a worker owned no partition)"
            )
            + f"; assignment changes seen {e2e.get('group_rebalances_seen', 0)}",
        ),
        (
            "  changes per event; warm-up (not measured)",
            f"{e2e['changes_per_event']:.2f}",
            f"first {warm['events']:,} events after the restart at {warm['per_s']:,.0f}/s in "
            f"{warm['seconds']:.1f} s; start-up {e2e['startup_to_first_commit_s']:.1f} s",
        ),
        (
            "  events per committed batch",
            f"{e2e['events_per_batch']:.0f}" if e2e.get("events_per_batch") else "n/a",
            "the workers' /metrics over the window (one partition's batch, LS_BATCH_SIZE at most)",
        ),
        (
            "  CPU µs per measured event",
            f"{sum(v for k, v in e2e['cpu_us_per_event'].items() if k.startswith('worker')):,.0f}"
            " µs",
            "worker(s) total; " + _cpu(e2e["cpu_us_per_event"], "µs"),
        ),
        (
            "preload (profile events, producer running)",
            f"{out['preload']['profiles_per_s']:,.0f} events/s",
            f"{run['customers']:,} new customers in {out['preload']['wall_s']:.1f} s",
        ),
    ]
    warmup = out.get("latency_warmup_wait_s")
    warm = out.get("latency_warmup")
    if warm is not None:  # not a measured phase: what a broker's JIT warm-up costs shows here
        rows += _latency_rows(warm, f", warm-up of {warm['seconds']:.0f} s (not measured)", warmup)
        warmup = None
    for n, lat in enumerate(out.get("latency_by_rate", [out["latency"]])):
        rows += _latency_rows(lat, "", warmup if n == 0 else None)
    one = out.get("latency_one_worker")
    if one is not None:
        rows += _latency_rows(one, ", one worker", one.get("warmup_wait_s"))
    rows += [
        *_backfill_rows(back),
        (
            "Redis memory per customer",
            f"{mem['bytes_per_customer_final']:,.0f} B",
            f"profiles {mem['final']['profile_bytes'] / run['customers']:,.0f} B + memberships,"
            f" index, timers {mem['final']['other_bytes'] / run['customers']:,.0f} B; "
            f"{mem['bytes_per_customer_preload']:,.0f} B after preload; used_memory delta "
            f"{mem['used_memory_delta_per_customer']:,.0f} B",
        ),
        (
            "worker RSS growth per 100k customers",
            f"{e2e.get('worker_rss_growth_per_100k_customers', 0) / 2**20:,.0f} MiB",
            f"RSS {e2e['worker_rss_bytes'] / 2**20:,.0f} MiB after the end-to-end run, "
            f"{e2e.get('worker_rss_at_first_commit_bytes', 0) / 2**20:,.0f} MiB at its first "
            f"commit (interpreter, faust); {e2e['worker_rss_per_100k_customers'] / 2**20:,.0f}"
            f" MiB per 100k customers all in, for {run['customers']:,} customers",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"Redis AOF {'on' if m['redis_aof'] else 'off'}",
        f"versions: {versions}",
        f"build: {m.get('build', '?')}",
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


def _latency_rows(
    lat: dict[str, Any], label: str, warmup: float | None
) -> list[tuple[str, str, str]]:
    after = f"; after the restart's cache warm-up ({warmup:.1f} s waited)" if warmup else ""
    return [
        (
            f"latency p50 / p99 @ {lat['offered_per_s']:.0f}/s{label}",
            f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms",
            f"max {lat['max_ms']:.1f} ms; {lat['matched']}/{lat['flips']} flips matched, "
            f"achieved {lat['achieved_per_s']:.0f}/s; p50 per window "
            + " ".join(f"{v:.0f}" for v in lat["p50_by_window_ms"])
            + " ms"
            + after,
        ),
        (
            "  sent → stamped by the worker p50 / p99",
            f"{lat['worker_p50_ms']:.0f} / {lat['worker_p99_ms']:.0f} ms",
            "the change's own `at`: excludes publishing and the reader's delay; Redis forks "
            f"(AOF rewrites) in the phase {lat.get('redis_forks', '?')}; CPU s "
            + _cpu(lat.get("cpu_s", {})),
        ),
    ]


def _backfill_rows(back: dict[str, Any]) -> list[tuple[str, str, str]]:
    per = back.get("cpu_us_per_customer", {})
    return [
        (
            "backfill (activate 1 segment)",
            f"{back['customers_per_s']:,.0f} customers/s",
            f"{back['customers']:,} customers in {back['seconds']:.1f} s, after the events "
            f"backlog was applied ({back.get('backlog_drain_s', 0):.1f} s); load average "
            f"{back.get('loadavg_at_start', '?')}",
        ),
        (
            "  CPU µs per customer (backfill)",
            f"{sum(v for k, v in per.items() if k.startswith('worker')):,.1f} µs",
            "worker(s) total; " + _cpu(per, "µs"),
        ),
        (
            "  partitions' tasks (s after the command)",
            _span(back.get("partitions", {})),
            "start-end per partition: "
            + ", ".join(
                f"{p} {t['start_s']}-{t['end_s']}" for p, t in back.get("partitions", {}).items()
            )
            + "".join(
                f"; worker {n} (partitions {w['partitions']}) ends {w['end_s']} s"
                for n, w in enumerate(back.get("workers") or [])
            )
            + (
                f"; waited {back['quiet']['wait_s']} s for a quiet machine "
                f"({back['quiet']['cores']} cores)"
                if "quiet" in back
                else ""
            ),
        ),
        (
            "  job's records (Kafka timestamps)",
            _hops_text(back.get("hops", {})),
            "seconds after the command: the command written, the partitions' reports (first, "
            "last), the reply written; the client read the reply at "
            f"{back['seconds']:.3f} s",
        ),
    ]


def _hops_text(hops: dict[str, Any]) -> str:
    reports = [at for _partition, at in hops.get("reports_s") or []]
    if not reports:
        return "n/a"
    return (
        f"command {hops.get('command_s')}, reports {min(reports)}-{max(reports)}, "
        f"reply {hops.get('reply_s')} s"
    )


def _worker_spans(
    assignments: Sequence[Sequence[int] | None], partitions: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per worker: the events partitions it owns and its tasks' first start and last end (s
    after the command; None without reports): whether the workers end together, or one
    idles while the other still works."""
    spans: list[dict[str, Any]] = []
    for owned in assignments:
        times = [partitions[str(p)] for p in owned or () if str(p) in partitions]
        starts = [t["start_s"] for t in times if t.get("start_s") is not None]
        ends = [t["end_s"] for t in times if t.get("end_s") is not None]
        spans.append(
            {
                "partitions": None if owned is None else list(owned),
                "start_s": min(starts) if starts else None,
                "end_s": max(ends) if ends else None,
            }
        )
    return spans


def _span(partitions: dict[str, dict[str, Any]]) -> str:
    """First start to last end of the partitions' tasks ("n/a" without reports)."""
    starts = [t["start_s"] for t in partitions.values() if t.get("start_s") is not None]
    ends = [t["end_s"] for t in partitions.values() if t.get("end_s") is not None]
    if not starts or not ends:
        return "n/a"
    return f"{min(starts):.2f}-{max(ends):.2f} s"


def _backfill_table(out: dict[str, Any]) -> str:
    """The `--backfill-only` run: its sizes and the backfill rows."""
    run = out["run"]
    rows = _backfill_rows(out["backfill"])
    width = max(len(r[0]) for r in rows)
    return "\n".join(
        [
            f"machine: {out['machine']['cpu']}, {out['machine']['cores']} cores; run: "
            f"{run['customers']:,} customers, {run['segments']} segments, {run['events']:,} "
            f"events, {run.get('workers', 1)} worker process(es); load average "
            f"{run['loadavg_at_start']} at start, {run.get('loadavg_at_end', '?')} at end",
            f"build: {out['machine'].get('build', '?')}",
        ]
        + [f"{a:<{width}}  {b}  {c}" for a, b, c in rows]
    )


def _cpu(values: dict[str, float], unit: str = "") -> str:
    return ", ".join(f"{k} {v:,.1f}{unit}" for k, v in values.items())


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run()'s cleanup


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    out: dict[str, Any] = {}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        run(args, out)
    except BaseException:
        # a failed phase (e.g. the broker unreachable) keeps the figures of those before it
        failed = args.output.with_suffix(".failed.json")
        failed.write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
        print(f"run failed; the figures measured so far are in {failed}", file=sys.stderr)
        raise
    if args.e2e_only:
        print(json.dumps(out["end_to_end"], indent=2, sort_keys=True))
    else:
        print(_backfill_table(out) if args.backfill_only else _table(out))
    args.output.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"\nfigures written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
