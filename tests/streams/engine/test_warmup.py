"""The background warm-up of a new owner's profile cache: fenced against commits, stopped by
revocation, harmless when a read fails."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from state import KeySpace, PartitionStore, Profile
from state.warmup import WarmupReader
from streams.engine.runtime import PartitionRuntime, _Owner
from streams.settings import Settings
from tests.state.fixtures import put_customers

from ...hypothesis_profiles import examples
from .test_runtime import _event, _StubPublisher

_CUSTOMERS = ["a", "b", "c"]

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), st.sampled_from(_CUSTOMERS)),
        st.tuples(st.just("erase"), st.sampled_from(_CUSTOMERS)),
        st.tuples(st.just("read"), st.lists(st.sampled_from(_CUSTOMERS), min_size=1, unique=True)),
        st.tuples(st.just("arrive"), st.just("")),
        st.tuples(st.just("clear"), st.just("")),
    ),
    min_size=8,
    max_size=40,
)


@dataclass
class _Read:
    """A warm-up read in flight: per customer, every value Redis held since it was sent (the
    read returns one of them, whichever moment Redis served it)."""

    seen: dict[str, list[int | None]] = field(default_factory=dict)


@settings(max_examples=examples(1000), deadline=None)
@given(_OPS, st.integers(min_value=1, max_value=2), st.data())
def test_any_interleaving_of_warm_up_reads_and_commits_caches_only_the_last_commit(
    ops: list[tuple[str, object]], cache_size: int, data: st.DataObject
) -> None:
    """Whatever order warm-up reads and commits (and erasures) arrive in, and whichever moment
    of its flight Redis served a read, each cached profile is the one its last commit wrote,
    and an erased customer is not cached. A small cache so commits evict meanwhile; the
    warm-up never evicts, so what makes room again is an erasure or a failed batch's clear."""
    owner = _Owner(None, None, None, 0, cache_size)  # type: ignore[arg-type]
    # Redis: customer -> version of its last commit (None: erased); all stored, none cached,
    # as after a restart
    stored: dict[str, int | None] = dict.fromkeys(_CUSTOMERS, 0)
    version = 0
    read: _Read | None = None
    for op, arg in ops:
        if op == "commit":
            customer = str(arg)
            version += 1
            stored[customer] = version
            owner.remember([Profile(customer, {"v": version})])
        elif op == "erase":
            customer = str(arg)
            stored[customer] = None
            owner.drop([customer])
        elif op == "read" and read is None:
            assert isinstance(arg, list)
            read = _Read({c: [stored[c]] for c in arg})
            owner.fence_open()
        elif op == "clear":  # a batch failed: its changes may be in cached profiles
            owner.cache.clear()
        elif op == "arrive" and read is not None:
            served = {c: data.draw(st.sampled_from(values)) for c, values in read.seen.items()}
            owner.warmed([Profile(c, {"v": v}) for c, v in served.items() if v is not None])
            read = None
        if read is not None and op in ("commit", "erase"):
            customer = str(arg)
            if customer in read.seen:
                read.seen[customer].append(stored[customer])
        assert len(owner.cache) <= cache_size
        for customer, profile in owner.cache.items():
            assert profile.attrs["v"] == stored[customer], (customer, owner.cache, stored)


def _runtime(aredis: Redis, keyspace: KeySpace, **overrides: object) -> PartitionRuntime:
    settings = Settings.from_env({}, key_prefix=keyspace.prefix, **overrides)
    return PartitionRuntime(settings, aredis, _StubPublisher())  # type: ignore[arg-type]


async def _store(aredis: Redis, keyspace: KeySpace, count: int) -> list[str]:
    ids = [f"c{n:04d}" for n in range(count)]
    await put_customers(aredis, keyspace, 0, {c: ({"n": -1}, []) for c in ids})
    return ids


