"""The fenced shard protocol, one implementation for both planes.

A shard is an events partition (`state.PartitionStore`) or the registry
(`state.RegistryStore`): state, offset and the outbox of messages to publish, committed
together in one Lua script. Whoever takes a shard over first *claims* it (bumps its version
and owner epoch, so a former owner can neither commit nor trim any more), then publishes again
what the outbox still holds (committed before a crash, maybe never delivered; consumers drop
repeats by `seq` or `request_id`) and trims it with its own epoch. After each commit the owner
publishes the new records and trims them once Kafka acknowledged them; a record is never
trimmed before that. The outbox holds one entry per commit (`state.outbox`): trims count
entries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from state import OutboxRecord

from .publisher import Publisher

__all__ = ["ShardStore", "deliver", "take_over"]

log = logging.getLogger(__name__)


class ShardStore(Protocol):
    """What the protocol needs of a store: claim, read and trim its outbox."""

    async def claim(self, expected_ver: int) -> tuple[int, int]: ...

    async def outbox(self) -> list[list[OutboxRecord]]: ...

    async def trim_outbox(self, delivered: int, epoch: int) -> bool: ...


async def take_over(
    store: ShardStore, expected_ver: int, publisher: Publisher, name: str
) -> tuple[int, int]:
    """Claim the shard, then publish and trim what its outbox still holds; (ver, epoch)."""
    ver, epoch = await store.claim(expected_ver)
    pending = await store.outbox()
    if pending:
        await deliver(store, publisher, pending, epoch)
        log.info(
            "%s: republished %d outbox records of %d commits",
            name,
            sum(map(len, pending)),
            len(pending),
        )
    return ver, epoch


async def deliver(
    store: ShardStore,
    publisher: Publisher,
    entries: Sequence[Sequence[OutboxRecord]],
    epoch: int,
) -> None:
    """Publish committed outbox entries (one per commit) and trim them once Kafka acknowledged
    every record."""
    await publisher.publish([record for entry in entries for record in entry])
    await store.trim_outbox(len(entries), epoch)
