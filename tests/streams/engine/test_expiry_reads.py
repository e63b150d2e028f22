"""The expiry poll reads Redis only once the earliest timer the owner knows of is due."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from state import FencedError, KeySpace, PartitionBatch, PartitionStore
from streams.engine.runtime import _NO_TIMER, TIMERS_REREAD_MS, PartitionRuntime, _Owner
from streams.settings import Settings

from .test_runtime import _event, _StubPublisher


def _runtime(redis: Redis, keyspace: KeySpace, **env: str) -> PartitionRuntime:
    settings = Settings.from_env(env, key_prefix=keyspace.prefix)
    return PartitionRuntime(settings, redis, _StubPublisher())  # type: ignore[arg-type]


class _CountingRedis(Redis):
    """Counts the expiry poll's reads of due timers (the compiled store's methods cannot be
    patched)."""

    reads = 0

    async def zrangebyscore(self, *args: Any, **kwargs: Any) -> Any:
        self.reads += 1
        return await super().zrangebyscore(*args, **kwargs)


async def test_the_poll_reads_again_only_once_a_known_timer_is_due(
    aredis: Redis, keyspace: KeySpace
) -> None:
    # the plain client, not the turn's, so that its reads are counted
    counting = _CountingRedis(connection_pool=aredis.connection_pool)
    runtime = _runtime(counting, keyspace, LS_REDIS_TURN_PIPELINE="0")
    await runtime.process(5, [_event(5, 0, "a")])  # no window segment: no timer
    owner = await runtime.owner(5)
    start = int(time.time() * 1000)
    assert await runtime.expire_due(5) == 0
    polled = owner.no_timer_before
    assert polled is not None and polled < _NO_TIMER  # none at all, yet read again in a while
    assert start + TIMERS_REREAD_MS <= polled <= int(time.time() * 1000) + TIMERS_REREAD_MS
    assert counting.reads == 1
    assert await runtime.expire_due(5) == 0
    assert counting.reads == 1  # nothing can be due: Redis is not asked

    now = int(time.time() * 1000)
    later = PartitionBatch(owner.store.keys, owner.meta)
    later.timers["a"] = now + 60_000
    await runtime._commit(owner, later)
    assert owner.no_timer_before == polled  # the re-read comes first
    assert await runtime.expire_due(5) == 0
    assert counting.reads == 1  # a timer a minute away: still nothing to read

    due = PartitionBatch(owner.store.keys, owner.meta)
    due.timers["gone"] = now - 1  # committed already due (a customer without a profile)
    await runtime._commit(owner, due)
    assert owner.no_timer_before == now - 1
    assert await runtime.expire_due(5) == 1  # read, and "gone" expired: its timer removed
    assert counting.reads == 2
    assert await runtime.expire_due(5) == 0  # read again after an expiry: nothing due now
    assert counting.reads == 3 and owner.no_timer_before is not None
    assert int(time.time() * 1000) < owner.no_timer_before < now + 60_000  # the re-read's
    assert await runtime.expire_due(5) == 0
    assert counting.reads == 3


async def test_a_poll_that_finds_nothing_due_reads_the_earliest_timer(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace)
    owner = await runtime.owner(3)
    now = int(time.time() * 1000)
    await aredis.zadd(owner.store.keys.timers, {"x": now + 5_000, "y": now + 9_000})
    assert await runtime.expire_due(3) == 0
    assert owner.no_timer_before == now + 5_000


@given(
    before=st.lists(st.integers(0, 10**6)),
    earliest=st.none() | st.integers(0, 10**6),
    during=st.lists(st.lists(st.none() | st.integers(0, 10**6), max_size=3)),
    after=st.lists(st.lists(st.none() | st.integers(0, 10**6), max_size=3)),
)
def test_what_the_owner_knows_is_never_later_than_a_timer_it_may_not_have_read(
    before: list[int],
    earliest: int | None,
    during: list[list[int | None]],
    after: list[list[int | None]],
) -> None:
    """A commit's reply may come in while the poll's read is in flight, and the read may or may
    not have seen it: the timers of every commit from the read's start on count, besides the
    read's earliest one; those committed before the read started are in Redis, so in it."""
    owner = _Owner(None, None, None, 0, cache_size=0)  # type: ignore[arg-type]
    owner.timers_committed(before)
    assert owner.no_timer_before is None  # never read: unknown
    owner.timers_unknown()
    for timers in during:
        owner.timers_committed(timers)
    owner.timers_read(earliest)
    for timers in after:
        owner.timers_committed(timers)
    committed = [at for timers in during + after for at in timers if at is not None]
    assert owner.no_timer_before == min([*committed, _NO_TIMER if earliest is None else earliest])


async def test_a_failed_commit_with_timers_leaves_nothing_known(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace)
    owner = await runtime.owner(4)
    assert await runtime.expire_due(4) == 0
    assert owner.no_timer_before is not None  # known: none due before the re-read
    await PartitionStore(aredis, keyspace, 4).claim(owner.meta.ver)  # another owner now
    batch = PartitionBatch(owner.store.keys, owner.meta)
    batch.timers["a"] = int(time.time() * 1000) + 60_000
    with pytest.raises(FencedError):
        await runtime._commit(owner, batch)
    assert owner.no_timer_before is None  # the next poll reads


def test_a_commit_failing_while_a_polls_read_is_in_flight_spoils_the_read() -> None:
    owner = _Owner(None, None, None, 0, cache_size=0)  # type: ignore[arg-type]
    owner.timers_unknown()
    owner.timers_lost()
    owner.timers_read(None)
    assert owner.no_timer_before == 0  # the next poll reads