async def test_events_applied_while_the_cache_warms_end_up_cached_as_committed(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """Each cached profile is what Redis holds, whichever came first: the warm-up's read or
    the live batches' commits."""
    ids = await _store(aredis, keyspace, 60)
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=7, profile_cache_size=40)
    owner = await runtime.owner(0)
    assert owner.warming is not None
    for offset, customer in enumerate(ids[::3]):  # live batches while it warms
        await runtime.process(0, [_event(0, offset, customer)])
    warming = owner.warming
    if warming is not None:
        await warming
    assert len(owner.cache) == 40
    store = PartitionStore(aredis, keyspace, 0)
    cached = list(owner.cache)
    for customer, loaded in zip(cached, await store.load_profiles(cached), strict=True):
        assert loaded is not None
        assert owner.cache[customer].attrs == loaded.attrs, customer
    assert any(owner.cache[c].attrs["n"] == -1 for c in cached)  # some came from the warm-up


async def test_the_warm_up_reads_the_first_seen_customers_up_to_the_cache_size(
    aredis: Redis, keyspace: KeySpace
) -> None:
    ids = await _store(aredis, keyspace, 60)
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=7, profile_cache_size=40)
    owner = await runtime.owner(0)
    assert owner.warming is not None
    assert runtime.warming() == [0]  # `/health` says so until the cache is full
    await owner.warming
    assert runtime.warming() == []
    assert set(owner.cache) == set(ids[:40])
    assert all(owner.cache[c].attrs == {"n": -1} for c in ids[:40])


async def test_the_warm_up_is_off_with_a_chunk_of_zero(aredis: Redis, keyspace: KeySpace) -> None:
    await _store(aredis, keyspace, 10)
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=0)
    owner = await runtime.owner(0)
    assert owner.warming is None
    assert runtime.warming() == []
    await asyncio.sleep(0.05)
    assert not owner.cache


@pytest.mark.parametrize("stop", ["revoked", "discarded"])
async def test_revocation_or_discarding_stops_the_warm_up(
    aredis: Redis, keyspace: KeySpace, stop: str
) -> None:
    await _store(aredis, keyspace, 400)
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=5, profile_cache_size=1000)
    owner = await runtime.owner(0)
    warming = owner.warming
    assert warming is not None
    while not owner.cache:
        await asyncio.sleep(0.001)
    assert runtime.warming() == [0]
    if stop == "revoked":
        runtime.forget([0])
    else:
        runtime._discard(owner)  # a failed batch, a fenced commit, a failed publish
    assert runtime.warming() == []
    cached = len(owner.cache)
    await asyncio.wait([warming], timeout=5)
    assert warming.done()
    await asyncio.sleep(0.05)
    assert len(owner.cache) == cached < 400
    assert owner.warming is None


async def test_a_failed_warm_up_read_leaves_the_owner_working(
    aredis: Redis, keyspace: KeySpace, caplog: pytest.LogCaptureFixture
) -> None:
    """A profile that cannot be decoded stops the warm-up (logged); the owner goes on, and
    reads that customer as any batch would (here: the same error, for its batch only)."""
    ids = await _store(aredis, keyspace, 30)
    store = PartitionStore(aredis, keyspace, 0)
    await aredis.set(store.keys.profile(ids[3]), b"not a profile")
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=10)
    with caplog.at_level(logging.WARNING, logger="streams.engine.runtime"):
        owner = await runtime.owner(0)
        warming = owner.warming
        assert warming is not None
        await asyncio.wait([warming], timeout=5)
    assert warming.done() and not warming.cancelled() and warming.exception() is None
    assert "warming the profile cache stopped" in caplog.text
    assert await runtime.owner(0) is owner
    await runtime.process(0, [_event(0, 0, ids[20])])
    assert (await runtime.meta(0)).offset == 0
    assert owner.cache[ids[20]].attrs["n"] == 0


async def test_an_erasure_during_a_warm_up_read_is_not_undone(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """The read was sent before the erasing commit: its copy of the customer is dropped."""
    ids = await _store(aredis, keyspace, 5)
    runtime = _runtime(aredis, keyspace, profile_warmup_chunk=0)
    owner = await runtime.owner(0)
    reader = WarmupReader(aredis, owner.store.keys)
    owner.fence_open()
    profiles = await reader.profiles(ids)
    owner.drop([ids[1]])  # as `_task_chunks` does after a `forget` task's commit
    assert owner.warmed(profiles) == 4
    assert ids[1] not in owner.cache
