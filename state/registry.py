"""The segment registry: every segment's definition and state, jobs, and control progress.

Written only by the control agent (one partition, one writer at a time, fenced); read by
everyone. A segment here is the desired state; each partition applies it when the task
message for it reaches that partition (see `streams.agents.events`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes, as_text
from .commit import Writes, claim, fenced_commit
from .export_registry import ExportWrites
from .jobs import Task, job_status
from .keys import KeySpace
from .outbox import OutboxRecord, pack_entry, read_outbox, trim_outbox
from .schedules import ScheduleWrites

__all__ = ["Job", "RegistryBatch", "RegistryMeta", "RegistryStore", "StoredSegment"]


@dataclass(frozen=True)
class StoredSegment:
    segment_id: str
    definition: dict[str, Any]
    version: int
    active: bool
    created_at: int
    modified_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.segment_id,
            "definition": self.definition,
            "version": self.version,
            "active": self.active,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoredSegment:
        return cls(
            raw["id"],
            raw["definition"],
            raw["version"],
            raw["active"],
            raw["created_at"],
            raw["modified_at"],
        )

    def with_changes(self, **changes: Any) -> StoredSegment:
        return replace(self, **changes)


@dataclass(frozen=True)
class Job:
    """Work fanned out to every events partition for one command; done when all report."""

    job_id: str
    request_id: str | None
    command: str
    segment_ids: tuple[str, ...]
    partitions: int
    created_at: int
    reply: dict[str, Any]
    """The reply's result, completed with per-partition figures as partitions finish."""
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    finished_at: int | None = None
    tasks: dict[str, Task] = field(default_factory=dict)
    """Segment id -> its task (jobs written before tasks existed have none)."""
    canceled_at: int | None = None
    task_digest: str | None = None
    """sha256 (hex) of the task message written to every events partition; a partition carries
    out a task message only when its digest matches (`streams.task_auth`). None: no partition
    task (an export run, or a job of an older version)."""

    @property
    def status(self) -> str:
        return job_status(self.tasks.values(), bool(self.done), self.finished_at is not None)

    def touches(self, segment_id: str) -> bool:
        return segment_id in self.segment_ids or segment_id in self.tasks

    def with_changes(self, **changes: Any) -> Job:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "request_id": self.request_id,
            "command": self.command,
            "segment_ids": list(self.segment_ids),
            "partitions": self.partitions,
            "created_at": self.created_at,
            "reply": self.reply,
            "done": self.done,
            "finished_at": self.finished_at,
            "tasks": {sid: t.to_dict() for sid, t in self.tasks.items()},
            "canceled_at": self.canceled_at,
            "task_digest": self.task_digest,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Job:
        return cls(
            raw["job_id"],
            raw["request_id"],
            raw["command"],
            tuple(raw["segment_ids"]),
            raw["partitions"],
            raw["created_at"],
            raw["reply"],
            {int(k): v for k, v in raw["done"].items()},
            raw["finished_at"],
            {sid: Task.from_dict(t) for sid, t in raw.get("tasks", {}).items()},
            raw.get("canceled_at"),
            raw.get("task_digest"),
        )


@dataclass(frozen=True)
class RegistryMeta:
    ver: int
    offset: int


