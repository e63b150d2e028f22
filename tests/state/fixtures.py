"""State fixtures: a Redis key prefix of its own per test, removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from state import KeySpace, PartitionBatch, PartitionStore, Profile
from state.connect import connect


@pytest.fixture
def keyspace() -> KeySpace:
    return KeySpace(f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def aredis(redis_url: str, keyspace: KeySpace) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    yield client
    await drop_keyspace(client, keyspace)
    await client.aclose()


async def drop_keyspace(client: Redis, keyspace: KeySpace) -> None:
    """Remove every key of `keyspace`.

    SCAN walks the whole database whatever the pattern: its default of 10 keys a call took
    over 300 s on a shared Redis holding a benchmark's ~250k keys, so it asks for 2,000."""
    keys = [k async for k in client.scan_iter(match=f"{{{keyspace.prefix}:*", count=2000)]
    if keys:
        await client.unlink(*keys)


async def put_customers(
    redis: Redis,
    keyspace: KeySpace,
    partition: int,
    customers: dict[str, tuple[dict[str, object], list[str]]],
) -> list[Profile]:
    """Store customers (id -> attributes, segments they are members of) on one partition as
    the worker does: one committed batch."""
    store = PartitionStore(redis, keyspace, partition)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    profiles = []
    for customer_id, (attrs, segments) in customers.items():
        profile = Profile(customer_id, dict(attrs), segments=set(segments))
        batch.profiles[customer_id] = profile
        batch.new_customers.append(customer_id)
        for segment_id in segments:
            batch.set_member(segment_id, customer_id, True)
        profiles.append(profile)
    await store.commit(meta.ver, batch)
    return profiles
