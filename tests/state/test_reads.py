"""Read-only queries over the Redis layout (real Redis, a key prefix per test)."""

from __future__ import annotations

import msgpack
from redis.asyncio import Redis

from state import Job, KeySpace, Profile, StoredSegment
from state.reads import StateReads

from .fixtures import put_customers


async def test_counts_members_and_profiles_across_partitions(
    aredis: Redis, keyspace: KeySpace
) -> None:
    for i in range(25):
        segments = ["even"] if i % 2 == 0 else []
        await put_customers(aredis, keyspace, i % 3, {f"c{i:02d}": ({"n": i}, segments)})
    await put_customers(aredis, keyspace, 1, {"ghost": ({}, ["even"])})
    await aredis.delete(keyspace.partition(1).profile("ghost"))  # profile missing
    reads = StateReads(aredis, keyspace, 3)
    assert await reads.member_counts(["even", "none"]) == {"even": 14, "none": 0}
    assert await reads.customer_count() == 26  # the ghost is still indexed
    seen: dict[str, Profile | None] = {}
    async for page in reads.members("even", page=2):
        assert all(int(cid[1:]) % 3 == page.partition for cid, _ in page.profiles if cid != "ghost")
        seen.update(page.profiles)
    assert set(seen) == {f"c{i:02d}" for i in range(0, 25, 2)} | {"ghost"}
    assert seen["ghost"] is None
    assert seen["c04"] is not None and seen["c04"].attrs == {"n": 4}
    pages = [p async for p in reads.all_profiles(page=4)]
    assert sorted(p.customer_id for page in pages for p in page) == [f"c{i:02d}" for i in range(25)]
    assert max(len(page) for page in pages) == 4


async def test_registry_segments_and_jobs(aredis: Redis, keyspace: KeySpace) -> None:
    keys = keyspace.registry
    segment = StoredSegment("s", {"id": "s", "name": "S", "rules": []}, 2, True, 10, 20)
    await aredis.hset(keys.segments, "s", msgpack.packb(segment.to_dict()))
    jobs = [
        Job("j1", "r1", "activate", ("s",), 2, 100, {}, {0: {}, 1: {}}, 150),
        Job("j2", "r2", "refresh", ("s", "t"), 2, 200, {}, {0: {}}, None),
        Job("j3", "r3", "deactivate", ("t",), 2, 300, {}, {}, 310),
    ]
    for job in jobs:
        await aredis.hset(keys.jobs, job.job_id, msgpack.packb(job.to_dict()))
    reads = StateReads(aredis, keyspace, 2)
    assert await reads.segment("s") == segment
    assert await reads.segment("nope") is None
    assert [j.job_id for j in await reads.jobs_for("s")] == ["j2", "j1"]
    assert [j.job_id for j in await reads.jobs_for("s", limit=1)] == ["j2"]
    # unfinished and deactivate jobs are no refresh
    assert await reads.last_refreshes() == {"s": 150}
