"""The worker's backfill task path on the real Redis, without Kafka: CPU per customer.

Loads the benchmark's population and activity through `PartitionRuntime.process` (the
worker's event path, commits included) under a key prefix of its own, then runs the task of
activating `workload.backfill_segment` on every partition at once, as the worker's lanes do,
and prints the worker's process CPU per customer and the customers per wall second (Redis
shares the machine: wall figures need the load average beside them). Published records go to
a stub: the broker is not involved. Every key of the prefix is deleted at the end.

    .venv/bin/python -m benchmarks.backfill_task [--customers N] [--events N] [--cold] [--profile]

The CPU of the two synchronous stages (`evaluate_chunk`: the customers' evaluation and timers;
`writes`: building each chunk's commit) is printed per customer beside the total.

`--keep` leaves the loaded state in Redis and prints its prefix; `--prefix P` runs on it again
(no load; the profile caches are filled from Redis first unless `--cold`), activating a segment
of the same definition under a new id, so that A/B runs of two checkouts share one state.
Delete such a state with `--prefix P --drop`.

The process turns CPython's automatic full collections off, as the worker does
(`streams.engine.collector`); `--default-gc` keeps them (a cold customer then costs several
times its decode: the full collections traverse the chunk's decoded profiles).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any
from unittest import mock

import msgpack

from state import AppliedSegment, OutboxRecord, PartitionBatch, Profile
from state.connect import connect
from streams.engine import runtime as runtime_module
from streams.engine.collector import no_automatic_full_collections
from streams.engine.runtime import PartitionRuntime
from streams.engine.tasks import evaluate_chunk
from streams.messages import TaskMessage
from streams.messages.events import TASK_HEADER, Incoming
from streams.settings import Settings

from .procstat import cpu_seconds, listening_pid
from .redis_bytes import unlink_matching
from .workload import Workload, add_size_arguments, backfill_segment, segment_definitions

__all__ = ["main"]


class _StubPublisher:
    """Accepts every record at once (the task path's CPU, not the broker's)."""

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = []
        for _ in records:
            future = loop.create_future()
            future.set_result(None)
            futures.append(future)
        return futures

    async def settle(self, records: Sequence[OutboxRecord], futures: Sequence[Any]) -> None:
        return None

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        return None


async def _load(runtime: PartitionRuntime, workload: Workload, now: int, partitions: int) -> None:
    """Population then activity through the worker's event path, batch by batch."""
    batch = runtime.settings.batch_size
    offsets = [0] * partitions
    for events in (workload.profiles(now), workload.activity(now)):
        pending: dict[int, list[Incoming]] = {p: [] for p in range(partitions)}
        for event in events:
            key = event["customer_id"].encode()
            part = zlib.crc32(key) % partitions
            pending[part].append(Incoming(part, offsets[part], key, msgpack.packb(event)))
            offsets[part] += 1
            if len(pending[part]) == batch:
                await runtime.process(part, pending[part])
                pending[part] = []
        for part, run in pending.items():
            if run:
                await runtime.process(part, run)


