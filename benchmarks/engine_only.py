"""The "engine only" fair ceiling: the benchmark workload through `PartitionEngine`, no I/O.

The same seeded population, segments and activity events as `bench.py`, on one core: each
message is msgpack-decoded and validated (`decode_event`), applied by one partition's engine
to profiles held in an LRU cache of the worker's size (a miss decodes the profile from the
bytes its last commit wrote), and each batch builds its commit (`PartitionBatch.writes()`,
packed as `fenced_commit` sends it). Only Kafka and Redis are left out.

    .venv/bin/python -m benchmarks.engine_only                    # 100k customers, 100 segments
    .venv/bin/python -m benchmarks.engine_only --events 50000 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import msgpack

import livesegments_compiled
from state import (
    AppliedSegment,
    KeySpace,
    PartitionBatch,
    PartitionMeta,
    Profile,
    profile_from_writes,
)
from state.commit import pack_ops
from state.partition import decode_stored
from streams.engine.collector import ProfileFreezer
from streams.engine.machine import EngineConfig, PartitionEngine, TaskStats, compiled_for
from streams.engine.tasks import evaluate_chunk
from streams.messages import decode_event
from streams.settings import Settings

from .workload import Workload, add_size_arguments, backfill_segment, segment_definitions

__all__ = ["EngineCeiling", "engine_ceiling", "main"]

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class EngineCeiling:
    """What one core does with the workload when the engine is all there is."""

    events: int
    cpu_s: float
    """`time.process_time()` over the measured events (this process only)."""
    wall_s: float
    events_per_s: float
    """events / cpu_s: the fair "engine only" ceiling of one worker core."""
    changes: int
    changes_per_event: float
    preload_profiles_per_s: float
    """profile events / CPU second while the population was loaded (not measured events)."""
    commit_bytes_per_event: float
    """Bytes of the packed commit payloads (what the Lua script would receive) per event."""
    gc_max_pause_ms: float
    """Longest garbage collection seen during the measured events (`gc.callbacks`), wall
    time: other processes on the machine lengthen it."""
    gc_max_pause_cpu_ms: float
    """The same in CPU time (`time.process_time`)."""
    gc_collections: int
    backfill_customers_per_s: float
    """Activating one more segment (`workload.backfill_segment`) over every customer, per CPU
    second: the CPU ceiling of a backfill, without its Redis reads and commits."""


class _GcPauses:
    """Longest garbage-collection pause, through `gc.callbacks`."""

    def __init__(self) -> None:
        self.max_s = 0.0
        self.max_cpu_s = 0.0
        self.count = 0
        self._started = (0.0, 0.0)

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.process_time())
        else:
            self.count += 1
            self.max_s = max(self.max_s, time.perf_counter() - self._started[0])
            self.max_cpu_s = max(self.max_cpu_s, time.process_time() - self._started[1])

    def __enter__(self) -> _GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


class _Partition:
    """One partition's engine, its profile cache and the profile bytes committed."""

    def __init__(
        self,
        number: int,
        config: EngineConfig,
        cache_size: int,
        freezer: ProfileFreezer | None,
        incremental: bool = True,
    ) -> None:
        self.keys = KeySpace("bench").partition(number)
        self.meta = PartitionMeta(0, -1, 0, None)
        self.engine = PartitionEngine(number, config, {}, incremental=incremental)
        self.cache: OrderedDict[str, Profile] = OrderedDict()
        self.cache_size = cache_size
        self.freezer = freezer
        self.stored: dict[str, bytes] = {}
        self.changes = 0
        self.commit_bytes = 0

    def backfill(self, applied: AppliedSegment, now: int, chunk: int, all_timers: bool) -> int:
        """Activate `applied` over every customer as a task does, chunk by chunk: profiles
        from the cache or decoded from their committed bytes (a task reads those from Redis),
        evaluated, timers asked, the chunk's commit built. Returns the customers done."""
        engine = self.engine
        engine.set_segment(applied)
        ids = sorted(self.stored)
        stats = TaskStats()
        seeds = [applied.segment_id]
        cutoff = now - engine.config.history_max_age_ms
        progress: dict[str, Any] = {"failed": {}, "skipped": {}}
        for start in range(0, len(ids), chunk):
            batch = PartitionBatch(self.keys, self.meta)
            loaded = [
                self.cache.get(cid) or decode_stored(cid, self.stored[cid], cid)
                for cid in ids[start : start + chunk]
            ]
            if all_timers:  # the worker before perf-engine: every timed segment asked
                for profile in loaded:
                    view = profile.snapshot(cutoff)
                    engine.evaluate(batch, profile, seeds, now, "activate", stats, view=view)
                    engine.schedule(batch, profile, now, view=view)
            else:  # the worker's own chunk evaluation
                when = (now, "activate")
                evaluate_chunk(engine, batch, loaded, when, (), [applied], seeds, stats, progress)
            self.commit_bytes += len(pack_ops(batch.writes().ops))
        return len(ids)

    def apply(self, raw: list[tuple[bytes, bytes]], now: int, settings: Settings) -> None:
        batch = PartitionBatch(self.keys, self.meta)
        events = [
            decode_event(
                value,
                key,
                now_ms=now,
                max_bytes=settings.max_message_bytes,
                max_future_ms=settings.max_future_ms,
            )
            for key, value in raw
        ]
        profiles: dict[str, Profile] = {}
        for event in events:
            cid = event.customer_id
            profile = profiles.get(cid) or self.cache.get(cid)
            if profile is None:
                blob = self.stored.get(cid)
                if blob is None:
                    profile = Profile(cid)
                    batch.new_customers.append(cid)
                else:
                    profile = decode_stored(cid, blob, cid)
            profiles[cid] = profile
            self.engine.apply_event(batch, profile, event, now)
            batch.profiles[cid] = profile
        batch.offset += len(raw)
        writes = batch.writes()
        self.commit_bytes += len(pack_ops(writes.ops))
        self.stored.update(profile_from_writes(self.keys, writes))
        self.changes += len(batch.outbox)
        self.meta = PartitionMeta(0, batch.offset, batch.seq, None)
        self.engine.flush_metrics()  # as the worker's runtime does after each commit
        cache = self.cache
        for cid, profile in batch.profiles.items():
            cache[cid] = profile
            cache.move_to_end(cid)
        if self.freezer is not None and batch.profiles:
            self.freezer.took(len(batch.profiles))
        while len(cache) > self.cache_size:
            cache.popitem(last=False)


