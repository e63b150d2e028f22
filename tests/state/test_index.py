"""`state.index` listings on the real Redis: the customers from an ordinal, across buckets,
with forgotten customers' gaps (whole buckets too), against a model of who is stored."""

from __future__ import annotations

from dataclasses import replace

from redis.asyncio import Redis

from state import KeySpace, PartitionBatch, PartitionStore, Profile, index
from state.ordinals import BUCKET


async def test_customers_from_any_start_and_count_match_the_stored_order(
    aredis: Redis, keyspace: KeySpace
) -> None:
    store = PartitionStore(aredis, keyspace, 5)
    meta = await store.load_meta()
    ids = [f"c{n}" for n in range(5 * BUCKET + 40)]  # six buckets, the last one partly full
    batch = PartitionBatch(store.keys, meta)
    profiles = {c: Profile(c) for c in ids}
    for customer_id in ids:
        batch.profiles[customer_id] = profiles[customer_id]
        batch.new_customers.append(customer_id)
    meta = replace(meta, ver=await store.commit(meta.ver, batch))
    # forget a scattered few, a bucket's first and last, and the whole third bucket
    gone = {ids[n] for n in (0, 5, BUCKET - 1, BUCKET, 3 * BUCKET + 77)}
    gone |= set(ids[2 * BUCKET : 3 * BUCKET])
    batch = PartitionBatch(store.keys, meta)
    stored = dict(zip(ids, await store.load_profiles(ids), strict=True))
    for customer_id in sorted(gone):
        profile = stored[customer_id]
        assert profile is not None
        batch.erase(profile)
    await store.commit(meta.ver, batch)
    model = [(n, c) for n, c in enumerate(ids) if c not in gone]
    end = len(ids)
    for start in [*range(0, end + 3, 23), BUCKET - 1, BUCKET, 2 * BUCKET, 3 * BUCKET - 1]:
        for count in (1, 7, BUCKET - 1, BUCKET, BUCKET + 1, 300, 5000):
            expected = [(n, c) for n, c in model if n >= start][:count]
            assert await index.customers_from(aredis, store.keys, start, count) == expected, (
                start,
                count,
            )
