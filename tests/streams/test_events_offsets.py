"""The events are read in batches outside faust's streams: the group's committed offsets in
Kafka follow what the state applied (never ahead of it) and catch up with it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from streams.engine.group_offsets import GroupOffsets

from .fixtures import Harness, unique_env

PARTITIONS = 2


@pytest.fixture
def own_harness(kafka_bootstrap: str, redis_url: str) -> Iterator[Harness]:
    env = unique_env(kafka_bootstrap, redis_url, LS_EVENTS_PARTITIONS=str(PARTITIONS))
    h = Harness(env, "events_offsets")
    try:
        h.start()
        yield h
    finally:
        h.close()


def _committed(h: Harness) -> dict[int, int | None]:
    s = h.settings

    async def read() -> dict[int, int | None]:
        offsets = GroupOffsets(s.kafka_bootstrap, s.app_id, s.events_topic)
        try:
            return {p: await offsets.committed(p) for p in range(PARTITIONS)}
        finally:
            await offsets.close()

    return asyncio.run(read())


def _applied(h: Harness) -> dict[int, int]:
    return {
        p: int(h.redis.hget(h.keys.partition(p).meta, "offset") or -1) for p in range(PARTITIONS)
    }


def test_committed_offsets_follow_the_applied_state(own_harness: Harness) -> None:
    h = own_harness
    for n in range(200):
        h.client.send_event(f"off-{n % 37}", "profile", {"n": n})
    h.client.flush()
    deadline = time.monotonic() + 60
    while True:
        committed = _committed(h)
        applied = _applied(h)  # read after: the state only moves forward
        for p in range(PARTITIONS):
            got = committed[p]
            assert got is None or got <= applied[p] + 1, (p, committed, applied)
        if sum(applied.values()) + PARTITIONS >= 200 and all(
            committed[p] == applied[p] + 1 for p in range(PARTITIONS) if applied[p] >= 0
        ):
            break
        assert time.monotonic() < deadline, (committed, applied)
        time.sleep(0.2)
