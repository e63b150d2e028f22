"""Sync reads of a partition's stored layout for tests (`state.ordinals`): members from a
segment's bitmap, customers from the ordinal index, profiles with their ordinal header."""

from __future__ import annotations

from typing import Any

import msgpack

from state import PartitionKeys, Profile
from state.ordinals import BUCKET, bucket_of, ordinals_in, split_stored
from state.partition import decode_stored

__all__ = ["customers", "decode", "members", "profile_map"]


def members(redis: Any, keys: PartitionKeys, segment_id: str) -> set[str]:
    """The segment's members on the partition of `keys` (bits set, resolved to ids)."""
    raw = redis.get(keys.members(segment_id)) or b""
    found = set()
    for ordinal in ordinals_in(raw, 0):
        bucket, field = bucket_of(ordinal)
        customer_id = redis.hget(keys.ids(bucket), field)
        if customer_id is not None:
            found.add(customer_id.decode())
    return found


def customers(redis: Any, keys: PartitionKeys) -> list[str]:
    """Every customer id of the partition, in ordinal order (the order tasks walk them)."""
    end = int(redis.hget(keys.meta, "ord") or 0)
    out = []
    for bucket in range((end + BUCKET - 1) // BUCKET):
        raw = redis.hgetall(keys.ids(bucket))
        out.extend(v.decode() for _, v in sorted((int(f), v) for f, v in raw.items()))
    return out


def decode(customer_id: str, value: bytes) -> Profile:
    """A profile key's value (ordinal header, then msgpack) as a `Profile`."""
    return decode_stored(customer_id, value, customer_id)


def profile_map(value: bytes) -> dict[str, Any]:
    """A profile key's value as the raw msgpack map of the profile."""
    return dict(msgpack.unpackb(split_stored(value, "test")[1], raw=False, strict_map_key=False))
