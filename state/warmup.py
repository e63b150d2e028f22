"""Reads for warming a new owner's profile cache: a partition's customers in ordinal order, a
chunk at a time, and their stored profiles.

Two steps, so the caller can open its fence between them: a profile read may race a commit, and
the caller must know which customers were committed after the read was sent
(`streams.engine.runtime`). Plain reads on the client given (not the partition's commit
pipeline), never a write.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from . import index
from ._redis import as_bytes
from .keys import PartitionKeys
from .partition import decode_stored
from .profile import Profile

__all__ = ["WarmupReader"]


class WarmupReader:
    """One partition's customers from ordinal `start` on (`ids`), then their profiles."""

    def __init__(self, redis: Redis, keys: PartitionKeys) -> None:
        self.redis = redis
        self.keys = keys
        self.start = 0
        """The next ordinal to list."""
        self.done = False
        """True once a listing came back short: every customer was listed."""

    async def ids(self, count: int) -> list[str]:
        """Up to `count` customer ids after those listed so far (first seen first)."""
        found = await index.customers_from(self.redis, self.keys, self.start, count)
        if found:
            self.start = found[-1][0] + 1
        self.done = len(found) < count
        return [customer_id for _, customer_id in found]

    async def profiles(self, customer_ids: Sequence[str]) -> list[Profile]:
        """The stored profiles of `customer_ids` (one MGET); those not stored are left out."""
        return self.decode(customer_ids, await self.read(customer_ids))

    async def read(self, customer_ids: Sequence[str]) -> list[bytes | str | None]:
        """The stored values of `customer_ids`' profile keys (one MGET; None: not stored)."""
        if not customer_ids:
            return []
        values: list[bytes | str | None] = await self.redis.mget(
            [self.keys.profile(c) for c in customer_ids]
        )
        return values

    def decode(
        self, customer_ids: Sequence[str], values: Sequence[bytes | str | None]
    ) -> list[Profile]:
        """`read`'s values as profiles (CPU only: the caller can time it); None left out."""
        return [
            decode_stored(c, as_bytes(value), self.keys.profile(c))
            for c, value in zip(customer_ids, values, strict=True)
            if value is not None
        ]
