"""The suggestion store expires suggestions; the progress store keeps a job's stage (real
Redis, a key prefix per test)."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from state import KeySpace
from state.insights import ProgressStore, SuggestionStore
from state.reads import StateReads


async def test_a_suggestion_expires_after_its_time_to_live(
    aredis: Redis, keyspace: KeySpace
) -> None:
    reads = StateReads(aredis, keyspace, 2)
    store = SuggestionStore(reads, ttl_s=0.5)
    await store.save([{"suggestion_id": "measure-1", "size": 3}])
    assert await store.get("measure-1") == {"suggestion_id": "measure-1", "size": 3}
    ttl = await aredis.pttl(keyspace.registry.suggestion("measure-1"))
    assert 0 < ttl <= 500
    deadline = time.monotonic() + 10
    while await store.get("measure-1") is not None:
        assert time.monotonic() < deadline, "the suggestion never expired"
        await asyncio.sleep(0.05)
    kept = SuggestionStore(reads, ttl_s=3600)
    await kept.save([{"suggestion_id": "measure-2"}])
    assert await aredis.pttl(keyspace.registry.suggestion("measure-2")) > 3_000_000


async def test_progress_of_an_analysis_job(aredis: Redis, keyspace: KeySpace) -> None:
    store = ProgressStore(StateReads(aredis, keyspace, 2), ttl_s=60)
    assert await store.get("j1") is None
    await store.set("j1", "loading profiles", 500, 1500, 123)
    assert await store.get("j1") == {
        "stage": "loading profiles",
        "done": 500,
        "total": 1500,
        "at": 123,
    }
    assert 0 < await aredis.pttl(keyspace.registry.analysis_progress("j1")) <= 60_000
