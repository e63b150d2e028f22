"""Member-count snapshots per segment, for trend charts.

One sorted set per segment, ``{<prefix>:registry}:trend:<id>``: score = snapshot time (epoch
ms), member = ``"<time>:<count>"`` (unique per instant). Written by the leader's snapshot
timer (`streams.agents.snapshots`), trimmed to the retention on every write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from .connect import transaction
from .keys import KeySpace

__all__ = ["TrendPoint", "TrendStore"]


@dataclass(frozen=True)
class TrendPoint:
    at: int
    """Epoch ms of the snapshot."""
    members: int

    def to_dict(self) -> dict[str, int]:
        return {"at": self.at, "members": self.members}


class TrendStore:
    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self.redis = redis
        self.tag = keyspace.registry.tag

    def key(self, segment_id: str) -> str:
        return f"{self.tag}:trend:{segment_id}"

    async def record(self, counts: Mapping[str, int], at_ms: int, retention_ms: int) -> None:
        """Add one point per segment at `at_ms` and drop the points older than the retention.

        A point already at `at_ms` is replaced, atomically (MULTI; one hash tag, one slot):
        the snapshot timer stamps its points with the start of their interval, so a second
        snapshot of one interval (an old and a new leader during a leader change) leaves one
        point, not two."""
        if not counts:
            return
        pipe = await transaction(self.redis)  # MULTI/EXEC, safe on a cluster
        for segment_id, count in counts.items():
            key = self.key(segment_id)
            pipe.zremrangebyscore(key, at_ms, at_ms)
            pipe.zadd(key, {f"{at_ms}:{count}": at_ms})
            pipe.zremrangebyscore(key, "-inf", f"({at_ms - retention_ms}")
        await pipe.execute()

    async def trim(self, segment_ids: Iterable[str], now_ms: int, retention_ms: int) -> None:
        """Apply the retention to segments that got no new point (inactive ones)."""
        pipe = self.redis.pipeline(transaction=False)
        for segment_id in segment_ids:
            pipe.zremrangebyscore(self.key(segment_id), "-inf", f"({now_ms - retention_ms}")
        await pipe.execute()

    async def forget_others(self, keep: Iterable[str]) -> int:
        """Delete the trends of segments not in `keep` (deleted segments); returns how many."""
        wanted = {self.key(s) for s in keep}
        gone = [
            key
            async for raw in self.redis.scan_iter(match=f"{self.tag}:trend:*", count=500)
            if (key := raw.decode()) not in wanted
        ]
        if gone:
            await self.redis.unlink(*gone)
        return len(gone)

    async def points(
        self, segment_id: str, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[TrendPoint]:
        low = "-inf" if from_ms is None else from_ms
        high = "+inf" if to_ms is None else to_ms
        raw = await self.redis.zrangebyscore(self.key(segment_id), low, high)
        points = []
        for item in raw:
            text = item.decode() if isinstance(item, bytes) else str(item)
            at, _, count = text.partition(":")
            points.append(TrendPoint(int(at), int(count)))
        return points
