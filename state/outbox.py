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

from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgpack
from redis.asyncio import Redis

from ._codec import bin_header, msgpack_header, pack, unpack
from ._redis import as_bytes
from .scripts import Script

__all__ = ["OutboxRecord", "pack_entry", "read_outbox", "trim_outbox", "unpack_records"]


class OutboxRecord:
    """One message to publish, committed with the state that produced it.

    An immutable value (the frozen-dataclass contract: attributes read only, `==`, `hash`,
    `repr`), written as a plain class with `Final` attributes because the engine makes one per
    membership change: the compiled build makes it a native class whose attributes cannot be
    set (~0.07 µs to build, where a frozen dataclass's generated `__init__` takes ~2.6 µs).
    """

    __slots__ = ("headers", "key", "partition", "topic", "value")

    def __init__(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: tuple[tuple[str, bytes], ...] = (),
    ) -> None:
        self.topic: Final = topic
        self.key: Final = key
        self.value: Final = value
        self.partition: Final = partition
        self.headers: Final = headers

    def _astuple(self) -> tuple[object, ...]:
        return (self.topic, self.key, self.value, self.partition, self.headers)

    def __reduce__(self) -> tuple[type[OutboxRecord], tuple[object, ...]]:
        """Pickled and copied by its fields, as the dataclass was (a native class has no
        argument-free constructor for the default protocol)."""
        return (OutboxRecord, self._astuple())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutboxRecord):
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        return (
            f"OutboxRecord(topic={self.topic!r}, key={self.key!r}, value={self.value!r}, "
            f"partition={self.partition!r}, headers={self.headers!r})"
        )

    def fields(self) -> list[Any]:
        return [self.topic, self.key, self.value, self.partition, [list(h) for h in self.headers]]

    def pack(self) -> bytes:
        """One record alone (an entry of older versions, still read)."""
        return pack(self.fields())


_PACK = msgpack.Packer(use_bin_type=True).pack
"""One packer for the process (`packb` builds one per call); the event loop is one thread."""
_TOPICS: dict[str, bytes] = {}
"""Topic -> a plain record's array header and packed name (a handful per worker)."""
_MAX_TOPICS = 1024
_BIN8: list[bytes] = [bytes((0xC4, size)) for size in range(0x100)]
"""The bin 8 header of each size below 256 (`bin_header` without building it)."""


def pack_entry(records: Sequence[OutboxRecord]) -> bytes:
    """The records of one commit as one outbox entry: the bytes of
    `pack([r.fields() for r in records])`, joined from each record's parts without building
    its list (one per membership change: `tests/state/test_outbox.py` compares both)."""
    parts: list[bytes] = [msgpack_header(len(records), 0x90, 0xDC)]
    topics = _TOPICS
    bin8 = _BIN8
    for record in records:
        headers = record.headers
        partition = record.partition
        if headers or partition is not None:  # tasks and their headers: rare
            parts.append(_PACK(record.fields()))
            continue
        head = topics.get(record.topic)
        if head is None:
            head = b"\x95" + _PACK(record.topic)
            if len(topics) < _MAX_TOPICS:
                topics[record.topic] = head
        parts.append(head)
        key = record.key
        if key is None:
            parts.append(b"\xc0")
        else:  # each part on its own: one copy, by the join
            size = len(key)
            parts.append(bin8[size] if size < 0x100 else bin_header(size))
            parts.append(key)
        value = record.value
        size = len(value)
        parts.append(bin8[size] if size < 0x100 else bin_header(size))
        parts.append(value)
        parts.append(b"\xc0\x90")  # no partition, no headers
    return b"".join(parts)


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


_TRIM_IF_OWNER = Script("""
if redis.call('HGET', KEYS[1], 'epoch') == ARGV[1] then
  redis.call('LTRIM', KEYS[2], ARGV[2], -1)
  return 1
end
return 0
""")


async def trim_outbox(redis: Redis, key: str, meta_key: str, epoch: int, delivered: int) -> bool:
    """Forget the first `delivered` entries once Kafka acknowledged them, if the shard's owner
    epoch (in `meta_key`) is still `epoch`: a writer that lost the shard must not trim records
    a newer owner committed (they would never be published)."""
    if not delivered:
        return True
    return bool(await _TRIM_IF_OWNER(redis, 2, meta_key, key, epoch, delivered))
