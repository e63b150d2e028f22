"""The state of one events partition: meta, applied catalog, profiles, members, timers, outbox.

Everything a partition owner writes for a batch goes through `PartitionBatch` and one fenced
commit, together with the offset of the last message applied: state and progress never part.
Customers are numbered on first sight and members are bits (`state.ordinals`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from . import index
from ._codec import pack, unpack
from ._redis import as_bytes, as_text
from .commit import MAX_ARGS, Writes, claim, fenced_commit
from .errors import StateError
from .keys import KeySpace, PartitionKeys
from .migrate import migrate_partition
from .ordinals import bitfield_args, bucket_of, split_stored, stored_head
from .outbox import OutboxRecord, pack_entry, read_outbox, trim_outbox
from .profile import Profile

_BITS_PER_OP = MAX_ARGS // 4
"""Membership changes of one segment that one `BITFIELD` op holds (``SET u1 #? v`` each):
`Writes.add_many` splits more into several."""

__all__ = [
    "AppliedSegment",
    "PartitionBatch",
    "PartitionMeta",
    "PartitionStore",
    "decode_stored",
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
        self.erased_ordinals: dict[str, int] = {}
        self.next_ordinal = 0
        """The ordinal the next new customer gets (`PartitionStore.commit` sets it)."""

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def set_member(self, segment_id: str, customer_id: str, member: bool) -> None:
        changes = self.membership.get(segment_id)
        if changes is None:
            changes = self.membership[segment_id] = {}
        changes[customer_id] = member

    def erase(self, profile: Profile) -> None:
        """Delete the customer's profile, timer and index entry with this batch."""
        self.erased.append(profile.customer_id)
        if profile.ordinal is not None:
            self.erased_ordinals[profile.customer_id] = profile.ordinal

    def _ordinal(self, customer_id: str) -> int:
        profile = self.profiles.get(customer_id)
        ordinal = profile.ordinal if profile is not None else None
        if ordinal is None:
            ordinal = self.erased_ordinals.get(customer_id)
        if ordinal is None:
            raise StateError(
                f"{self.keys.tag}: membership change of customer {customer_id!r}, whose "
                "profile is not in the batch (no ordinal to set its bit)"
            )
        return ordinal

    def writes(self) -> Writes:
        keys = self.keys
        writes = Writes(keys.meta)
        added = 0
        for customer_id in self.new_customers:
            profile = self.profiles.get(customer_id)
            if profile is None:
                continue
            if profile.ordinal is None:
                profile.ordinal = self.next_ordinal
                self.next_ordinal += 1
            bucket, field = bucket_of(profile.ordinal)
            writes.add("HSET", keys.ids(bucket), field, customer_id)
            added += 1
        stored = []
        prefix = keys.profile("")  # one key per profile: `keys.profile(customer_id)`
        for customer_id, profile in self.profiles.items():
            if profile.ordinal is None:
                raise StateError(
                    f"{keys.tag}: profile of {customer_id!r} has no ordinal: neither loaded "
                    "nor listed in new_customers"
                )
            stored.append((prefix + customer_id, profile.encode(stored_head(profile.ordinal))))
        writes.set_many(stored)
        for segment_id in self.drop_members:
            writes.add("DEL", keys.members(segment_id))
        ordinal_of = self._ordinal
        for segment_id, changes in self.membership.items():
            if len(changes) > _BITS_PER_OP:  # several BITFIELDs (`add_many` splits them)
                bits = bitfield_args((ordinal_of(c), member) for c, member in changes.items())
                writes.add_many("BITFIELD", keys.members(segment_id), bits, 4)
                continue
            # one BITFIELD, the op built in place: what `add_many` gives, without the
            # argument list and its copies (a small batch changes ~3 bits a segment)
            op = writes.op("BITFIELD", keys.members(segment_id))
            for customer_id, member in changes.items():
                op += ("SET", "u1", ordinal_of(customer_id), 1 if member else 0)
        if self.timers:
            due: list[object] = []
            gone: list[str] = []
            for customer_id, at in self.timers.items():
                if at is None:
                    gone.append(customer_id)
                else:
                    due += (at, customer_id)
            if due:
                writes.add_many("ZADD", keys.timers, due, 2)
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
                ordinal = self.erased_ordinals.get(customer_id)
                if ordinal is not None:
                    bucket, field = bucket_of(ordinal)
                    writes.add("HDEL", keys.ids(bucket), field)
            writes.add_many("ZREM", keys.timers, self.erased)
        removed = len(self.erased_ordinals)  # an erased customer never stored had none
        if added or removed:
            writes.add("HINCRBY", keys.meta, "customers", added - removed)
        if added:
            writes.add("HSET", keys.meta, "ord", self.next_ordinal)
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
    """Customer id -> the value of its profile key a commit writes (`decode_stored` reads it
    back; benchmarks replay commits in memory)."""
    prefix = keys.profile("")
    return {key[len(prefix) :]: value for key, value in writes.sets() if key.startswith(prefix)}


class PartitionStore:
    """Reads and commits one partition's state."""

    def __init__(self, redis: Redis, keyspace: KeySpace, partition: int) -> None:
        self.redis = redis
        self.partition = partition
        self.keys = keyspace.partition(partition)
        self._next_ordinal: int | None = None
        self._cursor: tuple[str, int] | None = None
        """The last customer `customers_after` returned and its ordinal."""

    async def load_meta(self) -> PartitionMeta:
        """The partition's meta; a partition stored by the layout before ordinals is migrated
        first (`state.migrate`, one fenced commit)."""
        raw = await self.redis.hgetall(self.keys.meta)
        if b"ord" not in raw and await self.redis.exists(self.keys.legacy_customers):
            await migrate_partition(self.redis, self.keys, int(raw.get(b"ver", 0)))
            raw = await self.redis.hgetall(self.keys.meta)
        self._next_ordinal = int(raw.get(b"ord", 0))
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
        keys = [self.keys.profile(c) for c in customer_ids]
        blobs = await self.redis.mget(keys)
        return [
            decode_stored(c, as_bytes(blob), key) if blob is not None else None
            for c, key, blob in zip(customer_ids, keys, blobs, strict=True)
        ]

    async def commit(self, expected_ver: int, batch: PartitionBatch) -> int:
        if self._next_ordinal is None:
            self._next_ordinal = int(await self.redis.hget(self.keys.meta, "ord") or 0)
        batch.next_ordinal = max(batch.next_ordinal, self._next_ordinal)
        writes = batch.writes()
        self._next_ordinal = batch.next_ordinal  # even if the commit fails: gaps are harmless
        return await fenced_commit(self.redis, f"partition {self.partition}", expected_ver, writes)

    async def customers_after(self, after: str | None, count: int) -> list[str]:
        """Customer ids in ordinal order (first seen first), strictly after customer `after`
        (a resumable cursor: the last id of the previous call)."""
        start = 0
        if after is not None:
            if self._cursor is not None and self._cursor[0] == after:
                start = self._cursor[1] + 1
            else:
                head = await self.redis.getrange(self.keys.profile(after), 0, 4)
                if not head:
                    raise StateError(
                        f"partition {self.partition}: cursor customer {after!r} is not stored "
                        "(forgotten since?); cannot resume the listing after it"
                    )
                start = split_stored(as_bytes(head), self.keys.profile(after))[0] + 1
        found = await index.customers_from(self.redis, self.keys, start, count)
        if found:
            self._cursor = (found[-1][1], found[-1][0])
        return [customer_id for _, customer_id in found]

    async def customer_count(self) -> int:
        return await index.customer_count(self.redis, self.keys)

    async def due_customers(self, now_ms: int, limit: int) -> list[str]:
        ids = await self.redis.zrangebyscore(self.keys.timers, "-inf", now_ms, start=0, num=limit)
        return [as_text(i) for i in ids]  # type: ignore[arg-type]  # no scores asked

    async def earliest_timer(self) -> int | None:
        """When the partition's earliest timer is due (ms), or None without any."""
        found = await self.redis.zrange(self.keys.timers, 0, 0, withscores=True)
        return int(found[0][1]) if found else None

    async def outbox(self) -> list[list[OutboxRecord]]:
        return await read_outbox(self.redis, self.keys.outbox)

    async def trim_outbox(self, delivered: int, epoch: int) -> bool:
        """Trim acknowledged records, if `epoch` is still the partition's owner epoch."""
        return await trim_outbox(self.redis, self.keys.outbox, self.keys.meta, epoch, delivered)

    async def claim(self, expected_ver: int) -> tuple[int, int]:
        """Become the partition's writer (see `commit.claim`); (ver, epoch)."""
        return await claim(self.redis, f"partition {self.partition}", self.keys.meta, expected_ver)

    async def member_count(self, segment_id: str) -> int:
        return await index.member_count(self.redis, self.keys, segment_id)

    async def members(self, segment_id: str) -> set[str]:
        found: set[str] = set()
        async for ids in index.member_pages(self.redis, self.keys, segment_id, 4096):
            found.update(ids)
        return found


def decode_stored(customer_id: str, value: bytes, where: str) -> Profile:
    """A profile key's value (`state.ordinals.stored_value`) as a `Profile` with its ordinal."""
    ordinal, blob = split_stored(value, where)
    profile = Profile.decode(customer_id, blob)
    profile.ordinal = ordinal
    return profile
