"""Kafka destination against the real broker: a snapshot per run on a uuid topic."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.exports import ExportContext, parse_export, run_export_segment

from .fixtures import put_customers


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A uuid-named destination topic of this test's own, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}.export"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        yield name
    finally:
        try:
            await admin.delete_topics([name])
        finally:
            await admin.close()


async def _read(bootstrap: str, topic: str, ends: int) -> list[tuple[bytes, dict[str, Any]]]:
    """Every message until `ends` end markers were seen (key, decoded value)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[tuple[bytes, dict[str, Any]]] = []
    try:
        async with asyncio.timeout(30):
            while sum(1 for _, v in found if v["type"] == "end") < ends:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    found += [(r.key, msgpack.unpackb(r.value)) for r in records]
    finally:
        await consumer.stop()
    return found


async def test_a_run_publishes_begin_every_member_and_end(
    ctx: ExportContext, kafka_bootstrap: str, topic: str
) -> None:
    customers = {f"c{i:03d}": {"tier": "gold" if i % 2 else "silver", "n": i} for i in range(40)}
    members = {c: int(c[1:]) % 4 == 0 for c in customers}  # 10 members, 30 not
    await put_customers(ctx.redis, ctx.keyspace, customers, members)
    export = parse_export(
        {
            "id": "to-kafka",
            "name": "To Kafka",
            "segments": ["seg"],
            "attributes": ["tier"],
            "destination": {"type": "kafka", "topic": topic},
        }
    )
    result = await run_export_segment(ctx, export, "seg", "run-1")
    assert (result.status, result.count, result.errors) == ("Successful", 10, ())

    messages = await _read(kafka_bootstrap, topic, ends=1)
    begins = [(k, v) for k, v in messages if v["type"] == "begin"]
    ends = [(k, v) for k, v in messages if v["type"] == "end"]
    rows = [(k, v) for k, v in messages if v["type"] == "member"]
    assert [k for k, _ in begins] == [b"seg"] and [k for k, _ in ends] == [b"seg"]
    begin, end = begins[0][1], ends[0][1]
    assert {k: begin[k] for k in ("run_id", "export_id", "segment_id")} == {
        "run_id": "run-1",
        "export_id": "to-kafka",
        "segment_id": "seg",
    }
    assert isinstance(begin["at"], int)
    assert end == {"type": "end", "run_id": "run-1", "count": 10}
    expected = {c for c, m in members.items() if m}
    assert sorted(v["customer_id"] for _, v in rows) == sorted(expected)
    for key, value in rows:
        assert key == value["customer_id"].encode()
        assert value["run_id"] == "run-1"
        assert value["attributes"] == {"tier": customers[value["customer_id"]]["tier"]}


async def test_attributes_none_sends_every_attribute(
    ctx: ExportContext, kafka_bootstrap: str, topic: str
) -> None:
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1, "y": "z"}, "b": {}})
    export = parse_export(
        {
            "id": "k",
            "name": "K",
            "segments": ["seg"],
            "destination": {"type": "kafka", "topic": topic},
        }
    )
    assert (await run_export_segment(ctx, export, "seg", "r")).count == 2
    rows = {
        v["customer_id"]: v["attributes"]
        for _, v in await _read(kafka_bootstrap, topic, 1)
        if v["type"] == "member"
    }
    assert rows == {"a": {"x": 1, "y": "z"}, "b": {}}