def _by_partition(
    events: list[dict[str, Any]], partitions: int, batch_size: int
) -> list[tuple[int, list[tuple[bytes, bytes]]]]:
    """Batches of (key, msgpack value) per partition, in production order, as a worker sees them."""
    pending: dict[int, list[tuple[bytes, bytes]]] = {}
    out: list[tuple[int, list[tuple[bytes, bytes]]]] = []
    for event in events:
        key = event["customer_id"].encode()
        part = zlib.crc32(key) % partitions
        run = pending.setdefault(part, [])
        run.append((key, msgpack.packb(event)))
        if len(run) == batch_size:
            out.append((part, run))
            pending[part] = []
    out.extend((p, run) for p, run in pending.items() if run)
    return out


def engine_ceiling(
    customers: int = 100_000,
    segments: int = 100,
    events: int = 200_000,
    seed: int = 1,
    *,
    partitions: int = 8,
    settings: Settings | None = None,
    profile: cProfile.Profile | None = None,
    freeze: bool = True,
    backfill_all_timers: bool = False,
    incremental: bool = True,
) -> EngineCeiling:
    """Run the workload through the engine on this core; `settings` gives the batch size,
    profile cache size and history retention (defaults: the worker's). With `profile`, the
    measured events run under that profiler; `freeze` moves cached profiles out of the
    collector's reach as the worker does (`streams.engine.collector`), else nothing is frozen
    (the worker before that change). `backfill_all_timers` asks every timed segment for each
    customer's timer during the backfill (the worker before it asked only the task's).
    `incremental=False`: every event evaluates all its type's segments and asks each for its
    timer (`PartitionEngine(incremental=False)`, the engine before append effects)."""
    settings = settings or Settings.from_env({})
    config = EngineConfig(
        settings.membership_topic, settings.history_max_events, settings.history_max_age_ms
    )
    freezer = ProfileFreezer() if freeze else None
    parts = [
        _Partition(p, config, settings.profile_cache_size, freezer, incremental)
        for p in range(partitions)
    ]
    workload = Workload(customers, segments, events, seed)
    now = int(time.time() * 1000)
    for definition in segment_definitions(segments, seed, now):
        applied = AppliedSegment(definition["id"], 1, definition)
        compiled_for(applied)
        for part in parts:
            part.engine.set_segment(applied)

    preload = _by_partition(list(workload.profiles(now)), partitions, settings.batch_size)
    activity = _by_partition(list(workload.activity(now)), partitions, settings.batch_size)
    gc.collect()
    gc.freeze()  # the benchmark's own inputs: not the worker's, out of the collector's way
    started = time.process_time()
    for number, batch in preload:
        parts[number].apply(batch, now, settings)
    preload_s = time.process_time() - started
    for part in parts:
        part.changes = 0
        part.commit_bytes = 0

    with _GcPauses() as pauses:
        wall = time.perf_counter()
        started = time.process_time()
        if profile is not None:
            profile.enable()
        for number, batch in activity:
            parts[number].apply(batch, now, settings)
        if profile is not None:
            profile.disable()
        cpu_s = time.process_time() - started
        wall_s = time.perf_counter() - wall
    changes = sum(p.changes for p in parts)
    task = AppliedSegment("bench-backfill", 1, backfill_segment(seed))
    compiled_for(task)
    started = time.process_time()
    done = sum(part.backfill(task, now, settings.task_chunk, backfill_all_timers) for part in parts)
    backfill_s = time.process_time() - started
    gc.unfreeze()
    return EngineCeiling(
        events=events,
        cpu_s=cpu_s,
        wall_s=wall_s,
        events_per_s=events / cpu_s if cpu_s else 0.0,
        changes=changes,
        changes_per_event=changes / events if events else 0.0,
        preload_profiles_per_s=customers / preload_s if preload_s else 0.0,
        commit_bytes_per_event=sum(p.commit_bytes for p in parts) / events if events else 0.0,
        gc_max_pause_ms=pauses.max_s * 1000,
        gc_max_pause_cpu_ms=pauses.max_cpu_s * 1000,
        gc_collections=pauses.count,
        backfill_customers_per_s=done / backfill_s if backfill_s else 0.0,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--profile", action="store_true", help="print a cProfile top list")
    parser.add_argument("--top", type=int, default=30, help="rows of the cProfile list")
    parser.add_argument("--no-freeze", action="store_true", help="never gc.freeze() profiles")
    parser.add_argument(
        "--backfill-all-timers",
        action="store_true",
        help="the backfill asks every timed segment for timers (the worker before perf-engine)",
    )
    parser.add_argument(
        "--no-incremental",
        action="store_true",
        help="evaluate every segment of an event's type and ask each for its timer",
    )
    args = parser.parse_args(argv)
    print(f"build: {livesegments_compiled.BUILD.describe()}", flush=True)
    prof = cProfile.Profile() if args.profile else None
    result = engine_ceiling(
        args.customers,
        args.segments,
        args.events,
        args.seed,
        partitions=args.partitions,
        profile=prof,
        freeze=not args.no_freeze,
        backfill_all_timers=args.backfill_all_timers,
        incremental=not args.no_incremental,
    )
    print(
        f"engine only: {result.events_per_s:,.0f} events/s on one core "
        f"({result.events:,} events in {result.cpu_s:.2f} CPU s, {result.wall_s:.2f} s wall)"
    )
    print(
        f"  {result.changes_per_event:.2f} membership changes/event; "
        f"commit payload {result.commit_bytes_per_event:,.0f} B/event; "
        f"preload {result.preload_profiles_per_s:,.0f} profiles/s"
    )
    print(
        f"  gc: {result.gc_collections} collections, longest pause "
        f"{result.gc_max_pause_cpu_ms:.1f} ms CPU ({result.gc_max_pause_ms:.1f} ms wall)"
    )
    print(f"  backfill (CPU only): {result.backfill_customers_per_s:,.0f} customers/s")
    if prof is not None:
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
