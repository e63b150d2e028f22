"""The partition runtime's profile cache on the real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgpack
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from state import KeySpace, OutboxRecord, PartitionBatch, PartitionStore, Profile
from state.connect import connect
from streams.engine.runtime import PartitionRuntime, _Owner
from streams.messages import Incoming
from streams.settings import Settings
from tests.hypothesis_profiles import examples
from tests.state.fixtures import drop_keyspace


async def test_profiles_cached_when_asked_survive_an_eviction_during_the_read(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """Regression: a backfill reads its next chunk while the current one commits, and that
    commit's `remember` evicted cached customers of the next chunk during the read: KeyError."""
    store = PartitionStore(aredis, keyspace, 0)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    batch.profiles["stored"] = Profile("stored", {"tier": "gold"})
    batch.new_customers.append("stored")
    await store.commit(meta.ver, batch)
    owner = _Owner(store, None, meta, 0, cache_size=2)  # type: ignore[arg-type]
    cached = Profile("cached", {"tier": "silver"})
    owner.remember([cached])

    reading = asyncio.ensure_future(owner.profiles(["cached", "stored", "unknown"]))
    await asyncio.sleep(0)  # the MGET of the others is on its way
    assert not reading.done()
    owner.remember([Profile("x1"), Profile("x2")])  # evicts "cached" meanwhile
    assert "cached" not in owner.cache

    found, stored, unknown = await reading
    assert found is cached
    assert stored is not None and stored.attrs == {"tier": "gold"}
    assert unknown is None


# -- the read ahead: the next batch's profiles read beside the current batch's commit ----------


class _StubPublisher:
    """Accepts every record at once: these tests are about Redis state, not the broker."""

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        futures = []
        for _ in records:
            future: asyncio.Future[Any] = loop.create_future()
            future.set_result(None)
            futures.append(future)
        return futures

    async def settle(self, records: Sequence[OutboxRecord], futures: Sequence[Any]) -> None:
        return None


def _runtime(redis: Redis, keyspace: KeySpace, cache_size: int) -> PartitionRuntime:
    settings = Settings.from_env(
        {"LS_PROFILE_CACHE_SIZE": str(cache_size)}, key_prefix=keyspace.prefix
    )
    return PartitionRuntime(settings, redis, _StubPublisher())  # type: ignore[arg-type]


def _event(offset: int, customer_id: str, props: dict[str, Any]) -> Incoming:
    value = {
        "event_id": f"e{offset}",
        "customer_id": customer_id,
        "type": "profile",
        "ts": int(time.time() * 1000),
        "properties": props,
    }
    return Incoming(0, offset, customer_id.encode(), msgpack.packb(value))


def _keys(*customers: str) -> Callable[[], list[bytes | None]]:
    return lambda: [c.encode() for c in customers]


async def _stored(redis: Redis, keyspace: KeySpace, customer_id: str) -> dict[str, Any]:
    (profile,) = await PartitionStore(redis, keyspace, 0).load_profiles([customer_id])
    assert profile is not None
    return profile.attrs


class _Reads:
    """The owner's store, recording the customers each of its MGETs asks for."""

    def __init__(self, store: PartitionStore) -> None:
        self._store = store
        self.asked: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def load_profiles(self, customer_ids: Sequence[str]) -> list[Profile | None]:
        self.asked.append(list(customer_ids))
        return await self._store.load_profiles(customer_ids)


async def test_the_next_batchs_profiles_are_read_beside_the_commit_and_used_once(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace, cache_size=100)
    await runtime.process(0, [_event(0, "c2", {"tier": "silver"})])
    runtime.forget([0])  # c2 stored, not cached
    owner = await runtime.owner(0)
    reads = owner.store = _Reads(owner.store)  # type: ignore[assignment]

    await runtime.process(0, [_event(1, "c1", {"tier": "gold"})], _keys("c1", "c2", "c3"))
    # c1 is what this commit writes, so only c2 and c3 are read ahead, beside the commit
    assert owner.prefetched is not None and owner.prefetched.ids == ["c2", "c3"]
    assert reads.asked == [["c1"]]
    await runtime.process(0, [_event(2, "c2", {"n": 2}), _event(3, "c3", {"n": 3})])
    assert reads.asked == [["c1"]]  # no read of its own
    assert owner.prefetched is None
    assert await _stored(aredis, keyspace, "c2") == {"tier": "silver", "n": 2}
    assert await _stored(aredis, keyspace, "c3") == {"n": 3}


