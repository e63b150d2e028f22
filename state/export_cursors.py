"""Export delivery state: what each incremental destination has already received.

Keys of one export share the hash tag ``{<prefix>:export:<export id>}`` (one Redis Cluster
slot per export), so a run's multi-key set operations (SDIFFSTORE of delivered minus current
members) touch one slot. Per (export, segment):

- ``{<prefix>:export:<id>}:delivered:<segment>`` (set): customer ids the destination has
  acknowledged as members. Updated after each acknowledged batch, for exactly that batch, so
  an interrupted run resumes where it stopped.
- ``{<prefix>:export:<id>}:run:<segment>:<run id>:current`` / ``:removed`` (sets, with a TTL):
  scratch sets of one run (the members seen, the members to remove); deleted at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from ._redis import as_text
from .connect import transaction
from .keys import KeySpace

__all__ = ["DeliveredStore", "ExportKeys", "export_keys", "forget_export"]

SCRATCH_TTL_S = 86_400
"""How long a run's scratch sets live if the run dies before deleting them."""


@dataclass(frozen=True)
class ExportKeys:
    tag: str

    def delivered(self, segment_id: str) -> str:
        """set: customer ids of `segment_id` the destination holds (acknowledged)."""
        return f"{self.tag}:delivered:{segment_id}"

    def run_current(self, segment_id: str, run_id: str) -> str:
        """set (scratch, TTL): the members seen by run `run_id`."""
        return f"{self.tag}:run:{segment_id}:{run_id}:current"

    def run_removed(self, segment_id: str, run_id: str) -> str:
        """set (scratch, TTL): delivered customers no longer members, still to send."""
        return f"{self.tag}:run:{segment_id}:{run_id}:removed"


def export_keys(keyspace: KeySpace, export_id: str) -> ExportKeys:
    return ExportKeys(f"{{{keyspace.prefix}:export:{export_id}}}")


class DeliveredStore:
    """The delivered set of one (export, segment) and the scratch sets of one run."""

    def __init__(
        self, redis: Redis, keyspace: KeySpace, export_id: str, segment_id: str, run_id: str
    ) -> None:
        self.redis = redis
        keys = export_keys(keyspace, export_id)
        self.delivered = keys.delivered(segment_id)
        self.current = keys.run_current(segment_id, run_id)
        self.removed = keys.run_removed(segment_id, run_id)

    async def see(self, customer_ids: Sequence[str]) -> list[str]:
        """Record `customer_ids` as current members; returns those first seen in this run and
        not delivered yet (the additions), in the given order. One round trip."""
        if not customer_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.sadd(self.current, customer_id)
        pipe.expire(self.current, SCRATCH_TTL_S)
        pipe.smismember(self.delivered, list(customer_ids))
        raw = await pipe.execute()
        fresh, held = raw[: len(customer_ids)], raw[-1]
        return [c for c, new, was in zip(customer_ids, fresh, held, strict=True) if new and not was]

    async def prepare_removed(self) -> int:
        """Delivered minus current into the run's removed set; returns its size."""
        count = int(await self.redis.sdiffstore(self.removed, [self.delivered, self.current]))
        await self.redis.expire(self.removed, SCRATCH_TTL_S)
        return count

    async def pop_removed(self, count: int) -> list[str]:
        """Up to `count` customers to remove, each returned once."""
        raw: list[bytes | str] | None = await self.redis.spop(self.removed, count)  # type: ignore[assignment]
        return sorted(as_text(r) for r in raw or [])

    async def acknowledge(self, added: Sequence[str], removed: Sequence[str]) -> None:
        """The destination acknowledged a batch: record exactly its changes (atomically)."""
        pipe = await transaction(self.redis)  # MULTI/EXEC, safe on a cluster
        if added:
            pipe.sadd(self.delivered, *added)
        if removed:
            pipe.srem(self.delivered, *removed)
        await pipe.execute()

    async def delivered_ids(self) -> set[str]:
        return {as_text(m) for m in await self.redis.smembers(self.delivered)}

    async def cleanup(self) -> None:
        await self.redis.delete(self.current, self.removed)


async def forget_export(redis: Redis, keyspace: KeySpace, export_id: str) -> int:
    """Delete every key of `export_id` (when the export is deleted); returns how many."""
    tag = export_keys(keyspace, export_id).tag
    pattern = tag.replace("[", "\\[").replace("*", "\\*").replace("?", "\\?") + ":*"
    keys = [k async for k in redis.scan_iter(match=pattern, count=500)]
    return int(await redis.unlink(*keys)) if keys else 0
