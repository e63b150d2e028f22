"""The raw ceiling: a bare consumer that only fetches and msgpack-decodes a range of a topic."""

from __future__ import annotations

import asyncio
import time

import msgpack
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, TopicPartition

__all__ = ["RawResult", "aiokafka_ceiling", "kafka_python_ceiling"]

RawResult = tuple[int, float]
"""(messages, seconds)."""


def kafka_python_ceiling(
    bootstrap: list[str], topic: str, start: dict[int, int], end: dict[int, int]
) -> RawResult:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_poll_records=5000,
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        tps = [TopicPartition(topic, p) for p in start if end[p] > start[p]]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        want = sum(end[tp.partition] - start[tp.partition] for tp in tps)
        consumer.beginning_offsets(tps)  # connect to the leader before the clock starts
        count = 0
        unpack = msgpack.unpackb
        started = time.perf_counter()
        while count < want:
            for tp, records in consumer.poll(timeout_ms=1000).items():
                limit = end[tp.partition]
                for record in records:
                    if record.offset < limit:
                        unpack(record.value, raw=False)
                        count += 1
        return count, time.perf_counter() - started
    finally:
        consumer.close()


async def _aiokafka(
    bootstrap: list[str], topic: str, start: dict[int, int], end: dict[int, int]
) -> RawResult:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_bytes=50 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [AioTopicPartition(topic, p) for p in start if end[p] > start[p]]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        want = sum(end[tp.partition] - start[tp.partition] for tp in tps)
        await consumer.beginning_offsets(tps)  # connect to the leader before the clock starts
        count = 0
        unpack = msgpack.unpackb
        started = time.perf_counter()
        while count < want:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, records in batches.items():
                limit = end[tp.partition]
                for record in records:
                    if record.offset < limit:
                        unpack(record.value, raw=False)
                        count += 1
        return count, time.perf_counter() - started
    finally:
        await consumer.stop()


def aiokafka_ceiling(
    bootstrap: list[str], topic: str, start: dict[int, int], end: dict[int, int]
) -> RawResult:
    return asyncio.run(_aiokafka(bootstrap, topic, start, end))
