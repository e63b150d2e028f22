"""Reads for the insights (membership sets per partition, every customer's data) and the
store of suggested segments (written by the API when it suggests, read when one is accepted).

Suggestions are analysis results, not engine state: accepting one sends a normal `create`
command through the control topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgpack

from .profile import Profile
from .reads import StateReads

__all__ = ["SuggestionStore", "all_customers", "partition_member_sets"]


async def partition_member_sets(
    reads: StateReads, partition: int, segment_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Segment id -> its members on one events partition (SMEMBERS, one pipeline)."""
    keys = reads.keyspace.partition(partition)
    pipe = reads.redis.pipeline(transaction=False)
    for segment_id in segment_ids:
        pipe.smembers(keys.members(segment_id))
    found = await pipe.execute()
    return {
        sid: {m.decode() if isinstance(m, bytes) else str(m) for m in members}
        for sid, members in zip(segment_ids, found, strict=True)
    }


async def all_customers(reads: StateReads) -> AsyncIterator[Profile]:
    """Every stored profile, one at a time (pages of MGET underneath)."""
    async for page in reads.all_profiles():
        for profile in page:
            yield profile


class SuggestionStore:
    def __init__(self, reads: StateReads) -> None:
        self.redis = reads.redis
        self.key = reads.keyspace.registry.suggestions

    async def save(self, suggestions: Sequence[dict[str, Any]]) -> None:
        if suggestions:
            mapping = {s["suggestion_id"]: msgpack.packb(s) for s in suggestions}
            await self.redis.hset(self.key, mapping=mapping)

    async def get(self, suggestion_id: str) -> dict[str, Any] | None:
        blob = await self.redis.hget(self.key, suggestion_id)
        if blob is None:
            return None
        return dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))
