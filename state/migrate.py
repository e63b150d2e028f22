"""Migrating a partition stored before ordinals (a sorted set of customer ids, one set of ids
per segment, bare msgpack profiles) to ordinals, index hashes and member bitmaps.

Run by `PartitionStore.load_meta` when a partition has no ``ord`` in its meta but has the old
customers set: customers get ordinals in id order, profiles are rewritten with theirs, each
applied segment's set becomes a bitmap, and the old keys are deleted, in one fenced commit (a
writer of the old version, still running, can then no longer commit). One commit carries the
whole partition: fine for the one-time step, large for partitions of millions of customers.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ._redis import as_bytes, as_text
from .commit import Writes, fenced_commit
from .keys import PartitionKeys
from .ordinals import MAGIC, bitfield_args, bucket_of, stored_value

__all__ = ["migrate_partition"]

_PAGE = 1000


async def migrate_partition(redis: Redis, keys: PartitionKeys, expected_ver: int) -> int:
    """Migrate the partition of `keys` (at version `expected_ver`); returns the customers."""
    ids = [as_text(i) for i in await redis.zrange(keys.legacy_customers, 0, -1)]  # type: ignore[arg-type]  # no scores asked
    writes = Writes(keys.meta)
    ordinals: dict[str, int] = {}
    for start in range(0, len(ids), _PAGE):
        page = ids[start : start + _PAGE]
        blobs = await redis.mget([keys.profile(c) for c in page])
        for customer_id, blob in zip(page, blobs, strict=True):
            if blob is None:
                continue  # listed without a profile: nothing to keep
            value = as_bytes(blob)
            if value[:1] == MAGIC:
                continue  # not a profile of the old layout either: left as it is
            ordinal = ordinals[customer_id] = len(ordinals)
            bucket, field = bucket_of(ordinal)
            writes.add("HSET", keys.ids(bucket), field, customer_id)
            writes.add("SET", keys.profile(customer_id), stored_value(ordinal, value))
    catalog = [as_text(s) for s in await redis.hkeys(keys.catalog)]
    for segment_id in catalog:
        members = await redis.smembers(keys.legacy_members(segment_id))
        bits = [(ordinals[m], True) for m in map(as_text, members) if m in ordinals]
        writes.add("DEL", keys.members(segment_id))
        if bits:
            writes.add_many("BITFIELD", keys.members(segment_id), bitfield_args(bits), 4)
        writes.add("DEL", keys.legacy_members(segment_id))
    writes.add("DEL", keys.legacy_customers)
    writes.add("HSET", keys.meta, "ord", len(ordinals), "customers", len(ordinals))
    await fenced_commit(redis, f"migration of {keys.tag}", expected_ver, writes)
    return len(ordinals)