class RegistryBatch:
    def __init__(self, store: RegistryStore, meta: RegistryMeta) -> None:
        self.keys = store.keys
        self.offset = meta.offset
        self.segments: dict[str, StoredSegment | None] = {}
        self.jobs: dict[str, Job] = {}
        self.requests: dict[str, bytes] = {}
        self.now = 0
        """When the batch is committed (epoch ms): the time recorded for new requests."""
        self.forget_requests: list[str] = []
        self.forget_jobs: list[str] = []
        self.cancel_jobs: dict[str, int] = {}
        """Job id -> when it was canceled: the flag partitions read between chunks."""
        self.outbox: list[OutboxRecord] = []
        self.schedule_writes = ScheduleWrites()
        """One-shot and recurring schedules changed by this batch (`state.schedules`)."""
        self.export_writes = ExportWrites()
        """Exports changed by this batch (`state.export_registry`)."""

    def writes(self) -> Writes:
        keys = self.keys
        writes = Writes(keys.meta)
        for segment_id, segment in self.segments.items():
            if segment is None:
                writes.add("HDEL", keys.segments, segment_id)
            else:
                writes.add("HSET", keys.segments, segment_id, pack(segment.to_dict()))
        for job in self.jobs.values():
            writes.add("HSET", keys.jobs, job.job_id, pack(job.to_dict()))
            writes.add("ZADD", keys.jobs_by_time, "NX", job.created_at, job.job_id)
        for request_id, digest in self.requests.items():
            writes.add("HSET", keys.requests, request_id, digest)
            writes.add("ZADD", keys.requests_by_time, self.now, request_id)
        if self.forget_requests:
            writes.add_many("HDEL", keys.requests, self.forget_requests)
            writes.add_many("ZREM", keys.requests_by_time, self.forget_requests)
        if self.forget_jobs:
            writes.add_many("HDEL", keys.jobs, self.forget_jobs)
            writes.add_many("ZREM", keys.jobs_by_time, self.forget_jobs)
            writes.add_many("HDEL", keys.canceled_jobs, self.forget_jobs)
        for job_id, at in self.cancel_jobs.items():
            writes.add("HSET", keys.canceled_jobs, job_id, at)
        self.schedule_writes.add_to(writes, keys)
        self.export_writes.add_to(writes, keys)
        if self.outbox:
            writes.add("RPUSH", keys.outbox, pack_entry(self.outbox))
        writes.add("HSET", keys.meta, "offset", self.offset)
        return writes


class RegistryStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self.redis = redis
        self.keys = keyspace.registry

    async def load_meta(self) -> RegistryMeta:
        raw = await self.redis.hgetall(self.keys.meta)
        return RegistryMeta(ver=int(raw.get(b"ver", 0)), offset=int(raw.get(b"offset", -1)))

    async def segments(self) -> dict[str, StoredSegment]:
        raw = await self.redis.hgetall(self.keys.segments)
        return {as_text(k): StoredSegment.from_dict(unpack(as_bytes(v))) for k, v in raw.items()}

    async def segment(self, segment_id: str) -> StoredSegment | None:
        blob = await self.redis.hget(self.keys.segments, segment_id)
        return StoredSegment.from_dict(unpack(as_bytes(blob))) if blob else None

    async def job(self, job_id: str) -> Job | None:
        blob = await self.redis.hget(self.keys.jobs, job_id)
        return Job.from_dict(unpack(as_bytes(blob))) if blob else None

    async def recent_job_ids(self, start: int, count: int) -> list[str]:
        """Job ids, newest first (by creation time)."""
        ids = await self.redis.zrevrange(self.keys.jobs_by_time, start, start + count - 1)
        return [as_text(i) for i in ids]  # type: ignore[arg-type]  # no scores asked

    async def jobs(self, job_ids: list[str]) -> list[Job]:
        if not job_ids:
            return []
        blobs = await self.redis.hmget(self.keys.jobs, job_ids)
        return [Job.from_dict(unpack(as_bytes(b))) for b in blobs if b]

    async def job_canceled(self, job_id: str) -> bool:
        """Whether `job_id` was canceled (one HEXISTS: partitions ask between chunks)."""
        return bool(await self.redis.hexists(self.keys.canceled_jobs, job_id))

    async def request_digest(self, request_id: str) -> bytes | None:
        value = await self.redis.hget(self.keys.requests, request_id)
        return as_bytes(value) if value is not None else None

    async def older_than(self, index_key: str, cutoff_ms: int, limit: int = 500) -> list[str]:
        """Ids in a by-time index (`keys.requests_by_time`, `keys.jobs_by_time`) before cutoff."""
        ids = await self.redis.zrangebyscore(index_key, "-inf", f"({cutoff_ms}", start=0, num=limit)
        return [as_text(i) for i in ids]  # type: ignore[arg-type]  # no scores asked

    async def commit(self, expected_ver: int, batch: RegistryBatch) -> int:
        return await fenced_commit(self.redis, "registry", expected_ver, batch.writes())

    async def outbox(self) -> list[list[OutboxRecord]]:
        return await read_outbox(self.redis, self.keys.outbox)

    async def trim_outbox(self, delivered: int, epoch: int) -> bool:
        """Trim acknowledged records, if `epoch` is still the registry's owner epoch."""
        return await trim_outbox(self.redis, self.keys.outbox, self.keys.meta, epoch, delivered)

    async def claim(self, expected_ver: int) -> tuple[int, int]:
        """Become the registry's writer (see `commit.claim`); (ver, epoch)."""
        return await claim(self.redis, "registry", self.keys.meta, expected_ver)
