"""The trend snapshot timer: every active segment's member count, on the leader only.

A point is stamped with the start of its interval (`interval_start`), and the store keeps one
point per instant: when the leader changes mid-interval (the old one killed, or two leaders
for a moment during a rebalance) the new leader's snapshot replaces the old one's, so every
interval has one point at most.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from state.reads import StateReads
from state.trends import TrendStore

from .. import clock

__all__ = ["interval_start", "register", "take_snapshot"]

log = logging.getLogger(__name__)


def interval_start(at_ms: int, interval_ms: int) -> int:
    """The start of the snapshot interval `at_ms` falls in (intervals counted from epoch 0)."""
    return at_ms - at_ms % interval_ms


async def take_snapshot(
    reads: StateReads, trends: TrendStore, retention_ms: int, now_ms: int | None = None
) -> dict[str, int]:
    """Record one point per active segment; trim every trend; return the counts written."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    segments = await reads.segments()
    active = sorted(sid for sid, seg in segments.items() if seg.active)
    counts = await reads.member_counts(active)
    await trends.record(counts, now, retention_ms)
    await trends.trim([sid for sid in segments if sid not in counts], now, retention_ms)
    await trends.forget_others(segments)
    return counts


def register(
    app: Any, reads: StateReads, trends: TrendStore, interval_s: float, retention_s: int
) -> Any:
    interval_ms = max(1, int(interval_s * 1000))

    @app.timer(interval=interval_s, on_leader=True, name="trend_snapshots")  # type: ignore[untyped-decorator]
    async def snapshots() -> None:
        try:
            at = interval_start(clock.now_ms(), interval_ms)
            counts = await take_snapshot(reads, trends, retention_s * 1000, now_ms=at)
            log.info("trend snapshot: %d active segments", len(counts))
        except Exception:
            log.exception("trend snapshot failed; retried at the next interval")

    return snapshots
