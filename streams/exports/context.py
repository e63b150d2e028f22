"""The values a run takes and returns (re-exported by `streams.exports.runner`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from state import KeySpace
from state.reads import StateReads

__all__ = ["ExportContext", "RunStatus", "SegmentRunResult"]

RunStatus = Literal["Successful", "Failure", "Skipped"]


@dataclass
class ExportContext:
    """What a run needs: the state (Redis, key space, events partitions) and Kafka."""

    redis: Redis
    keyspace: KeySpace
    partitions: int
    kafka_bootstrap: str
    now_ms: Callable[[], int]

    @property
    def reads(self) -> StateReads:
        return StateReads(self.redis, self.keyspace, self.partitions)


@dataclass(frozen=True)
class SegmentRunResult:
    status: RunStatus
    count: int
    """Members delivered (for a webhook: changes acknowledged), or counted when Skipped."""
    reason: str | None = None
    errors: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)
