"""The partition runtime's profile cache on the real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis

from state import KeySpace, OutboxRecord, PartitionBatch, PartitionStore, Profile
from streams import metrics
from streams.engine.runtime import PartitionRuntime, _Owner
from streams.messages import Incoming
from streams.settings import Settings


async def test_profiles_cached_when_asked_survive_an_eviction_during_the_read(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """Regression: a backfill reads its next chunk while the current one commits, and that
    commit's `remember` evicted cached customers of the next chunk during the read: KeyError."""
    store = PartitionStore(aredis, keyspace, 0)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    batch.profiles["stored"] = Profile("stored", {"tier": "gold"})
    batch.new_customers.append("stored")
    await store.commit(meta.ver, batch)
    owner = _Owner(store, None, meta, 0, cache_size=2)  # type: ignore[arg-type]
    cached = Profile("cached", {"tier": "silver"})
    owner.remember([cached])

    reading = asyncio.ensure_future(owner.profiles(["cached", "stored", "unknown"]))
    await asyncio.sleep(0)  # the MGET of the others is on its way
    assert not reading.done()
    owner.remember([Profile("x1"), Profile("x2")])  # evicts "cached" meanwhile
    assert "cached" not in owner.cache

    found, stored, unknown = await reading
    assert found is cached
    assert stored is not None and stored.attrs == {"tier": "gold"}
    assert unknown is None


class _StubPublisher:
    """Accepts every record at once: the test is about the runtime's counting, not Kafka."""

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = []
        for _ in records:
            future: asyncio.Future[Any] = loop.create_future()
            future.set_result(None)
            futures.append(future)
        return futures

    async def settle(self, records: Sequence[OutboxRecord], futures: Sequence[Any]) -> None:
        return None


def _event(partition: int, offset: int, customer_id: str) -> Incoming:
    value = {
        "event_id": f"e{offset}",
        "customer_id": customer_id,
        "type": "profile",
        "ts": int(time.time() * 1000),
        "properties": {"n": offset},
    }
    return Incoming(partition, offset, customer_id.encode(), msgpack.packb(value))


async def test_each_batchs_applied_events_are_counted_on_its_partition(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """The partition's counter is looked up once per owner, then counts every batch."""
    settings = Settings.from_env({}, key_prefix=keyspace.prefix)
    runtime = PartitionRuntime(settings, aredis, _StubPublisher())  # type: ignore[arg-type]

    def counted(partition: int) -> float:
        return (
            metrics.REGISTRY.get_sample_value(
                "livesegments_events_processed_total", {"partition": str(partition)}
            )
            or 0.0
        )

    before = counted(5), counted(6)
    await runtime.process(5, [_event(5, 0, "a"), _event(5, 1, "b")])
    await runtime.process(5, [_event(5, 2, "a"), _event(5, 2, "a")])  # one applied
    await runtime.process(6, [_event(6, 0, "c")])
    assert (counted(5) - before[0], counted(6) - before[1]) == (3, 1)