async def test_a_commit_after_the_read_ahead_drops_it_so_its_customers_are_read_again(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace, cache_size=0)  # nothing cached: every load reads
    await runtime.process(0, [_event(0, "c2", {"v": 1})])
    await runtime.process(0, [_event(1, "c1", {})], _keys("c2"))
    owner = await runtime.owner(0)
    assert owner.prefetched is not None and owner.prefetched.ids == ["c2"]

    # another commit (an expiry's, a dead letter's) writes c2 before the next batch loads it
    (c2,) = await owner.store.load_profiles(["c2"])
    assert c2 is not None
    c2.upsert_attributes({"v": 2})
    batch = PartitionBatch(owner.store.keys, owner.meta)
    batch.profiles["c2"] = c2
    await runtime._commit(owner, batch)

    (loaded,) = await owner.profiles(["c2"])
    assert loaded is not None and loaded.attrs == {"v": 2}


class _FailingEngine:
    """The partition's engine, except that the event of customer `poison` fails after the
    batch's earlier events changed their profiles (left with a change no commit made)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine
        self.seen: list[Profile] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def apply_event(self, batch: PartitionBatch, profile: Profile, event: Any, now: int) -> bool:
        if event.customer_id == "poison":
            for seen in self.seen:
                seen.upsert_attributes({"uncommitted": True})
            raise ValueError("poison")
        self.seen.append(profile)
        return bool(self._engine.apply_event(batch, profile, event, now))


async def test_a_failed_batch_never_reuses_the_profiles_read_ahead(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace, cache_size=100)
    await runtime.process(0, [_event(0, "c2", {"v": 1})])
    runtime.forget([0])
    owner = await runtime.owner(0)
    owner.engine = _FailingEngine(owner.engine)  # type: ignore[assignment]
    await runtime.process(0, [_event(1, "c1", {})], _keys("c2", "poison"))
    assert owner.prefetched is not None

    # the batch fails on "poison" after changing c2's profile read ahead; its halves are
    # applied again on state read afresh, and "poison" is dead-lettered
    await runtime.process(0, [_event(2, "c2", {"v": 2}), _event(3, "poison", {})])
    assert await _stored(aredis, keyspace, "c2") == {"v": 2}
    assert owner.meta.offset == 3


async def test_a_failure_drops_the_read_ahead_and_the_cache(
    aredis: Redis, keyspace: KeySpace
) -> None:
    runtime = _runtime(aredis, keyspace, cache_size=100)
    await runtime.process(0, [_event(0, "c1", {})], _keys("c2"))
    owner = await runtime.owner(0)
    assert owner.prefetched is not None and owner.cache
    owner.drop_cached()
    assert owner.prefetched is None and not owner.cache


_CUSTOMERS = ("a", "b", "c", "d")
_subsets = st.lists(st.sampled_from(_CUSTOMERS), max_size=4, unique=True)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("commit"), _subsets, _subsets),  # writes, keys queued behind it
        st.tuples(st.just("load"), _subsets, st.just([])),
        st.tuples(st.just("fail"), st.just([]), st.just([])),
    ),
    max_size=12,
)


@settings(max_examples=examples(100), deadline=None)
@given(ops=_ops, cache_size=st.integers(0, 3))
@example(  # a commit after the read ahead writes what it read (seen red without the drop)
    ops=[("commit", ["a"], []), ("commit", [], ["a"]), ("commit", ["a"], []), ("load", ["a"], [])],
    cache_size=0,
)
def test_every_load_sees_the_committed_profiles_whatever_was_read_ahead(
    redis_url: str, ops: list[tuple[str, list[str], list[str]]], cache_size: int
) -> None:
    """Commits that read the next batch's customers ahead, loads, failures, in any order and
    with any cache size: every load returns what the last commit of each customer wrote."""

    async def run() -> None:
        redis = connect(redis_url)
        keyspace = KeySpace(f"test-{uuid.uuid4().hex[:10]}")
        try:
            runtime = _runtime(redis, keyspace, cache_size)
            owner = await runtime.owner(0)
            committed: dict[str, int] = {}
            ordinals: dict[str, int] = {}
            for n, (op, customers, upcoming) in enumerate(ops):
                if op == "commit":
                    batch = PartitionBatch(owner.store.keys, owner.meta)
                    for c in customers:
                        profile = Profile(c, {"n": n})
                        profile.ordinal = ordinals.get(c)
                        if profile.ordinal is None:
                            batch.new_customers.append(c)
                        batch.profiles[c] = profile
                    await runtime._commit(owner, batch, None, _keys(*upcoming))
                    for c in customers:
                        committed[c] = n
                        ordinals[c] = batch.profiles[c].ordinal  # type: ignore[assignment]
                elif op == "load":
                    loaded = await owner.profiles(customers)
                    for c, profile in zip(customers, loaded, strict=True):
                        if c in committed:
                            assert profile is not None and profile.attrs == {"n": committed[c]}
                        else:
                            assert profile is None
                else:
                    owner.drop_cached()
        finally:
            await drop_keyspace(redis, keyspace)
            await redis.aclose()

    asyncio.run(run())