async def _run(args: argparse.Namespace) -> None:
    prefix = args.prefix or f"bfbench-{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env(dict(os.environ), key_prefix=prefix)
    redis = connect(settings.redis_url)  # as the worker: hiredis packs its commands
    runtime = PartitionRuntime(settings, redis, _StubPublisher())  # type: ignore[arg-type]
    partitions = args.partitions
    workload = Workload(args.customers, args.segments, args.events, args.seed)
    now = int(time.time() * 1000)
    try:
        catalog = [
            AppliedSegment(d["id"], 1, d)
            for d in segment_definitions(args.segments, args.seed, now)
        ]
        for part in range(partitions):
            owner = await runtime.owner(part)
            for applied in catalog:
                owner.engine.set_segment(applied)
        started = time.perf_counter()
        if args.drop:
            return
        if args.prefix:
            if not args.cold:
                await _warm(runtime, partitions, args.shuffled)
        else:
            await _load(runtime, workload, now, partitions)
        print(
            f"loaded {args.customers:,} customers, {args.events:,} events in "
            f"{time.perf_counter() - started:.1f} s"
            + (f" (kept: --prefix {prefix})" if args.keep else "")
        )
        if args.cold:
            for part in range(partitions):
                (await runtime.owner(part)).cache.clear()
        target = backfill_segment(args.seed)
        if args.prefix:  # a new segment of the same definition on a kept state
            target = {**target, "id": f"{target['id']}-{uuid.uuid4().hex[:6]}"}
        task = TaskMessage(
            "bench-job",
            "activate",
            "activate",
            (AppliedSegment(target["id"], 1, target),),
            cancelable=True,
        )

        async def verified(
            _registry: object, _partition: int, _raw: object
        ) -> tuple[TaskMessage, None]:
            return task, None

        async def one(part: int) -> None:
            owner = await runtime.owner(part)
            message = Incoming(
                part, owner.meta.offset + 1, None, task.encode(), ((TASK_HEADER, b"1"),)
            )
            async with owner.lock:
                await runtime._run_task(owner, message)

        redis_pid = listening_pid(int(settings.redis_url.rsplit(":", 1)[1].split("/")[0]))
        prof = cProfile.Profile() if args.profile else None
        stages: defaultdict[str, float] = defaultdict(float)
        with (
            mock.patch.object(runtime_module, "verified_task", verified),
            mock.patch.object(runtime_module, "evaluate_chunk", _timed(evaluate_chunk, stages)),
            mock.patch.object(PartitionBatch, "writes", _timed(PartitionBatch.writes, stages)),
        ):
            load = os.getloadavg()
            redis_cpu = cpu_seconds(redis_pid) if redis_pid else None
            cpu, wall = time.process_time(), time.perf_counter()
            if prof is not None:
                prof.enable()
            await asyncio.gather(*(one(p) for p in range(partitions)))
            if prof is not None:
                prof.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            redis_after = cpu_seconds(redis_pid) if redis_pid else None
        n = args.customers
        redis_us = (
            f"; redis-server {(redis_after - redis_cpu) / n * 1e6:.1f} µs"
            if redis_cpu is not None and redis_after is not None
            else ""
        )
        print(
            f"backfill task ({'cold' if args.cold else 'warm'} cache): {n / wall:,.0f} customers/s "
            f"wall ({wall:.2f} s; load {load[0]:.2f}), worker CPU {cpu / n * 1e6:.1f} µs per "
            f"customer{redis_us}; of which "
            + ", ".join(f"{name} {cpu_s / n * 1e6:.1f} µs" for name, cpu_s in stages.items())
        )
        if prof is not None:
            pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
    finally:
        if not args.keep:
            await unlink_matching(redis, f"{{{prefix}:*")
        await redis.aclose()


def _timed(function: Callable[..., Any], stages: defaultdict[str, float]) -> Callable[..., Any]:
    """`function`, its process CPU added to `stages` under its name (a synchronous stage)."""
    name = function.__name__

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            stages[name] += time.process_time() - started

    return timed


async def _warm(runtime: PartitionRuntime, partitions: int, shuffled: bool) -> None:
    """Fill each partition's profile cache from Redis (a kept state, a new process): in
    ordinal order, or `shuffled` (recency unrelated to the ordinals, as events leave it)."""
    for part in range(partitions):
        owner = await runtime.owner(part)
        after: str | None = None
        found: list[Profile] = []
        while ids := await owner.store.customers_after(after, 5000):
            found.extend(p for p in await owner.profiles(ids) if p is not None)
            after = ids[-1]
        if shuffled:
            random.Random(part).shuffle(found)
        owner.remember(found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser)
    parser.add_argument("--cold", action="store_true", help="empty the profile caches first")
    parser.add_argument("--profile", action="store_true", help="print a cProfile list")
    parser.add_argument(
        "--shuffled",
        action="store_true",
        help="with --prefix: warm the caches in a random order (LS_PROFILE_CACHE_SIZE below "
        "the customers per partition then leaves random customers cold, as in the bench)",
    )
    parser.add_argument("--keep", action="store_true", help="leave the state in Redis")
    parser.add_argument("--prefix", help="run on the state a --keep run left (no load)")
    parser.add_argument("--drop", action="store_true", help="with --prefix: delete it, no run")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep CPython's automatic full collections (the worker turns them off)",
    )
    args = parser.parse_args(argv)
    if not args.default_gc:
        no_automatic_full_collections()  # as the worker's process does
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
