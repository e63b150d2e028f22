"""The outbox: messages committed with the state that produced them, published afterwards.

A shard (an events partition, or the registry) appends one entry holding all the records of a
commit to a Redis list, in the same atomic commit as its state (one RPUSH of one blob, however
many membership changes the batch made); they are sent to Kafka after the commit and the entry
is removed from the head of the list once Kafka acknowledged all its records. A crash in
between leaves it there to be published again by the next owner: at least once, and consumers
drop repeats by `seq` (membership changes) or `request_id` (replies). An entry written by an
older version holds one record; both kinds are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes

__all__ = ["OutboxRecord", "pack_entry", "read_outbox", "trim_outbox", "unpack_records"]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One message to publish, committed with the state that produced it."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def fields(self) -> list[Any]:
        return [self.topic, self.key, self.value, self.partition, [list(h) for h in self.headers]]

    def pack(self) -> bytes:
        """One record alone (an entry of older versions, still read)."""
        return pack(self.fields())


def pack_entry(records: Iterable[OutboxRecord]) -> bytes:
    """The records of one commit as one outbox entry."""
    return pack([r.fields() for r in records])


def _record(fields: list[Any]) -> OutboxRecord:
    topic, key, value, partition, headers = fields
    return OutboxRecord(topic, key, value, partition, tuple(map(tuple, headers)))


def unpack_records(blobs: Iterable[bytes]) -> list[list[OutboxRecord]]:
    """Outbox entries, each the list of its records (an older entry: one record)."""
    entries = []
    for blob in blobs:
        value = unpack(blob)
        if value and isinstance(value[0], str):  # one record: [topic, key, value, ...]
            entries.append([_record(value)])
        else:
            entries.append([_record(fields) for fields in value])
    return entries


async def read_outbox(redis: Redis, key: str) -> list[list[OutboxRecord]]:
    """Every entry still in the outbox, oldest first."""
    return unpack_records(as_bytes(r) for r in await redis.lrange(key, 0, -1))


_TRIM_IF_OWNER = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('LTRIM', KEYS[2], ARGV[2], -1)
  return 1
end
return 0
"""


async def trim_outbox(redis: Redis, key: str, meta_key: str, epoch: int, delivered: int) -> bool:
    """Forget the first `delivered` entries once Kafka acknowledged them, if the shard's owner
    epoch (in `meta_key`) is still `epoch`: a writer that lost the shard must not trim records
    a newer owner committed (they would never be published)."""
    if not delivered:
        return True
    return bool(await redis.eval(_TRIM_IF_OWNER, 2, meta_key, key, epoch, delivered))
