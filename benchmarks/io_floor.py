"""The I/O floor: the worker's Kafka and Redis traffic for the workload, with no rule work.

A bare batch consumer in its own consumer group (subscribed, assigned and committing like the
worker's) reads the measured range of the events topic with `getmany`, and for each
partition's batch does what the worker's I/O does for it:

- reads the profiles it does not hold with one MGET (the run's real profile keys, through an
  LRU of the worker's `LS_PROFILE_CACHE_SIZE` per partition);
- commits with the worker's fenced Lua script (`state.commit.fenced_commit`), on a key prefix
  of its own: the profile as read plus the batch's event bytes of each touched customer, in
  MSETs as the worker writes profiles (profiles grow by their events), the member bit of
  each output record's customer (one `BITFIELD` over the ordinals read from the profiles'
  headers, as the worker sets member bits: `state.ordinals`), the outbox entry and the offset;
- produces `changes_per_event` (measured end to end) output records per event, of the size
  of a membership change, through the worker's `Publisher` (acks=all, the same linger), and
  trims the outbox entry once Kafka acknowledged it.

No event is decoded, no rule evaluated, no profile changed. Its events/s is what the worker
could reach if the engine cost nothing.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka import TopicPartition as AioTopicPartition
from redis.asyncio import Redis

from state import KeySpace, OutboxRecord
from state.commit import Writes, fenced_commit
from state.ordinals import MAGIC, bitfield_args
from state.outbox import pack_entry
from streams.messages import MembershipChange
from streams.publisher import BareProducerApp, Publisher
from streams.settings import Settings

__all__ = ["IoFloor", "io_floor"]


@dataclass(frozen=True)
class IoFloor:
    events: int
    seconds: float
    per_s: float
    outputs: int
    commits: int
    profile_reads: int
    commit_bytes: int


def _ordinal(blob: bytes, customer: bytes) -> int:
    """The ordinal in a stored profile's header (`state.ordinals.stored_value`); a customer
    without a stored profile gets a stand-in from its id."""
    if blob[:1] == MAGIC and len(blob) >= 5:
        return int.from_bytes(blob[1:5], "big")
    return zlib.crc32(customer) & 0xFFFFF


def _own_prefix(settings: Settings) -> str:
    """The floor's keys: beside the run's, deleted when the floor ends."""
    return f"{settings.key_prefix}-floor"


class _Seek(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AIOKafkaConsumer, start: dict[int, int]) -> None:
        self.consumer = consumer
        self.start = start

    async def on_partitions_revoked(self, revoked: Any) -> None:
        pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        for tp in assigned:
            self.consumer.seek(tp, self.start[tp.partition])


class _Partition:
    def __init__(self, floor: _Floor, partition: int) -> None:
        self.floor = floor
        self.real = floor.real.partition(partition)
        self.keys = floor.own.partition(partition)
        self.shard = f"floor partition {partition}"
        self.ver = 0
        self.cache: OrderedDict[bytes, bytes] = OrderedDict()
        self.owed = 0.0
        self.next_offset = 0
        self.acked = 0
        self.confirming: asyncio.Future[None] | None = None

    async def apply(self, records: list[Any]) -> None:
        floor = self.floor
        grown: dict[bytes, list[bytes]] = {}
        for record in records:
            grown.setdefault(record.key, []).append(record.value)
        cache = self.cache
        missing = [c for c in grown if c not in cache]
        if missing:
            blobs = await floor.redis.mget([self.real.profile(c.decode()) for c in missing])
            floor.profile_reads += len(missing)
            for customer, blob in zip(missing, blobs, strict=True):
                cache[customer] = blob if isinstance(blob, bytes) else b""
        writes = Writes(self.keys.meta)
        ordinals: dict[bytes, int] = {}
        stored = []
        for customer, values in grown.items():
            ordinals[customer] = _ordinal(cache[customer], customer)
            blob = cache[customer] + b"".join(values)
            cache[customer] = blob
            cache.move_to_end(customer)
            stored.append((self.keys.profile(customer.decode()), blob))
        writes.set_many(stored)  # as the worker writes profiles (`PartitionBatch.writes`)
        while len(cache) > floor.settings.profile_cache_size:
            cache.popitem(last=False)
        self.owed += len(records) * floor.changes_per_event
        count = int(self.owed)
        self.owed -= count
        customers = list(grown)
        outbox = [
            OutboxRecord(floor.output_topic, customers[n % len(customers)], floor.change)
            for n in range(count)
        ]
        if outbox:
            bits = bitfield_args(
                (ordinals[customers[n % len(customers)]], True) for n in range(count)
            )
            writes.add_many("BITFIELD", self.keys.members("floor"), bits, 4)
            writes.add("RPUSH", self.keys.outbox, pack_entry(outbox))
        if self.acked:
            writes.add("LTRIM", self.keys.outbox, self.acked, -1)
            self.acked = 0
        writes.add("HSET", self.keys.meta, "offset", records[-1].offset)
        self.next_offset = records[-1].offset + 1
        floor.commit_bytes += sum(len(a) for op in writes.ops for a in op if isinstance(a, bytes))
        self.ver = await fenced_commit(floor.redis, self.shard, self.ver, writes)
        floor.commits += 1
        if outbox:
            futures = await floor.publisher.send(outbox)
            self.confirming = asyncio.ensure_future(self._confirm(outbox, futures, self.confirming))
        floor.outputs += count

    async def _confirm(
        self,
        outbox: list[OutboxRecord],
        futures: list[Any],
        previous: asyncio.Future[None] | None,
    ) -> None:
        if previous is not None:
            await previous
        await self.floor.publisher.settle(outbox, futures)
        self.acked += 1


class _Floor:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        publisher: Publisher,
        changes_per_event: float,
        output_topic: str,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.publisher = publisher
        self.changes_per_event = changes_per_event
        self.output_topic = output_topic
        self.real = KeySpace(settings.key_prefix)
        self.own = KeySpace(_own_prefix(settings))
        self.change = MembershipChange("bench-001", "c0000001", True, 0, "event", 1).encode()
        self.outputs = self.commits = self.profile_reads = self.commit_bytes = 0


async def _run(
    settings: Settings,
    start: dict[int, int],
    end: dict[int, int],
    changes_per_event: float,
    output_topic: str,
) -> IoFloor:
    bootstrap = settings.kafka_bootstrap.split(",")
    consumer = AIOKafkaConsumer(
        group_id=f"{settings.app_id}-iofloor",
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=settings.producer_linger_ms
    )
    redis = Redis.from_url(settings.redis_url)
    await producer.start()
    await consumer.start()
    try:
        publisher = Publisher(BareProducerApp(producer), drop_undeliverable=True)
        floor = _Floor(settings, redis, publisher, changes_per_event, output_topic)
        consumer.subscribe([settings.events_topic], listener=_Seek(consumer, start))
        parts: dict[int, _Partition] = {}
        want = sum(end[p] - start[p] for p in end)
        done = 0
        t_first = 0.0
        last_commit = time.monotonic()
        while done < want:
            batches = await consumer.getmany(timeout_ms=500, max_records=settings.batch_size)
            work = []
            for tp, records in batches.items():
                records = [r for r in records if r.offset < end[tp.partition]]
                if records:
                    part = parts.get(tp.partition) or parts.setdefault(
                        tp.partition, _Partition(floor, tp.partition)
                    )
                    work.append(part.apply(records))
                    done += len(records)
            if work:
                if not t_first:
                    t_first = time.perf_counter()
                await asyncio.gather(*work)
            if time.monotonic() - last_commit >= 1.0:
                offsets = {
                    AioTopicPartition(settings.events_topic, p): part.next_offset
                    for p, part in parts.items()
                }
                await consumer.commit(offsets)
                last_commit = time.monotonic()
        for part in parts.values():
            if part.confirming is not None:
                await part.confirming
        seconds = time.perf_counter() - t_first
        return IoFloor(
            done,
            seconds,
            done / seconds if seconds > 0 else 0.0,
            floor.outputs,
            floor.commits,
            floor.profile_reads,
            floor.commit_bytes,
        )
    finally:
        await consumer.stop()
        await producer.stop()
        own = [k async for k in redis.scan_iter(match=f"{{{_own_prefix(settings)}:*", count=2000)]
        for start_at in range(0, len(own), 1000):
            await redis.unlink(*own[start_at : start_at + 1000])
        await redis.aclose()


def io_floor(
    settings: Settings,
    start: dict[int, int],
    end: dict[int, int],
    changes_per_event: float,
    output_topic: str,
) -> IoFloor:
    """Run the floor over the events between `start` and `end` (exclusive offsets)."""
    return asyncio.run(_run(settings, start, end, changes_per_event, output_topic))
