"""The expiry timer: time windows move with no new event, memberships follow within a second."""

from __future__ import annotations

import logging
from typing import Any

from ..engine import PartitionRuntime
from ..engine.runtime import EXPIRY_CHUNK

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(app: Any, events_topic: str, runtime: PartitionRuntime, interval: float) -> Any:
    # Only the customers whose timer is due are read (a sorted set by due time): no scan.
    @app.timer(interval=interval)  # type: ignore[untyped-decorator]
    async def expire() -> None:
        for tp in sorted(app.assignor.assigned_actives()):
            if tp.topic != events_topic or runtime.refused(tp.partition):
                continue  # a refused partition (state behind Kafka) is reported in /health
            try:
                while await runtime.expire_due(tp.partition) >= EXPIRY_CHUNK:
                    pass  # the lock is released between chunks: events come in between
            except Exception:
                log.exception("expiry on partition %d failed; retried next tick", tp.partition)

    return expire
