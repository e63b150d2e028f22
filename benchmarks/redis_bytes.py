"""Redis bytes per customer of the benchmark population, split by key kind.

The seeded population, segments and activity events of `bench.py` are applied in this process
by one `PartitionEngine` per events partition and committed to the real Redis with
`PartitionStore.commit`, the worker's own writes, under a private key prefix (deleted after).
Then every key of the prefix is sized with `MEMORY USAGE` (all of them, or a sample with
`--sample`) and summed by kind, beside the `INFO memory` `used_memory` delta of the load.

    .venv/bin/python -m benchmarks.redis_bytes                     # 100k customers, 100 segments
    .venv/bin/python -m benchmarks.redis_bytes --customers 20000 --events 40000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
import zlib
from collections import Counter
from typing import Any

import msgpack
from redis.asyncio import Redis

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionStore, Profile
from streams.engine.machine import EngineConfig, PartitionEngine, compiled_for
from streams.messages import decode_event
from streams.settings import Settings

from .workload import Workload, add_size_arguments, segment_definitions

__all__ = ["key_kind", "main", "measure", "unlink_matching"]


async def unlink_matching(redis: Redis, match: str) -> int:
    """UNLINK every key matching the SCAN pattern `match`; how many."""
    keys = [k async for k in redis.scan_iter(match=match, count=2000)]
    for start in range(0, len(keys), 1000):
        await redis.unlink(*keys[start : start + 1000])
    return len(keys)


def key_kind(key: bytes) -> str:
    """`{prefix:pN}:c:<id>` -> "c" (profile), `...:m:<segment>` -> "m", `...:meta` -> "meta"."""
    rest = key.split(b"}:", 1)[1] if b"}:" in key else key
    return rest.split(b":", 1)[0].decode()


class _Loader:
    """One partition: its engine and store, fed batches of raw events as a worker is."""

    def __init__(self, redis: Redis, keyspace: KeySpace, number: int, config: EngineConfig):
        self.store = PartitionStore(redis, keyspace, number)
        self.engine = PartitionEngine(number, config, {})
        self.meta: Any = None
        self.cache: dict[str, Profile] = {}
        self.unacked = 0
        """Outbox entries not trimmed yet: the next commit trims them, as if Kafka had
        acknowledged them (the worker's steady state)."""

    async def start(self, segments: list[AppliedSegment]) -> None:
        self.meta = await self.store.load_meta()
        batch = PartitionBatch(self.store.keys, self.meta)
        for applied in segments:
            self.engine.set_segment(applied)
            batch.catalog_set[applied.segment_id] = applied
        await self._commit(batch)

    async def _commit(self, batch: PartitionBatch) -> None:
        batch.delivered = self.unacked
        ver = await self.store.commit(self.meta.ver, batch)
        self.unacked = 1 if batch.outbox else 0
        self.meta = type(self.meta)(ver, batch.offset, batch.seq, batch.task)
        self.cache.update(batch.profiles)

    async def apply(self, raw: list[tuple[bytes, bytes]], now: int, settings: Settings) -> None:
        batch = PartitionBatch(self.store.keys, self.meta)
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
        ids = list(dict.fromkeys(e.customer_id for e in events))
        missing = [c for c in ids if c not in self.cache]
        loaded = dict(zip(missing, await self.store.load_profiles(missing), strict=True))
        for event in events:
            cid = event.customer_id
            profile = self.cache.get(cid) or loaded.get(cid)
            if profile is None:
                profile = loaded[cid] = Profile(cid)
                batch.new_customers.append(cid)
            self.engine.apply_event(batch, profile, event, now)
            batch.profiles[cid] = profile
        batch.offset += len(raw)
        await self._commit(batch)


async def _size(redis: Redis, prefix: str, sample: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    keys = [k async for k in redis.scan_iter(match=f"{{{prefix}:*", count=2000)]
    chosen = [k for k in keys if sample >= 1 or rng.random() < sample]
    for start in range(0, len(chosen), 2000):
        part = chosen[start : start + 2000]
        pipe = redis.pipeline(transaction=False)
        for key in part:
            pipe.memory_usage(key, samples=0)
        for key, size in zip(part, await pipe.execute(), strict=True):
            kind = key_kind(key)
            sizes[kind] += size or 0
            counts[kind] += 1
    scale = 1 / sample if sample < 1 else 1.0
    return {
        "keys": len(keys),
        "by_kind": {k: {"keys": counts[k], "bytes": sizes[k] * scale} for k in sorted(sizes)},
    }


async def measure(
    customers: int,
    segments: int,
    events: int,
    seed: int,
    partitions: int,
    redis_url: str,
    sample: float = 1.0,
    keep: bool = False,
) -> dict[str, Any]:
    settings = Settings.from_env({})
    config = EngineConfig(
        settings.membership_topic, settings.history_max_events, settings.history_max_age_ms
    )
    prefix = f"bytes-{uuid.uuid4().hex[:10]}"
    redis = Redis.from_url(redis_url)
    keyspace = KeySpace(prefix)
    now = int(time.time() * 1000)
    applied = [AppliedSegment(d["id"], 1, d) for d in segment_definitions(segments, seed, now)]
    for a in applied:
        compiled_for(a)
    workload = Workload(customers, segments, events, seed)
    used_before = int((await redis.info("memory"))["used_memory"])
    loaders = [_Loader(redis, keyspace, p, config) for p in range(partitions)]
    try:
        for loader in loaders:
            await loader.start(applied)
        for stream in (workload.profiles(now), workload.activity(now)):
            pending: dict[int, list[tuple[bytes, bytes]]] = {}
            for event in stream:
                key = event["customer_id"].encode()
                part = zlib.crc32(key) % partitions
                run = pending.setdefault(part, [])
                run.append((key, msgpack.packb(event)))
                if len(run) == settings.batch_size:
                    await loaders[part].apply(run, now, settings)
                    pending[part] = []
            for part, run in pending.items():
                if run:
                    await loaders[part].apply(run, now, settings)
        used_after = int((await redis.info("memory"))["used_memory"])
        sized = await _size(redis, prefix, sample, seed)
        total = sum(v["bytes"] for v in sized["by_kind"].values())
        members = 0
        for loader in loaders:
            for segment in applied:
                members += await loader.store.member_count(segment.segment_id)
        return {
            "customers": customers,
            "segments": segments,
            "events": events,
            "partitions": partitions,
            "memberships": members,
            "keys": sized["keys"],
            "bytes_per_customer": total / customers,
            "used_memory_delta_per_customer": (used_after - used_before) / customers,
            "by_kind_per_customer": {
                k: round(v["bytes"] / customers, 1) for k, v in sized["by_kind"].items()
            },
            "keys_by_kind": {k: v["keys"] for k, v in sized["by_kind"].items()},
        }
    finally:
        if not keep:
            await unlink_matching(redis, f"{{{prefix}:*")
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_size_arguments(parser, seed=7)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--sample", type=float, default=1.0, help="share of keys sized")
    args = parser.parse_args(argv)
    out = asyncio.run(
        measure(
            args.customers,
            args.segments,
            args.events,
            args.seed,
            args.partitions,
            args.redis_url,
            args.sample,
        )
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
