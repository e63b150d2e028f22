"""The loop fetcher against the real broker: where it starts reading at every assignment and
after a rebalance, and what it drops across one. faust's app is stood in for by its consumer's
surface (flow, assignment, the thread hop), backed by a real group consumer of a unique group."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.engine.loop_fetcher import LINGER_MIN_BYTES, LoopFetcher, start_offset

PARTITIONS = 3
RECORDS = 10  # offsets 0-9 on every partition


class GroupConsumer:
    """faust's consumer as the fetcher sees it, with a real group consumer (same loop)."""

    def __init__(self, group: AIOKafkaConsumer, assigned: set[TopicPartition]) -> None:
        self.group = group
        self.assigned = assigned
        self.flow_active = True
        self.flow_stops = 0
        self._thread = self

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        return self.group

    async def call_thread(self, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        return await fn()

    def rebalance(self) -> None:
        """A rebalance begins (the flow stops)."""
        self.flow_stops += 1
        self.flow_active = False


class World:
    def __init__(
        self,
        topic: str,
        fetcher: LoopFetcher,
        consumer: GroupConsumer,
        producer: AIOKafkaProducer,
    ) -> None:
        self.topic = topic
        self.producer = producer
        self.fetcher = fetcher
        self.consumer = consumer
        self.applied: dict[int, int] = {}

    def tp(self, partition: int) -> TopicPartition:
        return TopicPartition(self.topic, partition)

    async def commit(self, offsets: dict[int, int]) -> None:
        await self.consumer.group.commit(
            {self.tp(p): OffsetAndMetadata(o, "") for p, o in offsets.items()}
        )

    async def first_offsets(self, timeout: float = 10.0) -> dict[int, int]:
        """The first offset fetched of every assigned partition (fetching until each came)."""
        wanted = sorted(self.fetcher.assigned())
        first: dict[int, int] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(first) < len(wanted) and loop.time() < deadline:
            found = await self.fetcher.fetch(wanted, 0.5, 100)
            for tp, records in found.items():
                first.setdefault(tp.partition, records[0].offset)
        return first


@pytest.fixture
async def world(kafka_bootstrap: str) -> AsyncIterator[World]:
    u = uuid.uuid4().hex[:10]
    topic = f"test-{u}.loop-fetcher"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    group = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=f"test-{u}", enable_auto_commit=False
    )
    await producer.start()
    await group.start()
    fetcher: LoopFetcher | None = None
    try:
        for partition in range(PARTITIONS):
            for offset in range(RECORDS):
                await producer.send(topic, f"{offset}".encode(), partition=partition)
        await producer.flush()
        tps = {TopicPartition(topic, p) for p in range(PARTITIONS)}
        group.assign(sorted(tps))  # commits and reads the group's offsets; never fetched here
        group.pause(*tps)
        consumer = GroupConsumer(group, set(tps))
        app = SimpleNamespace(
            consumer=consumer,
            conf=SimpleNamespace(
                broker_client_id="test",
                consumer_auto_offset_reset="earliest",
                consumer_max_fetch_size=1024**2,
                broker_check_crcs=True,
                broker_request_timeout=30.0,
            ),
        )
        applied: dict[int, int] = {}
        fetcher = LoopFetcher(app, topic, kafka_bootstrap, applied.get, fetch_max_wait_ms=50)
        w = World(topic, fetcher, consumer, producer)
        w.applied = applied
        yield w
    finally:
        if fetcher is not None:
            await fetcher.close()
        await group.stop()
        await producer.stop()
        admin.delete_topics([topic])
        admin.close()


async def test_reading_starts_at_the_committed_offset_or_after_the_applied_state(
    world: World,
) -> None:
    await world.commit({0: 4, 1: 2})  # partition 2: nothing committed (auto_offset_reset)
    world.applied.update({0: 1, 1: 6})  # 0: the state is behind Kafka's offset; 1: ahead
    assert await world.first_offsets() == {0: 4, 1: 7, 2: 0}


