"""Reads for the insights (membership sets per partition, every customer's data), the store
of suggested segments (written by the analysis job that suggests them, read when one is
previewed or accepted) and the live progress of analysis jobs.

Suggestions are analysis results, not engine state: each expires after its time to live
(`LS_SUGGESTION_TTL_S`); accepting one sends a normal `create` command through the control
topic. Progress is telemetry of the process running the analysis (like a partition's task
progress in its meta), not registry state: it expires with the job's retention.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgpack

from .index import member_pages
from .profile import Profile
from .reads import StateReads

__all__ = ["ProgressStore", "SuggestionStore", "all_customers", "partition_member_sets"]


async def partition_member_sets(
    reads: StateReads, partition: int, segment_ids: Sequence[str]
) -> dict[str, set[str]]:
    """Segment id -> its members on one events partition (from its bitmap)."""
    keys = reads.keyspace.partition(partition)
    found: dict[str, set[str]] = {}
    for segment_id in segment_ids:
        members = found[segment_id] = set()
        async for ids in member_pages(reads.redis, keys, segment_id, 4096):
            members.update(ids)
    return found


async def all_customers(reads: StateReads) -> AsyncIterator[Profile]:
    """Every stored profile, one at a time (pages of MGET underneath)."""
    async for page in reads.all_profiles():
        for profile in page:
            yield profile


class SuggestionStore:
    """Suggested segments by id, each expiring `ttl_s` after it was (last) suggested."""

    def __init__(self, reads: StateReads, ttl_s: float) -> None:
        self.redis = reads.redis
        self.keys = reads.keyspace.registry
        self.ttl_ms = max(1, int(ttl_s * 1000))

    async def save(self, suggestions: Sequence[dict[str, Any]]) -> None:
        if not suggestions:
            return
        pipe = self.redis.pipeline(transaction=False)
        for suggestion in suggestions:
            key = self.keys.suggestion(suggestion["suggestion_id"])
            pipe.set(key, msgpack.packb(suggestion), px=self.ttl_ms)
        await pipe.execute()

    async def get(self, suggestion_id: str) -> dict[str, Any] | None:
        blob = await self.redis.get(self.keys.suggestion(suggestion_id))
        if blob is None:
            return None
        return dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))


class ProgressStore:
    """Where a running analysis job is: `{"stage", "done", "total", "at"}`."""

    def __init__(self, reads: StateReads, ttl_s: float) -> None:
        self.redis = reads.redis
        self.keys = reads.keyspace.registry
        self.ttl_ms = max(1, int(ttl_s * 1000))

    async def set(self, job_id: str, stage: str, done: int, total: int, at: int) -> None:
        body = {"stage": stage, "done": done, "total": total, "at": at}
        await self.redis.set(self.keys.analysis_progress(job_id), json.dumps(body), px=self.ttl_ms)

    async def get(self, job_id: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self.keys.analysis_progress(job_id))
        return None if raw is None else dict(json.loads(raw))
