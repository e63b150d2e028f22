"""Read-only queries over the Redis layout, for the HTTP API and the trend snapshots.

Nothing here writes. Members are read from their bitmaps (`state.index`) and profiles with
MGET, page by page, so that a query over millions of customers holds one page in memory at a
time. Every page touches the keys of one events partition only (one hash tag), like the
writers do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from redis.asyncio import Redis

from . import index
from .jobs import SUCCESSFUL
from .keys import KeySpace
from .partition import decode_stored
from .profile import Profile
from .registry import Job, RegistryStore, StoredSegment

__all__ = ["MemberPage", "StateReads"]

PAGE = 500
"""Members or customers read per round trip."""


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _blob(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@dataclass(frozen=True)
class MemberPage:
    """Some members of one segment on one partition, with their profiles (None if missing)."""

    partition: int
    profiles: tuple[tuple[str, Profile | None], ...]


class StateReads:
    """Queries over every events partition and the registry; `partitions` = the topic's."""

    def __init__(self, redis: Redis, keyspace: KeySpace, partitions: int) -> None:
        self.redis = redis
        self.keyspace = keyspace
        self.partitions = partitions
        self.registry = RegistryStore(redis, keyspace)

    # -- registry -------------------------------------------------------------------------
    async def segments(self) -> dict[str, StoredSegment]:
        return await self.registry.segments()

    async def segment(self, segment_id: str) -> StoredSegment | None:
        return await self.registry.segment(segment_id)

    async def jobs(self) -> AsyncIterator[Job]:
        """Every job in the jobs hash (HSCAN: no single huge reply)."""
        async for _job_id, blob in self.redis.hscan_iter(self.keyspace.registry.jobs, count=PAGE):
            yield Job.from_dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))

    async def jobs_for(self, segment_id: str, limit: int = 10) -> list[Job]:
        """The most recent jobs that touched `segment_id`, newest first."""
        found = [job async for job in self.jobs() if job.touches(segment_id)]
        found.sort(key=lambda j: j.created_at, reverse=True)
        return found[:limit]

    async def last_refreshes(self) -> dict[str, int]:
        """Segment id -> when its members were last fully re-evaluated (a finished job)."""
        last: dict[str, int] = {}
        async for job in self.jobs():
            if job.finished_at is None or job.command not in ("activate", "update", "refresh"):
                continue
            for segment_id in job.segment_ids:
                task = job.tasks.get(segment_id)
                if task is not None and task.status != SUCCESSFUL:
                    continue  # failed, skipped or canceled: the members were not all refreshed
                last[segment_id] = max(last.get(segment_id, 0), job.finished_at)
        return last

    async def job(self, job_id: str) -> Job | None:
        return await self.registry.job(job_id)

    async def recent_jobs(
        self,
        limit: int,
        segment_id: str | None = None,
        status: str | None = None,
        request_id: str | None = None,
    ) -> list[Job]:
        """The newest jobs (by creation) matching the filters, newest first."""
        found: list[Job] = []
        start = 0
        while len(found) < limit:
            ids = await self.registry.recent_job_ids(start, PAGE)
            if not ids:
                break
            start += len(ids)
            for job in await self.registry.jobs(ids):
                if (
                    (segment_id is None or job.touches(segment_id))
                    and (status is None or job.status == status)
                    and (request_id is None or job.request_id == request_id)
                ):
                    found.append(job)
        return found[:limit]

    async def task_progress(self, job_id: str) -> dict[int, dict[str, Any]]:
        """Partition -> ``running`` (working on `job_id` now) with its committed ``done`` of
        ``total`` customers, ``started_at`` and ``at`` (last chunk); else just ``total``."""
        pipe = self.redis.pipeline(transaction=False)
        for partition in range(self.partitions):
            keys = self.keyspace.partition(partition)
            pipe.hget(keys.meta, "task")
            pipe.hget(keys.meta, "customers")
        raw = await pipe.execute()
        progress: dict[int, dict[str, Any]] = {}
        for partition in range(self.partitions):
            blob, customers = raw[2 * partition], raw[2 * partition + 1]
            task = msgpack.unpackb(_blob(blob), raw=False) if blob else None
            if isinstance(task, dict) and task.get("job_id") == job_id:
                found = {k: task.get(k) for k in ("done", "total", "started_at", "at")}
                progress[partition] = {"running": True, **found}
            else:
                progress[partition] = {"running": False, "total": int(customers or 0)}
        return progress

    # -- members --------------------------------------------------------------------------
    async def member_counts(self, segment_ids: Iterable[str]) -> dict[str, int]:
        """Segment id -> BITCOUNT summed over the partitions (one pipeline)."""
        ids = list(segment_ids)
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for segment_id in ids:
            for partition in range(self.partitions):
                pipe.bitcount(self.keyspace.partition(partition).members(segment_id))
        counts = await pipe.execute()
        n = self.partitions
        return {sid: sum(counts[i * n : (i + 1) * n]) for i, sid in enumerate(ids)}

    async def member_ids(self, segment_id: str, page: int = PAGE) -> AsyncIterator[list[str]]:
        """The segment's members, a page at a time, partition after partition."""
        async for _partition, ids in self._member_pages(segment_id, page):
            yield ids

    async def _member_pages(
        self, segment_id: str, page: int
    ) -> AsyncIterator[tuple[int, list[str]]]:
        for partition in range(self.partitions):
            keys = self.keyspace.partition(partition)
            async for ids in index.member_pages(self.redis, keys, segment_id, page):
                yield partition, ids

    async def members(self, segment_id: str, page: int = PAGE) -> AsyncIterator[MemberPage]:
        """The segment's members with their profiles (MGET per page)."""
        async for partition, ids in self._member_pages(segment_id, page):
            profiles = await self.profiles(partition, ids)
            yield MemberPage(partition, tuple(zip(ids, profiles, strict=True)))

    async def profiles(self, partition: int, customer_ids: Sequence[str]) -> list[Profile | None]:
        if not customer_ids:
            return []
        keys = self.keyspace.partition(partition)
        blobs = await self.redis.mget([keys.profile(c) for c in customer_ids])
        return [
            decode_stored(c, _blob(blob), keys.profile(c)) if blob is not None else None
            for c, blob in zip(customer_ids, blobs, strict=True)
        ]

    # -- every customer -------------------------------------------------------------------
    async def customer_count(self) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for partition in range(self.partitions):
            pipe.hget(self.keyspace.partition(partition).meta, "customers")
        return sum(int(n or 0) for n in await pipe.execute())

    async def all_profiles(self, page: int = PAGE) -> AsyncIterator[list[Profile]]:
        """Every stored profile, a page at a time (customers in ordinal order per partition)."""
        for partition in range(self.partitions):
            keys = self.keyspace.partition(partition)
            start = 0
            while True:
                found = await index.customers_from(self.redis, keys, start, page)
                if not found:
                    break
                start = found[-1][0] + 1
                profiles = await self.profiles(partition, [c for _, c in found])
                yield [p for p in profiles if p is not None]
                if len(found) < page:
                    break
