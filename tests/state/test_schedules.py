"""Schedules in the registry: written atomically with a registry batch, read by due time."""

from __future__ import annotations

from redis.asyncio import Redis

from state import KeySpace, RegistryBatch, RegistryStore
from state.schedules import RefreshSchedule, Schedule, ScheduleStore


async def _commit(store: RegistryStore, batch: RegistryBatch) -> None:
    meta = await store.load_meta()
    await store.commit(meta.ver, batch)


async def test_schedules_commit_with_the_batch_and_are_read_by_due_time(
    aredis: Redis, keyspace: KeySpace
) -> None:
    registry = RegistryStore(aredis, keyspace)
    schedules = ScheduleStore(aredis, keyspace)
    batch = RegistryBatch(registry, await registry.load_meta())
    batch.offset = 7
    early = Schedule("s1", "gold", "activate", 1_000, 10, "req-1")
    late = Schedule("s2", "gold", "deactivate", 5_000, 10, "req-2")
    other = Schedule("s3", "silver", "activate", 2_000, 10)
    for s in (late, early, other):
        batch.schedule_writes.schedules[s.schedule_id] = s
    daily = RefreshSchedule("r1", ("gold",), "0 6 * * *", "Europe/Berlin", 3_000, 10)
    every = RefreshSchedule("r2", None, "*/5 * * * *", "UTC", 9_000, 10)
    batch.schedule_writes.refreshes.update({"r1": daily, "r2": every})
    await _commit(registry, batch)

    assert (await registry.load_meta()).offset == 7
    assert await schedules.schedule("s1") == early
    assert await schedules.schedule("nope") is None
    assert [s.schedule_id for s in await schedules.schedules()] == ["s1", "s3", "s2"]
    assert await schedules.schedules_for("gold") == [early, late]
    assert await schedules.refresh("r2") == every
    assert (await schedules.refresh("r2")).to_dict()["all"] is True  # type: ignore[union-attr]
    assert [r.schedule_id for r in await schedules.refreshes()] == ["r1", "r2"]
    assert await schedules.due(2_000) == ([("s1", 1_000), ("s3", 2_000)], [])
    assert await schedules.due(3_000) == ([("s1", 1_000), ("s3", 2_000)], [("r1", 3_000)])

    batch = RegistryBatch(registry, await registry.load_meta())
    batch.offset = 8
    batch.schedule_writes.schedules["s1"] = None
    batch.schedule_writes.refreshes["r1"] = daily.with_changes(next_at=90_000)
    batch.schedule_writes.refreshes["r2"] = None
    await _commit(registry, batch)
    assert await schedules.due(10_000) == ([("s3", 2_000), ("s2", 5_000)], [])
    assert await schedules.schedule("s1") is None
    assert [r.next_at for r in await schedules.refreshes()] == [90_000]
    keys = keyspace.registry
    assert keys.schedules.startswith(f"{{{keyspace.prefix}:registry}}")
    assert keys.refresh_due.startswith(f"{{{keyspace.prefix}:registry}}")
