"""The outbox: messages committed with the state that produced them, published afterwards.

A shard (an events partition, or the registry) appends its records to a Redis list in the
same atomic commit as its state; they are sent to Kafka after the commit and removed from
the head of the list once Kafka acknowledged them. A crash in between leaves them there to
be published again by the next owner: at least once, and consumers drop repeats by `seq`
(membership changes) or `request_id` (replies).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes

__all__ = ["OutboxRecord", "read_outbox", "trim_outbox", "unpack_records"]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One message to publish, committed with the state that produced it."""

    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()

    def pack(self) -> bytes:
        return pack(
            [self.topic, self.key, self.value, self.partition, [list(h) for h in self.headers]]
        )


def unpack_records(blobs: Iterable[bytes]) -> list[OutboxRecord]:
    records = []
    for blob in blobs:
        topic, key, value, partition, headers = unpack(blob)
        records.append(OutboxRecord(topic, key, value, partition, tuple(map(tuple, headers))))
    return records


async def read_outbox(redis: Redis, key: str) -> list[OutboxRecord]:
    return unpack_records(as_bytes(r) for r in await redis.lrange(key, 0, -1))


_TRIM_IF_OWNER = """
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('LTRIM', KEYS[2], ARGV[2], -1)
  return 1
end
return 0
"""


async def trim_outbox(redis: Redis, key: str, meta_key: str, epoch: int, delivered: int) -> bool:
    """Forget the first `delivered` records once Kafka acknowledged them, if the shard's owner
    epoch (in `meta_key`) is still `epoch`: a writer that lost the shard must not trim records
    a newer owner committed (they would never be published)."""
    if not delivered:
        return True
    return bool(await redis.eval(_TRIM_IF_OWNER, 2, meta_key, key, epoch, delivered))
