"""State fixtures: a Redis key prefix of its own per test, removed afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from state import KeySpace
from state.connect import connect


@pytest.fixture
def keyspace() -> KeySpace:
    return KeySpace(f"test-{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def aredis(redis_url: str, keyspace: KeySpace) -> AsyncIterator[Redis]:
    client = connect(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{{{keyspace.prefix}:*")]
    if keys:
        await client.unlink(*keys)
    await client.aclose()
