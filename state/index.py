"""Reads of one partition's customer index and member bitmaps (see `state.ordinals`).

Customers are listed in ordinal order (first seen first) from the ordinal -> id hashes;
members are the set bits of a segment's bitmap, read a block at a time and resolved to ids
with HMGET, so a listing over millions of customers holds one block and one page at a time.
Every call touches the keys of one partition only (one hash tag).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis

from ._redis import as_bytes, as_text
from .keys import PartitionKeys
from .ordinals import BUCKET, bucket_of, ordinals_in

__all__ = ["BLOCK", "customer_count", "customers_from", "ids_of", "member_count", "member_pages"]

BLOCK = 8192
"""Bitmap bytes read per GETRANGE: 65,536 ordinals."""


async def ids_of(redis: Redis, keys: PartitionKeys, ordinals: Sequence[int]) -> list[str | None]:
    """The customer id of each ordinal (None where the customer was forgotten)."""
    if not ordinals:
        return []
    groups: dict[int, list[int]] = {}
    for ordinal in ordinals:
        bucket, field = bucket_of(ordinal)
        groups.setdefault(bucket, []).append(field)
    pipe = redis.pipeline(transaction=False)
    for bucket, fields in groups.items():
        pipe.hmget(keys.ids(bucket), fields)
    found: dict[int, str | None] = {}
    for (bucket, fields), values in zip(groups.items(), await pipe.execute(), strict=True):
        for field, value in zip(fields, values, strict=True):
            found[bucket * BUCKET + field] = None if value is None else as_text(value)
    return [found[o] for o in ordinals]


async def member_count(redis: Redis, keys: PartitionKeys, segment_id: str) -> int:
    return int(await redis.bitcount(keys.members(segment_id)))


async def member_pages(
    redis: Redis, keys: PartitionKeys, segment_id: str, page: int
) -> AsyncIterator[list[str]]:
    """The segment's members on this partition in ordinal order, up to `page` ids a page."""
    key = keys.members(segment_id)
    size = int(await redis.strlen(key))
    pending: list[int] = []
    for start in range(0, size, BLOCK):
        chunk = as_bytes(await redis.getrange(key, start, start + BLOCK - 1))
        pending.extend(ordinals_in(chunk, start * 8))
        while len(pending) >= page or (pending and start + BLOCK >= size):
            taken, pending = pending[:page], pending[page:]
            ids = [i for i in await ids_of(redis, keys, taken) if i is not None]
            if ids:
                yield ids


async def customer_count(redis: Redis, keys: PartitionKeys) -> int:
    return int(await redis.hget(keys.meta, "customers") or 0)


async def customers_from(
    redis: Redis, keys: PartitionKeys, start: int, count: int
) -> list[tuple[int, str]]:
    """Up to `count` (ordinal, id) of the customers with an ordinal >= `start`, in order."""
    end = int(await redis.hget(keys.meta, "ord") or 0)
    ordinals: list[int] = []
    ids: list[str] = []
    bucket = start // BUCKET
    while len(ids) < count and bucket * BUCKET < end:
        span = min((count - len(ids)) // BUCKET + 1, (end - 1) // BUCKET + 1 - bucket)
        pipe = redis.pipeline(transaction=False)
        for number in range(bucket, bucket + span):
            pipe.hgetall(keys.ids(number))
        for number, raw in zip(range(bucket, bucket + span), await pipe.execute(), strict=True):
            # a bucket's fields are its ordinals' offsets (< BUCKET): placed, not sorted
            slots: list[bytes | str | None] = [None] * BUCKET
            for field, value in raw.items():
                slots[int(field)] = value
            base = number * BUCKET
            for offset in range(max(start - base, 0), BUCKET):
                value = slots[offset]
                if value is not None:
                    ordinals.append(base + offset)
                    ids.append(value.decode() if isinstance(value, bytes) else value)
        bucket += span
    return list(zip(ordinals[:count], ids[:count], strict=True))
