"""PartitionStore on the real Redis: fenced atomic commits, cursors, outbox."""

from __future__ import annotations

from dataclasses import replace

import pytest
from redis.asyncio import Redis

from state import FencedError, KeySpace, OutboxRecord, PartitionBatch, PartitionStore, Profile


async def test_commit_writes_state_and_offset_together(aredis: Redis, keyspace: KeySpace) -> None:
    store = PartitionStore(aredis, keyspace, 3)
    meta = await store.load_meta()
    assert (meta.ver, meta.offset, meta.seq) == (0, -1, 0)
    batch = PartitionBatch(store.keys, meta)
    profile = Profile("c1", {"tier": "gold"})
    batch.profiles["c1"] = profile
    batch.new_customers.append("c1")
    batch.set_member("vip", "c1", True)
    batch.outbox.append(OutboxRecord("t", b"c1", b"v"))
    batch.offset = 41
    batch.next_seq()
    assert await store.commit(meta.ver, batch) == 1
    meta = await store.load_meta()
    assert (meta.ver, meta.offset, meta.seq) == (1, 41, 1)
    (loaded,) = await store.load_profiles(["c1"])
    assert loaded is not None and loaded.attrs == {"tier": "gold"}
    assert await store.members("vip") == {"c1"}
    assert (await store.outbox())[0][0].key == b"c1"
    ver, epoch = await store.claim(1)
    assert (ver, epoch) == (2, 1)
    assert await store.trim_outbox(1, epoch)
    assert await store.outbox() == []


async def test_a_former_owner_cannot_trim_the_new_owners_outbox(
    aredis: Redis, keyspace: KeySpace
) -> None:
    store = PartitionStore(aredis, keyspace, 5)
    ver, old_epoch = await store.claim(0)
    batch = PartitionBatch(store.keys, await store.load_meta())
    batch.outbox.append(OutboxRecord("t", b"k", b"from the new owner"))
    _, new_epoch = await store.claim(ver)  # another worker takes the partition over
    await store.commit(ver + 1, batch)
    assert not await store.trim_outbox(1, old_epoch)  # late confirmation of the old owner
    assert [[r.value for r in e] for e in await store.outbox()] == [[b"from the new owner"]]
    assert await store.trim_outbox(1, new_epoch)


async def test_the_outbox_holds_one_entry_per_commit(aredis: Redis, keyspace: KeySpace) -> None:
    store = PartitionStore(aredis, keyspace, 6)
    meta = await store.load_meta()
    for commit in range(2):
        batch = PartitionBatch(store.keys, meta)
        batch.outbox.extend(
            OutboxRecord("t", f"c{n}".encode(), f"{commit}:{n}".encode(), None, (("h", b"1"),))
            for n in range(3)
        )
        meta = replace(meta, ver=await store.commit(meta.ver, batch))
    assert await aredis.llen(store.keys.outbox) == 2  # one RPUSH of one blob per commit
    entries = await store.outbox()
    assert [[r.value for r in e] for e in entries] == [
        [b"0:0", b"0:1", b"0:2"],
        [b"1:0", b"1:1", b"1:2"],
    ]
    assert entries[0][0] == OutboxRecord("t", b"c0", b"0:0", None, (("h", b"1"),))
    _, epoch = await store.claim(meta.ver)
    assert await store.trim_outbox(1, epoch)  # the first commit's records were acknowledged
    assert [[r.value for r in e] for e in await store.outbox()] == [[b"1:0", b"1:1", b"1:2"]]


async def test_an_outbox_entry_of_an_older_version_is_one_record(
    aredis: Redis, keyspace: KeySpace
) -> None:
    store = PartitionStore(aredis, keyspace, 7)
    await aredis.rpush(store.keys.outbox, OutboxRecord("t", b"old", b"v1", 2).pack())
    assert await store.outbox() == [[OutboxRecord("t", b"old", b"v1", 2)]]


async def test_stale_writer_is_fenced_and_writes_nothing(aredis: Redis, keyspace: KeySpace) -> None:
    store = PartitionStore(aredis, keyspace, 0)
    meta = await store.load_meta()
    first = PartitionBatch(store.keys, meta)
    first.offset = 10
    await store.commit(meta.ver, first)
    stale = PartitionBatch(store.keys, meta)  # built from the version before `first`
    stale.offset = 99
    _new(stale, ["zombie"])
    stale.set_member("vip", "zombie", True)
    with pytest.raises(FencedError, match="expected version 0, found 1"):
        await store.commit(meta.ver, stale)
    assert (await store.load_meta()).offset == 10
    assert await store.members("vip") == set()


