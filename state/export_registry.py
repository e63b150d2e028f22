"""Exports kept in the registry: their definitions (with secrets), times and schedules.

An export lives in a hash of its stored bodies; a scheduled one also in a sorted set by its
next run. Both are written only by the control agent, through `ExportWrites` inside a
`RegistryBatch`, so they commit atomically with the control offset; the exporter agent, its
schedule timer and the HTTP API only read them (`ExportStore`). The stored definition holds
the destination's secrets: whoever shows it masks them (`streams.exports.model`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis

from ._codec import pack, unpack
from ._redis import as_bytes, as_text
from .commit import Writes
from .keys import KeySpace, RegistryKeys

__all__ = ["ExportStore", "ExportWrites", "StoredExport"]


@dataclass(frozen=True)
class StoredExport:
    """One export as the registry keeps it."""

    export_id: str
    definition: dict[str, Any]
    """The export definition as accepted (`streams.exports.model.parse_export`), secrets in."""
    created_at: int
    modified_at: int
    next_at: int | None = None
    """The next scheduled run (epoch ms); None without a schedule."""
    last_job: str | None = None
    """The id of the job of its latest run."""

    @property
    def segment_ids(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.definition.get("segments") or ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.export_id,
            "definition": self.definition,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
            "next_at": self.next_at,
            "last_job": self.last_job,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StoredExport:
        return cls(
            raw["id"],
            raw["definition"],
            raw["created_at"],
            raw["modified_at"],
            raw.get("next_at"),
            raw.get("last_job"),
        )

    def with_changes(self, **changes: Any) -> StoredExport:
        return replace(self, **changes)


class ExportWrites:
    """Export changes of one registry batch (None = remove)."""

    def __init__(self) -> None:
        self.exports: dict[str, StoredExport | None] = {}

    def add_to(self, writes: Writes, keys: RegistryKeys) -> None:
        for export_id, export in self.exports.items():
            if export is None:
                writes.add("HDEL", keys.exports, export_id)
                writes.add("ZREM", keys.exports_due, export_id)
                continue
            writes.add("HSET", keys.exports, export_id, pack(export.to_dict()))
            if export.next_at is None:
                writes.add("ZREM", keys.exports_due, export_id)
            else:
                writes.add("ZADD", keys.exports_due, export.next_at, export_id)


class ExportStore:
    """Reads of the exports (the control agent, the exporter, the HTTP API)."""

    def __init__(self, redis: Redis, keyspace: KeySpace) -> None:
        self.redis = redis
        self.keys = keyspace.registry

    async def export(self, export_id: str) -> StoredExport | None:
        blob = await self.redis.hget(self.keys.exports, export_id)
        return StoredExport.from_dict(unpack(as_bytes(blob))) if blob else None

    async def exports(self) -> list[StoredExport]:
        """Every export, by id."""
        raw = await self.redis.hgetall(self.keys.exports)
        found = [StoredExport.from_dict(unpack(as_bytes(v))) for v in raw.values()]
        return sorted(found, key=lambda e: e.export_id)

    async def due(self, now_ms: int, limit: int = 100) -> list[tuple[str, int]]:
        """(export id, due ms) of the scheduled exports due at or before `now_ms`."""
        found = await self.redis.zrangebyscore(
            self.keys.exports_due, "-inf", now_ms, start=0, num=limit, withscores=True
        )
        return [(as_text(i), int(score)) for i, score in found]  # type: ignore[str-unpack, arg-type]
