"""The engine in small batches at a later `now`: a customer's first touch against its second.

At 1,000 events/s offered a partition batch holds 1-2 events and nearly every event is its
customer's first for a while, applied at a `now` later than the one its profile was last
touched at. This preloads the `engine_only` workload (profiles and their history, through
the engine, committed and cached), then applies fresh events at a later `now` in batches of
each `--sizes`, each customer twice in a row (its first touch, then its second, in separate
batches), and prints the CPU µs per event of `apply_event` and of the commit build
(`PartitionBatch.writes()` packed as `fenced_commit` sends it), the medians of `--repeats`.

    .venv/bin/python -m benchmarks.small_batches --customers 20000 --events 40000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import statistics
import time

import msgpack

import livesegments_compiled
from state import AppliedSegment, PartitionBatch, PartitionMeta, Profile
from state.commit import pack_ops
from streams.engine.collector import ProfileFreezer
from streams.engine.machine import EngineConfig, compiled_for
from streams.messages import decode_event
from streams.settings import Settings

from .engine_only import _by_partition, _Partition
from .workload import Workload, activity_event, add_size_arguments, segment_definitions

__all__ = ["main", "small_batches"]

_LATER_MS = 60_000
"""How much later than the preload the measured events are applied."""


def _time_batches(
    part: _Partition,
    customers: list[str],
    size: int,
    now: int,
    settings: Settings,
    rng: random.Random,
    workload: Workload,
    label: str,
    profiler: cProfile.Profile | None = None,
) -> tuple[float, float]:
    """(apply, commit build) CPU seconds over one event each of `customers`, `size` a batch."""
    apply_s = build_s = 0.0
    engine = part.engine
    for start in range(0, len(customers), size):
        batch = PartitionBatch(part.keys, part.meta)
        events = []
        for n, cid in enumerate(customers[start : start + size]):
            event = activity_event(rng, workload.customers, f"{label}-{start + n}", now)
            event["customer_id"] = cid
            raw = msgpack.packb(event)
            events.append(
                decode_event(
                    raw,
                    cid.encode(),
                    now_ms=now,
                    max_bytes=settings.max_message_bytes,
                    max_future_ms=settings.max_future_ms,
                )
            )
        if profiler is not None:
            profiler.enable()
        began = time.process_time()
        for event in events:
            cid = event.customer_id
            profile: Profile | None = batch.profiles.get(cid) or part.cache.get(cid)
            if profile is None:
                profile = Profile(cid)
                batch.new_customers.append(cid)
            engine.apply_event(batch, profile, event, now)
            batch.profiles[cid] = profile
        applied = time.process_time()
        batch.offset += len(events)
        pack_ops(batch.writes().ops)
        built = time.process_time()
        if profiler is not None:
            profiler.disable()
        apply_s += applied - began
        build_s += built - applied
        part.meta = PartitionMeta(0, batch.offset, batch.seq, None)
        engine.flush_metrics()
    return apply_s, build_s


def small_batches(
    workload: Workload,
    sizes: list[int],
    repeats: int,
    per_size: int,
    profiler: cProfile.Profile | None = None,
) -> dict[int, list[tuple[float, float, float, float]]]:
    """Batch size -> per repeat (first apply, first build, second apply, second build) µs/event."""
    settings = Settings.from_env({})
    config = EngineConfig(
        settings.membership_topic, settings.history_max_events, settings.history_max_age_ms
    )
    part = _Partition(0, config, workload.customers + 1, ProfileFreezer())  # as the worker
    now = int(time.time() * 1000)
    for definition in segment_definitions(workload.segments, workload.seed, now):
        applied = AppliedSegment(definition["id"], 1, definition)
        compiled_for(applied)
        part.engine.set_segment(applied)
    for events in (workload.profiles(now), workload.activity(now)):
        for _, batch in _by_partition(list(events), 1, settings.batch_size):
            part.apply(batch, now, settings)
    rng = random.Random(7)
    ids = list(part.cache)
    rng.shuffle(ids)
    found: dict[int, list[tuple[float, float, float, float]]] = {s: [] for s in sizes}
    at = 0
    for round_ in range(repeats):
        now += _LATER_MS
        for size in sizes:
            chosen = ids[at : at + per_size]
            at += per_size
            if len(chosen) < per_size:
                raise SystemExit("not enough customers: raise --customers or lower --per-size")
            first = _time_batches(
                part, chosen, size, now, settings, rng, workload, f"a{round_}", profiler
            )
            second = _time_batches(part, chosen, size, now, settings, rng, workload, f"b{round_}")
            n = len(chosen) / 1e6
            found[size].append((first[0] / n, first[1] / n, second[0] / n, second[1] / n))
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--sizes", default="1,2,8,500")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-size", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="cProfile the first touches")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    print(f"build: {livesegments_compiled.BUILD.describe()}", flush=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    workload = Workload(args.customers, args.segments, args.events, args.seed)
    profiler = cProfile.Profile() if args.profile else None
    found = small_batches(workload, sizes, args.repeats, args.per_size, profiler)
    print("µs per event (median of repeats): first touch apply+build | second apply+build")
    for size, rows in found.items():
        cols = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(
            f"batch {size:>4}: first {cols[0]:6.1f} + {cols[1]:6.1f} = {cols[0] + cols[1]:6.1f}"
            f" | second {cols[2]:6.1f} + {cols[3]:6.1f} = {cols[2] + cols[3]:6.1f}"
        )
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
