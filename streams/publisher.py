"""Publishes outbox records to Kafka through the Faust app's producer (acks=all).

For the data plane (`drop_undeliverable=True`), a record Kafka can never accept (larger than
the producer's request limit, an invalid topic) is dropped: logged with its topic and size and
counted in `livesegments_outbox_dropped_total`, so one odd membership change or dead letter
cannot hold a partition back forever. Every other producer failure (the broker is down or
moving a leader) is raised, and the caller retries.

The control plane's records (task messages, replies) are small and written by livesegments
itself, and a job cannot finish without them: one that Kafka refuses says the topic is
misconfigured, which an operator must fix like an unreachable service. So that publisher
(`drop_undeliverable=False`) raises it too; the caller retries and `/health` shows the stall.

Batches: `send` hands a commit's records to the producer's batches in order without waiting for
Kafka (the producer lingers `LS_PRODUCER_LINGER_MS` to fill its batches), and `settle` waits for
their acknowledgements. Records go straight into aiokafka's accumulator (aiokafka is pinned) with
their partition from a per-key cache of the producer's partitioner (murmur2 in pure Python costs
~15 µs a record); a record larger than the request limit takes aiokafka's public `send`, which
refuses it by itself. A record that fits its partition's open batch is appended to that batch's
builder and given the batch's own future (what aiokafka settles the batch with, or fails it
with, at the moment it settles every record's): no coroutine, future and metadata of its own
(about 8.5 -> 1.3-2.7 µs a record, sent and settled, in an offline micro-benchmark); a record
that opens a batch, or finds it full, takes `add_message`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition

from state import OutboxRecord

from . import metrics
from .failures import cause_name, is_undeliverable

__all__ = ["BareProducerApp", "Publisher"]

log = logging.getLogger(__name__)

_PARTITION_CACHE_MAX = 262_144
"""Keys whose partition is remembered per topic (then the cache starts over)."""
_SIZE_MARGIN = 4096
"""A record without headers whose key and value are this much under the producer's request
limit fits whatever the batch's and the record's own framing add (under 100 bytes): its size
is not estimated."""
_NO_HEADERS: list[tuple[str, bytes]] = []
"""The headers of a record without any (read, never changed, by aiokafka's builders)."""


def _drop(record: OutboxRecord, exc: BaseException) -> None:
    log.error(
        "dropping an outbox record Kafka cannot accept: topic %s, key %d bytes, value %d bytes: "
        "%s: %s",
        record.topic,
        len(record.key or b""),
        len(record.value),
        type(exc).__name__,
        exc,
    )
    metrics.OUTBOX_DROPPED.labels(record.topic, cause_name(exc)).inc()


def _done() -> asyncio.Future[Any]:
    future = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class Publisher:
    def __init__(self, app: Any, *, drop_undeliverable: bool) -> None:
        self._app = app
        self._drop_undeliverable = drop_undeliverable
        self._partitions: dict[tuple[str, int], dict[bytes, int]] = {}
        """(topic, partition count) -> key -> partition, as the producer's partitioner chose."""
        self._topic_partitions: dict[tuple[str, int], TopicPartition] = {}
        """The accumulator's batch keys, made once (a few dozen per worker)."""

    def _droppable(self, exc: BaseException) -> bool:
        return self._drop_undeliverable and is_undeliverable(exc)

    def _kafka(self) -> Any:
        """The aiokafka producer under faust's (None: use faust's `send` record by record)."""
        kafka = getattr(self._app.producer, "_producer", None)
        if kafka is None or getattr(kafka, "_message_accumulator", None) is None:
            return None
        return kafka

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer in order; returns their delivery futures."""
        kafka = self._kafka()
        if kafka is None:
            return [await self._send_one(record) for record in records]
        accumulator = kafka._message_accumulator
        timeout = kafka._request_timeout_ms / 1000
        limit = kafka._max_request_size
        surely_fits = limit - _SIZE_MARGIN
        batches = accumulator._batches
        partitions = self._topic_partitions
        futures = []
        known: dict[str, tuple[dict[bytes, int] | None, int]] = {}
        for record in records:
            topic, key, value = record.topic, record.key, record.value
            headers = list(record.headers) if record.headers else _NO_HEADERS
            cached = known.get(topic)
            if cached is None:
                try:
                    cached = known[topic] = await self._topic(kafka, topic)
                except Exception as exc:
                    if not self._droppable(exc):
                        raise
                    _drop(record, exc)
                    futures.append(_done())
                    continue
            cache, count = cached
            if headers or len(value) + (len(key) if key is not None else 0) > surely_fits:
                size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
            else:
                size = 0
            if size > limit or cache is None:
                futures.append(await self._send_one(record))
                continue
            partition = record.partition
            if partition is None:
                partition = cache.get(key) if key is not None else None
                if partition is None:
                    partition = kafka._partition(topic, None, None, None, key, value)
                    if key is not None:
                        if len(cache) >= _PARTITION_CACHE_MAX:
                            cache.clear()
                        cache[key] = partition
            elif not 0 <= partition < count:
                futures.append(await self._send_one(record))  # aiokafka says what is wrong
                continue
            tp = partitions.get((topic, partition))
            if tp is None:
                tp = partitions[(topic, partition)] = TopicPartition(topic, partition)
            pending = batches.get(tp)
            if pending and not accumulator._closed and accumulator._exception is None:
                # `add_message`'s first step without its coroutine, appended to the open batch
                # without a future of its own: the batch's future settles with (or fails
                # with) every record in it
                batch = pending[-1]
                added = batch._builder.append(timestamp=None, key=key, value=value, headers=headers)
                if added is not None:
                    futures.append(batch.future)
                    continue
            futures.append(await accumulator.add_message(tp, key, value, timeout, headers=headers))
        return futures

    async def _topic(self, kafka: Any, topic: str) -> tuple[dict[bytes, int] | None, int]:
        """The key -> partition cache of `topic` and its partition count (waits for metadata).

        None for the cache when the producer has a custom partitioner or serializers."""
        await kafka.client._wait_on_metadata(topic)
        count = len(kafka._metadata.partitions_for_topic(topic))
        if kafka._key_serializer is not None or kafka._value_serializer is not None:
            return None, count
        cache = self._partitions.setdefault((topic, count), {})
        return cache, count

    async def _send_one(self, record: OutboxRecord) -> asyncio.Future[Any]:
        """Through faust's producer `send`: a record Kafka refuses up front may be dropped."""
        try:
            return await self._app.producer.send(  # type: ignore[no-any-return]
                record.topic,
                record.key,
                record.value,
                record.partition,
                None,
                list(record.headers) or None,
            )
        except Exception as exc:
            if not self._droppable(exc):
                raise
            _drop(record, exc)
            return _done()

    async def settle(
        self, records: Sequence[OutboxRecord], futures: Sequence[asyncio.Future[Any]]
    ) -> None:
        """Wait for every delivery; drop what can never be delivered, raise anything else."""
        retry: BaseException | None = None
        for record, future in zip(records, futures, strict=True):
            try:
                await future  # the producer resolves a whole batch's futures at once
            except Exception as exc:
                if self._droppable(exc):
                    _drop(record, exc)
                elif retry is None:
                    retry = exc
        if retry is not None:
            raise retry

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Send and wait until Kafka acknowledged (or refused for good) every record."""
        futures = await self.send(records)
        if futures:
            await self.settle(records, futures)


class BareProducerApp:
    """What `Publisher` uses of a faust app (`.producer._producer` and faust's `send`), over a
    bare `AIOKafkaProducer`: for the benchmark's I/O floor and the publisher's tests."""

    def __init__(self, producer: Any) -> None:
        self.producer = self
        self._producer = producer

    async def send(
        self, topic: str, key: Any, value: Any, partition: Any, timestamp: Any, headers: Any
    ) -> Any:
        return await self._producer.send(
            topic, value, key=key, partition=partition, headers=headers
        )
