"""An outbox record Kafka can never accept is dropped (logged, counted), not retried forever;
the records around it are delivered (real broker, a producer with a small request limit)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.errors import MessageSizeTooLargeError
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from state import OutboxRecord
from streams import metrics
from streams.publisher import BareProducerApp, Publisher


def _dropped(topic: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "livesegments_outbox_dropped_total",
        {"topic": topic, "cause": "MessageSizeTooLargeError"},
    )
    return value or 0.0


async def _publish(kafka_bootstrap: str, records: list[OutboxRecord], **options: Any) -> None:
    """Publish `records` through a `Publisher` over a producer made with `options`."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", **options)
    await producer.start()
    try:
        publisher = Publisher(BareProducerApp(producer), drop_undeliverable=True)
        await asyncio.wait_for(publisher.publish(records), 60)
    finally:
        await producer.stop()


async def _consume(kafka_bootstrap: str, topic: str, count: int) -> list[ConsumerRecord[Any, Any]]:
    """The first `count` records of `topic` (fewer if they do not come within 30 s)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + 30
        while len(seen) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for messages in batches.values():
                seen.extend(messages)
    finally:
        await consumer.stop()
    return seen


def test_a_record_larger_than_the_request_limit_is_dropped_and_counted(
    kafka_bootstrap: str,
) -> None:
    topic = f"test-{uuid.uuid4().hex[:10]}.publisher"

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, max_request_size=4096, acks="all"
        )
        await producer.start()
        try:
            publisher = Publisher(BareProducerApp(producer), drop_undeliverable=True)
            records = [
                OutboxRecord(topic, b"k1", b"small-1"),
                OutboxRecord(topic, b"k2", b"x" * 10_000),
                OutboxRecord(topic, b"k3", b"small-2"),
            ]
            await asyncio.wait_for(publisher.publish(records), 60)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=10_000, max_records=10)
        finally:
            await consumer.stop()
        return [m.value for ms in batches.values() for m in ms if m.value is not None]

    before = _dropped(topic)
    try:
        values = asyncio.run(run())
    finally:
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
        try:
            if topic in admin.list_topics():
                admin.delete_topics([topic])
        finally:
            admin.close()
    assert _dropped(topic) == before + 1
    assert values == [b"small-1", b"small-2"]


def test_the_control_planes_publisher_raises_what_it_cannot_deliver(kafka_bootstrap: str) -> None:
    """Task messages and replies are never dropped: a job cannot finish without them."""
    topic = f"test-{uuid.uuid4().hex[:10]}.publisher"

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, max_request_size=4096, acks="all"
        )
        await producer.start()
        try:
            publisher = Publisher(BareProducerApp(producer), drop_undeliverable=False)
            await asyncio.wait_for(
                publisher.publish([OutboxRecord(topic, b"k", b"x" * 10_000)]), 60
            )
        finally:
            await producer.stop()

    before = _dropped(topic)
    with pytest.raises(MessageSizeTooLargeError):
        asyncio.run(run())
    assert _dropped(topic) == before


def test_records_go_to_the_partitioners_partition_in_commit_order(kafka_bootstrap: str) -> None:
    """The accumulator path (partition cache, no per-record `send`) keeps aiokafka's choice of
    partition for each key and the order of the records of each key."""
    topic = f"test-{uuid.uuid4().hex[:10]}.publisher"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(topic, 4, 1)])
    keys = [f"c{n}".encode() for n in range(40)]

    async def run() -> tuple[dict[bytes, int], dict[bytes, list[tuple[int, bytes]]]]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            await producer.client._wait_on_metadata(topic)
            expected = {k: producer._partition(topic, None, None, None, k, b"") for k in keys}
            publisher = Publisher(BareProducerApp(producer), drop_undeliverable=True)
            for commit in range(3):  # the second and third commits hit the cache
                records = [OutboxRecord(topic, k, f"{commit}".encode()) for k in keys]
                await asyncio.wait_for(publisher.publish(records), 60)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        seen: dict[bytes, list[tuple[int, bytes]]] = {}
        try:
            deadline = time.monotonic() + 30
            while sum(map(len, seen.values())) < 3 * len(keys) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=1000)
                for tp, messages in batches.items():
                    for m in messages:
                        assert m.key is not None and m.value is not None
                        seen.setdefault(m.key, []).append((tp.partition, m.value))
        finally:
            await consumer.stop()
        return expected, seen

    try:
        expected, seen = asyncio.run(run())
    finally:
        admin.delete_topics([topic])
        admin.close()
    assert len(set(expected.values())) > 1  # the keys spread over partitions
    for key in keys:
        assert seen[key] == [(expected[key], b"0"), (expected[key], b"1"), (expected[key], b"2")]


def test_a_commit_larger_than_a_batch_arrives_whole_and_in_order(kafka_bootstrap: str) -> None:
    """Records are appended to the partition's open batch directly; when it is full they take
    `add_message`, which waits for the batch to drain: every record arrives, in order, a record
    with headers among them keeps its headers."""
    topic = f"test-{uuid.uuid4().hex[:10]}.publisher"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(topic, 1, 1)])
    headers = (("livesegments-task", b"t1"),)
    records = [
        OutboxRecord(topic, b"k", f"{n:03d}".encode() * 30, headers=headers if n == 25 else ())
        for n in range(60)
    ]

    async def run() -> list[tuple[bytes, list[tuple[str, bytes]]]]:
        await _publish(kafka_bootstrap, records, linger_ms=5, max_batch_size=1024)
        seen = await _consume(kafka_bootstrap, topic, len(records))
        return [(m.value, list(m.headers)) for m in seen]

    try:
        seen = asyncio.run(run())
    finally:
        admin.delete_topics([topic])
        admin.close()
    assert seen == [(r.value, list(r.headers)) for r in records]


def test_a_batch_the_broker_refuses_fails_every_record_in_it(kafka_bootstrap: str) -> None:
    """Records appended to an open batch share its future: when the broker refuses the batch
    (larger than the topic's `max.message.bytes`), each of its records is dropped and counted,
    as each record's own future did."""
    topic = f"test-{uuid.uuid4().hex[:10]}.publisher"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "1024"})])
    records = [OutboxRecord(topic, b"k", b"x" * 400) for _ in range(5)]

    before = _dropped(topic)
    try:
        asyncio.run(_publish(kafka_bootstrap, records, linger_ms=50))
    finally:
        admin.delete_topics([topic])
        admin.close()
    assert _dropped(topic) == before + len(records)
