"""The partition runtime's profile cache on the real Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from state import KeySpace, PartitionBatch, PartitionStore, Profile
from streams.engine.runtime import _Owner


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
