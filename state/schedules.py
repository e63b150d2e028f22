"""Schedules kept in the registry: one-shot actions and recurring refreshes.

One-shot actions (activate or deactivate a segment at a time) live in a hash of their bodies
plus a sorted set by due time; recurring refreshes (cron and time zone) in a hash plus a sorted
set by their next run. Both are written only by the control agent, through `ScheduleWrites`
inside a `RegistryBatch`, so they commit atomically with the control offset; the scheduler
timer and the HTTP API only read them (`ScheduleStore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes, as_text
from .commit import Writes
from .keys import KeySpace, RegistryKeys

__all__ = ["RefreshSchedule", "Schedule", "ScheduleStore", "ScheduleWrites"]

ACTIONS = ("activate", "deactivate")


@dataclass(frozen=True)
class Schedule:
    """Activate or deactivate one segment at `at` (epoch ms), once."""

    schedule_id: str
    segment_id: str
    action: str
    at: int
    created_at: int
    request_id: str | None = None
    """The request that created it (the audit trail on the control topic)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "segment_id": self.segment_id,
            "action": self.action,
            "at": self.at,
            "created_at": self.created_at,
            "request_id": self.request_id,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Schedule:
        return cls(
            raw["schedule_id"],
            raw["segment_id"],
            raw["action"],
            raw["at"],
            raw["created_at"],
            raw.get("request_id"),
        )


@dataclass(frozen=True)
class RefreshSchedule:
    """Refresh some segments (or all) at every time a cron expression names, in a time zone."""

    schedule_id: str
    segment_ids: tuple[str, ...] | None
    """None: every segment that exists when the run happens."""
    cron: str
    timezone: str
    next_at: int
    created_at: int
    last_run: dict[str, Any] | None = field(default=None)
    """{"due", "at", "request_id", "refreshed": [...], "skipped": [...], "missing": [...]}."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule_id": self.schedule_id,
            "segment_ids": list(self.segment_ids) if self.segment_ids is not None else None,
            "all": self.segment_ids is None,
            "cron": self.cron,
            "timezone": self.timezone,
            "next_at": self.next_at,
            "created_at": self.created_at,
            "last_run": self.last_run,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RefreshSchedule:
        ids = raw.get("segment_ids")
        return cls(
            raw["schedule_id"],
            tuple(ids) if ids is not None else None,
            raw["cron"],
            raw["timezone"],
            raw["next_at"],
            raw["created_at"],
            raw.get("last_run"),
        )

    def with_changes(self, **changes: Any) -> RefreshSchedule:
        return replace(self, **changes)


class ScheduleWrites:
    """Schedule changes of one registry batch (None = remove)."""

    def __init__(self) -> None:
        self.schedules: dict[str, Schedule | None] = {}
        self.refreshes: dict[str, RefreshSchedule | None] = {}

    def add_to(self, writes: Writes, keys: RegistryKeys) -> None:
        for schedule_id, schedule in self.schedules.items():
            if schedule is None:
                writes.add("HDEL", keys.schedules, schedule_id)
                writes.add("ZREM", keys.schedules_due, schedule_id)
            else:
                writes.add("HSET", keys.schedules, schedule_id, pack(schedule.to_dict()))
                writes.add("ZADD", keys.schedules_due, schedule.at, schedule_id)
        for schedule_id, refresh in self.refreshes.items():
            if refresh is None:
                writes.add("HDEL", keys.refresh_schedules, schedule_id)
                writes.add("ZREM", keys.refresh_due, schedule_id)
            else:
                writes.add("HSET", keys.refresh_schedules, schedule_id, pack(refresh.to_dict()))
                writes.add("ZADD", keys.refresh_due, refresh.next_at, schedule_id)


class ScheduleStore:
    """Reads of the schedules (the control agent, the scheduler timer, the HTTP API)."""

    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self.redis = redis
        self.keys = keyspace.registry

    async def schedule(self, schedule_id: str) -> Schedule | None:
        blob = await self.redis.hget(self.keys.schedules, schedule_id)
        return Schedule.from_dict(unpack(as_bytes(blob))) if blob else None

    async def schedules(self) -> list[Schedule]:
        """Every pending one-shot schedule, soonest first."""
        raw = await self.redis.hgetall(self.keys.schedules)
        found = [Schedule.from_dict(unpack(as_bytes(v))) for v in raw.values()]
        return sorted(found, key=lambda s: (s.at, s.schedule_id))

    async def schedules_for(self, segment_id: str) -> list[Schedule]:
        return [s for s in await self.schedules() if s.segment_id == segment_id]

    async def refresh(self, schedule_id: str) -> RefreshSchedule | None:
        blob = await self.redis.hget(self.keys.refresh_schedules, schedule_id)
        return RefreshSchedule.from_dict(unpack(as_bytes(blob))) if blob else None

    async def refreshes(self) -> list[RefreshSchedule]:
        """Every recurring refresh, next run first."""
        raw = await self.redis.hgetall(self.keys.refresh_schedules)
        found = [RefreshSchedule.from_dict(unpack(as_bytes(v))) for v in raw.values()]
        return sorted(found, key=lambda r: (r.next_at, r.schedule_id))

    async def due(self, now_ms: int, limit: int = 100) -> tuple[list[tuple[str, int]], ...]:
        """(one-shot, refresh) lists of (schedule id, due ms) due at or before `now_ms`."""
        pipe = self.redis.pipeline(transaction=False)
        for key in (self.keys.schedules_due, self.keys.refresh_due):
            pipe.zrangebyscore(key, "-inf", now_ms, start=0, num=limit, withscores=True)
        once, recurring = await pipe.execute()
        return (
            [(as_text(i), int(score)) for i, score in once],
            [(as_text(i), int(score)) for i, score in recurring],
        )
