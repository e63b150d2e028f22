"""Trend snapshots: points per segment, retention, and the leader's snapshot function."""

from __future__ import annotations

import msgpack
from redis.asyncio import Redis

from state import KeySpace, StoredSegment
from state.reads import StateReads
from state.trends import TrendPoint, TrendStore
from streams.agents.snapshots import interval_start, take_snapshot

from .fixtures import put_customers


async def test_points_in_range_and_retention(aredis: Redis, keyspace: KeySpace) -> None:
    trends = TrendStore(aredis, keyspace)
    assert trends.key("s") == f"{{{keyspace.prefix}:registry}}:trend:s"
    await trends.record({"s": 5, "t": 1}, 1_000, retention_ms=10_000)
    await trends.record({"s": 5}, 2_000, retention_ms=10_000)
    await trends.record({"s": 7}, 3_000, retention_ms=10_000)
    assert await trends.points("s") == [
        TrendPoint(1_000, 5),
        TrendPoint(2_000, 5),
        TrendPoint(3_000, 7),
    ]
    assert await trends.points("s", 1_500, 2_500) == [TrendPoint(2_000, 5)]
    await trends.record({"s": 8}, 12_000, retention_ms=10_000)  # drops points before 2_000
    assert [p.at for p in await trends.points("s")] == [2_000, 3_000, 12_000]
    await trends.trim(["t"], 12_000, retention_ms=10_000)
    assert await trends.points("t") == []


async def test_take_snapshot_counts_active_segments_only(aredis: Redis, keyspace: KeySpace) -> None:
    registry = keyspace.registry
    for sid, active in (("on", True), ("off", False)):
        seg = StoredSegment(sid, {"id": sid, "name": sid, "rules": []}, 1, active, 0, 0)
        await aredis.hset(registry.segments, sid, msgpack.packb(seg.to_dict()))
    await put_customers(aredis, keyspace, 0, {"a": ({}, ["on"]), "b": ({}, ["on"])})
    await put_customers(aredis, keyspace, 1, {"c": ({}, ["on"])})
    trends = TrendStore(aredis, keyspace)
    await trends.record({"deleted": 3}, 500, retention_ms=10**9)
    reads = StateReads(aredis, keyspace, 2)
    assert await take_snapshot(reads, trends, 10**9, now_ms=1_000) == {"on": 3}
    assert await take_snapshot(reads, trends, 10**9, now_ms=2_000) == {"on": 3}
    assert await trends.points("on") == [TrendPoint(1_000, 3), TrendPoint(2_000, 3)]
    assert await trends.points("off") == []
    assert await trends.points("deleted") == []  # trends of deleted segments are dropped


async def test_a_second_snapshot_of_one_interval_replaces_the_first(
    aredis: Redis, keyspace: KeySpace
) -> None:
    """Two leaders during a leader change: one point per interval, the later count."""
    trends = TrendStore(aredis, keyspace)
    interval = 60_000
    old_leader, new_leader = 120_400, 179_999  # both in the interval starting at 120_000
    assert interval_start(old_leader, interval) == interval_start(new_leader, interval) == 120_000
    assert interval_start(180_000, interval) == 180_000
    await trends.record({"s": 4}, interval_start(old_leader, interval), retention_ms=10**9)
    await trends.record({"s": 5}, interval_start(new_leader, interval), retention_ms=10**9)
    await trends.record({"s": 6}, interval_start(180_000, interval), retention_ms=10**9)
    assert await trends.points("s") == [TrendPoint(120_000, 5), TrendPoint(180_000, 6)]