async def test_join_then_leave_in_one_batch_leaves_a_non_member(
    aredis: Redis, keyspace: KeySpace
) -> None:
    # regression: joins and leaves were applied as two groups, SREM before SADD, so a customer
    # who entered and exited within one batch stayed in the members set.
    store = PartitionStore(aredis, keyspace, 0)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    _new(batch, ["c1", "c2"])
    batch.set_member("de", "c1", True)
    batch.set_member("de", "c1", False)
    batch.set_member("de", "c2", False)
    batch.set_member("de", "c2", True)
    await store.commit(meta.ver, batch)
    assert await store.members("de") == {"c2"}


def _new(batch: PartitionBatch, ids: list[str]) -> None:
    for customer_id in ids:
        batch.profiles[customer_id] = Profile(customer_id)
        batch.new_customers.append(customer_id)


async def test_customer_cursor_resumes_in_first_seen_order(
    aredis: Redis, keyspace: KeySpace
) -> None:
    store = PartitionStore(aredis, keyspace, 1)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    _new(batch, ["b", "a", "d"])
    meta = replace(meta, ver=await store.commit(meta.ver, batch))
    batch = PartitionBatch(store.keys, meta)
    _new(batch, ["c", "e"])
    await store.commit(meta.ver, batch)
    first = await store.customers_after(None, 2)
    rest = await store.customers_after(first[-1], 10)
    assert first == ["b", "a"]
    assert rest == ["d", "c", "e"]
    assert await store.customer_count() == 5
    # a new store (a worker resuming a task after a crash) finds the cursor's ordinal
    fresh = PartitionStore(aredis, keyspace, 1)
    assert await fresh.customers_after("a", 2) == ["d", "c"]


async def test_large_batches_are_split_below_lua_limits(aredis: Redis, keyspace: KeySpace) -> None:
    store = PartitionStore(aredis, keyspace, 2)
    meta = await store.load_meta()
    batch = PartitionBatch(store.keys, meta)
    ids = [f"c{i}" for i in range(25_000)]
    _new(batch, ids)
    for customer in ids:
        batch.set_member("all", customer, True)
        batch.timers[customer] = 1000
    await store.commit(meta.ver, batch)
    assert await store.customer_count() == 25_000
    assert await store.member_count("all") == 25_000
    assert await store.due_customers(1000, 5) == ["c0", "c1", "c10", "c100", "c1000"]


async def test_a_partition_of_the_layout_before_ordinals_is_migrated_on_load(
    aredis: Redis, keyspace: KeySpace
) -> None:
    keys = keyspace.partition(4)
    await aredis.hset(keys.meta, mapping={"ver": 3, "offset": 17, "seq": 2})
    await aredis.hset(keys.catalog, "vip", b"x")
    for customer_id in ("b", "a", "c"):
        await aredis.set(
            keys.profile(customer_id), Profile(customer_id, {"n": customer_id}).encode()
        )
        await aredis.zadd(keys.legacy_customers, {customer_id: 0})
    await aredis.sadd(keys.legacy_members("vip"), "a", "c")
    store = PartitionStore(aredis, keyspace, 4)
    meta = await store.load_meta()
    assert (meta.ver, meta.offset, meta.seq) == (4, 17, 2)  # one fenced commit
    assert await store.members("vip") == {"a", "c"}
    assert await store.customers_after(None, 10) == ["a", "b", "c"]  # numbered in id order
    assert await store.customer_count() == 3
    loaded = await store.load_profiles(["a", "b", "c"])
    assert [(p.ordinal, p.attrs) for p in loaded if p] == [
        (0, {"n": "a"}),
        (1, {"n": "b"}),
        (2, {"n": "c"}),
    ]
    assert not await aredis.exists(keys.legacy_customers, keys.legacy_members("vip"))


async def test_a_commit_stores_every_profile_of_a_batch_larger_than_one_mset(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """Profiles go as `MSET`s of at most 1,000 keys (`Writes.set_many`): every one of 2,501
    is stored with its own value, and a fenced commit stores none."""
    store = PartitionStore(aredis, keyspace, 4)
    meta = await store.load_meta()
    ids = [f"m{n}" for n in range(2501)]
    batch = PartitionBatch(store.keys, meta)
    for n, customer_id in enumerate(ids):
        batch.profiles[customer_id] = Profile(customer_id, {"n": n})
        batch.new_customers.append(customer_id)
    writes = batch.writes()
    assert [op[0] for op in writes.ops].count("MSET") == 3
    assert len(writes.sets()) == 2501
    late = PartitionBatch(store.keys, meta)
    late.profiles["late"] = Profile("late", {"n": -1})
    late.new_customers.append("late")
    await store.commit(meta.ver, batch)
    with pytest.raises(FencedError):
        await store.commit(meta.ver, late)  # read the same version: refused, nothing stored
    loaded = await store.load_profiles([*ids, "late"])
    assert [p.attrs["n"] if p is not None else None for p in loaded] == [*range(2501), None]