async def test_records_fetched_before_a_rebalance_are_dropped_and_read_again_from_the_commit(
    world: World,
) -> None:
    assert await world.first_offsets() == {0: 0, 1: 0, 2: 0}  # taken, not applied
    await world.commit({0: 3, 1: 5, 2: 8})  # what the state applied, committed by revoked()
    world.consumer.rebalance()
    tps = sorted(world.fetcher.assigned())
    assert await world.fetcher.fetch(tps, 0.2, 100) == {}  # no record while the flow stops
    world.consumer.flow_active = True  # the rebalance ended: the same partitions came back
    assert await world.first_offsets() == {0: 3, 1: 5, 2: 8}


async def test_records_that_came_while_a_rebalance_began_and_ended_are_dropped(
    world: World,
) -> None:
    consumer, fetcher = world.consumer, world.fetcher
    consumer.assigned = {world.tp(0)}
    assert await world.first_offsets() == {0: 0}  # all ten taken: the next fetch waits
    await world.commit({0: 6})

    async def short_rebalance_then_a_record() -> None:
        await asyncio.sleep(0.1)  # while the fetch below waits on the broker
        consumer.rebalance()
        consumer.flow_active = True  # before the reader looked
        await world.producer.send_and_wait(world.topic, b"10", partition=0)

    during = asyncio.ensure_future(short_rebalance_then_a_record())
    assert await fetcher.fetch([world.tp(0)], 5.0, 100) == {}  # offset 10: not after 9 now
    await during
    assert await world.first_offsets() == {0: 6}  # read again from the committed offset


async def test_a_new_assignment_is_read_from_its_committed_offsets(world: World) -> None:
    world.consumer.assigned = {world.tp(0)}
    assert await world.first_offsets() == {0: 0}
    await world.commit({0: 4, 1: 9})
    world.consumer.assigned = {world.tp(0), world.tp(1)}
    # every partition is placed afresh, the kept one too (its records read again from the
    # commit: the state skips what it applied)
    assert await world.first_offsets() == {0: 4, 1: 9}


def test_the_start_is_the_later_of_the_commit_and_the_applied_offset_plus_one() -> None:
    assert start_offset(None, None) is None  # the consumer's auto_offset_reset
    assert start_offset(5, None) == 5
    assert start_offset(None, 5) == 6
    assert start_offset(5, 3) == 5
    assert start_offset(5, 4) == 5
    assert start_offset(5, 9) == 10


async def test_fetches_linger_while_records_come_and_answer_at_the_first_record_when_idle(
    world: World, kafka_bootstrap: str
) -> None:
    fetcher = LoopFetcher(
        world.fetcher._app, world.topic, kafka_bootstrap, world.applied.get, 50, 1, linger_ms=10
    )
    try:
        tps = sorted(fetcher.assigned())

        def asked() -> tuple[int, int]:  # what the next fetch request asks the broker for
            assert fetcher._reader is not None
            inner = fetcher._reader._fetcher
            return inner._fetch_min_bytes, inner._fetch_max_wait_ms

        found = await fetcher.fetch(tps, 5.0, 100)
        assert found  # the ten records of a partition or more
        assert fetcher.lingering and asked() == (LINGER_MIN_BYTES, 10)
        taken = sum(len(records) for records in found.values())
        while taken < PARTITIONS * RECORDS:  # take the rest (each fetch found some: lingering)
            found = await fetcher.fetch(tps, 5.0, 100)
            assert found and fetcher.lingering
            taken += sum(len(records) for records in found.values())
        assert await fetcher.fetch(tps, 0.005, 100) == {}  # shorter than the linger: still on
        assert fetcher.lingering
        assert await fetcher.fetch(tps, 0.2, 100) == {}  # a whole linger and more: idle
        assert not fetcher.lingering and asked() == (1, 50)
        await world.producer.send_and_wait(world.topic, b"10", partition=1)
        found = await fetcher.fetch(tps, 5.0, 100)
        assert [r.offset for rs in found.values() for r in rs] == [10]
        assert fetcher.lingering and asked() == (LINGER_MIN_BYTES, 10)
    finally:
        await fetcher.close()


async def test_without_a_linger_the_fetches_keep_the_consumer_settings(world: World) -> None:
    fetcher = world.fetcher  # linger_ms=0
    assert await world.first_offsets() == {0: 0, 1: 0, 2: 0}
    assert not fetcher.lingering
    assert fetcher._reader is not None
    assert fetcher._reader._fetcher._fetch_min_bytes == 1
    assert fetcher._reader._fetcher._fetch_max_wait_ms == 50
