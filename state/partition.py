"""The state of one events partition: meta, applied catalog, profiles, members, timers, outbox.

Everything a partition owner writes for a batch goes through `PartitionBatch` and one fenced
commit, together with the offset of the last message applied: state and progress never part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes, as_text
from .commit import Writes, claim, fenced_commit
from .keys import KeySpace, PartitionKeys
from .outbox import OutboxRecord, pack_entry, read_outbox, trim_outbox
from .profile import Profile

__all__ = [
    "AppliedSegment",
    "PartitionBatch",
    "PartitionMeta",
    "PartitionStore",
    "profile_from_writes",
]


@dataclass(frozen=True)
class PartitionMeta:
    ver: int
    offset: int
    """Offset of the last message applied on this partition; -1 before the first."""
    seq: int
    task: dict[str, Any] | None
    """Cursor of a backfill task in progress (resumed after a crash), else None."""


@dataclass(frozen=True)
class AppliedSegment:
    """A segment definition as applied on one partition."""

    segment_id: str
    version: int
    definition: dict[str, Any]


class PartitionBatch:
    """The writes of one batch on one partition, built while events and tasks are applied."""

    def __init__(self, keys: PartitionKeys, meta: PartitionMeta) -> None:
        self.keys = keys
        self.offset = meta.offset
        self.seq = meta.seq
        self.task: dict[str, Any] | None = meta.task
        self.profiles: dict[str, Profile] = {}
        self.new_customers: list[str] = []
        self.membership: dict[str, dict[str, bool]] = {}
        """segment id -> customer id -> member after this batch (the last change wins)."""
        self.timers: dict[str, int | None] = {}
        self.outbox: list[OutboxRecord] = []
        self.delivered = 0
        """Entries (commits) at the head of the outbox that Kafka acknowledged: trimmed here."""
        self.catalog_set: dict[str, AppliedSegment] = {}
        self.catalog_del: list[str] = []
        self.drop_members: list[str] = []
        self.erased: list[str] = []
        """Customers whose profile, history, timer and index entry this batch deletes."""

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def set_member(self, segment_id: str, customer_id: str, member: bool) -> None:
        self.membership.setdefault(segment_id, {})[customer_id] = member

    def writes(self) -> Writes:
        keys = self.keys
        writes = Writes(keys.meta)
        for customer_id, profile in self.profiles.items():
            writes.add("SET", keys.profile(customer_id), profile.encode())
        if self.new_customers:
            writes.add_many(
                "ZADD", keys.customers, [x for c in self.new_customers for x in (0, c)], 2
            )
        for segment_id in self.drop_members:
            writes.add("DEL", keys.members(segment_id))
        for segment_id, changes in self.membership.items():
            joined = [c for c, member in changes.items() if member]
            left = [c for c, member in changes.items() if not member]
            if joined:
                writes.add_many("SADD", keys.members(segment_id), joined)
            if left:
                writes.add_many("SREM", keys.members(segment_id), left)
        due = [x for c, at in self.timers.items() if at is not None for x in (at, c)]
        if due:
            writes.add_many("ZADD", keys.timers, due, 2)
        gone = [c for c, at in self.timers.items() if at is None]
        if gone:
            writes.add_many("ZREM", keys.timers, gone)
        for segment_id, applied in self.catalog_set.items():
            writes.add(
                "HSET",
                keys.catalog,
                segment_id,
                pack({"version": applied.version, "definition": applied.definition}),
            )
        if self.catalog_del:
            writes.add_many("HDEL", keys.catalog, self.catalog_del)
        if self.erased:
            for customer_id in self.erased:
                writes.add("DEL", keys.profile(customer_id))
            writes.add_many("ZREM", keys.customers, self.erased)
            writes.add_many("ZREM", keys.timers, self.erased)
        if self.delivered:
            writes.add("LTRIM", keys.outbox, self.delivered, -1)
        if self.outbox:
            writes.add("RPUSH", keys.outbox, pack_entry(self.outbox))
        writes.add("HSET", keys.meta, "offset", self.offset, "seq", self.seq)
        if self.task is None:
            writes.add("HDEL", keys.meta, "task")
        else:
            writes.add("HSET", keys.meta, "task", pack(self.task))
        return writes


def profile_from_writes(keys: PartitionKeys, writes: Writes) -> dict[str, bytes]:
    """Customer id -> the profile bytes a commit writes (benchmarks replay commits in memory)."""
    prefix = keys.profile("")
    out: dict[str, bytes] = {}
    for op in writes.ops:
        key = writes.keys[op[1] - 1]
        if op[0] == "SET" and key.startswith(prefix):
            out[key[len(prefix) :]] = op[2]
    return out


class PartitionStore:
    """Reads and commits one partition's state."""

    def __init__(self, redis: Redis, keyspace: KeySpace, partition: int) -> None:
        self.redis = redis
        self.partition = partition
        self.keys = keyspace.partition(partition)

    async def load_meta(self) -> PartitionMeta:
        raw = await self.redis.hgetall(self.keys.meta)
        task = raw.get(b"task")
        return PartitionMeta(
            ver=int(raw.get(b"ver", 0)),
            offset=int(raw.get(b"offset", -1)),
            seq=int(raw.get(b"seq", 0)),
            task=unpack(as_bytes(task)) if task else None,
        )

    async def load_catalog(self) -> dict[str, AppliedSegment]:
        raw = await self.redis.hgetall(self.keys.catalog)
        catalog = {}
        for key, blob in raw.items():
            value = unpack(as_bytes(blob))
            segment_id = as_text(key)
            catalog[segment_id] = AppliedSegment(segment_id, value["version"], value["definition"])
        return catalog

    async def load_profiles(self, customer_ids: Sequence[str]) -> list[Profile | None]:
        if not customer_ids:
            return []
        blobs = await self.redis.mget([self.keys.profile(c) for c in customer_ids])
        return [
            Profile.decode(c, as_bytes(blob)) if blob is not None else None
            for c, blob in zip(customer_ids, blobs, strict=True)
        ]

    async def commit(self, expected_ver: int, batch: PartitionBatch) -> int:
        return await fenced_commit(
            self.redis, f"partition {self.partition}", expected_ver, batch.writes()
        )

    async def customers_after(self, after: str | None, count: int) -> list[str]:
        """Customer ids in id order, strictly after `after` (a resumable cursor)."""
        start = b"-" if after is None else b"(" + after.encode()
        ids = await self.redis.zrange(
            self.keys.customers, start, b"+", bylex=True, offset=0, num=count
        )
        return [as_text(i) for i in ids]  # type: ignore[arg-type]  # no scores asked

    async def customer_count(self) -> int:
        return int(await self.redis.zcard(self.keys.customers))

    async def due_customers(self, now_ms: int, limit: int) -> list[str]:
        ids = await self.redis.zrangebyscore(self.keys.timers, "-inf", now_ms, start=0, num=limit)
        return [as_text(i) for i in ids]  # type: ignore[arg-type]  # no scores asked

    async def outbox(self) -> list[list[OutboxRecord]]:
        return await read_outbox(self.redis, self.keys.outbox)

    async def trim_outbox(self, delivered: int, epoch: int) -> bool:
        """Trim acknowledged records, if `epoch` is still the partition's owner epoch."""
        return await trim_outbox(self.redis, self.keys.outbox, self.keys.meta, epoch, delivered)

    async def claim(self, expected_ver: int) -> tuple[int, int]:
        """Become the partition's writer (see `commit.claim`); (ver, epoch)."""
        return await claim(self.redis, f"partition {self.partition}", self.keys.meta, expected_ver)

    async def member_count(self, segment_id: str) -> int:
        return int(await self.redis.scard(self.keys.members(segment_id)))

    async def members(self, segment_id: str) -> set[str]:
        return {as_text(m) for m in await self.redis.smembers(self.keys.members(segment_id))}
