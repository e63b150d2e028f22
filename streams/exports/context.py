"""The values a run takes and returns (re-exported by `streams.exports.runner`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from redis.asyncio import Redis

from state import KeySpace
from state.reads import StateReads

from ..settings import Settings
from .policy import ExportPolicy

__all__ = ["ExportContext", "RunStatus", "SegmentRunResult"]

RunStatus = Literal["Successful", "Failure", "Skipped"]


def _default_policy() -> ExportPolicy:
    return ExportPolicy.from_settings(Settings())


@dataclass
class ExportContext:
    """What a run needs: the state (Redis, key space, events partitions), Kafka, and the
    installation's rules (export root, reserved topics, webhook timeout and backoff cap)."""

    redis: Redis
    keyspace: KeySpace
    partitions: int
    kafka_bootstrap: str
    now_ms: Callable[[], int]
    policy: ExportPolicy = field(default_factory=_default_policy)
    webhook_timeout_s: float = 10.0
    webhook_max_backoff_s: float = 30.0

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: Redis, partitions: int, now_ms: Callable[[], int]
    ) -> ExportContext:
        return cls(
            redis,
            KeySpace(settings.key_prefix),
            partitions,
            settings.kafka_bootstrap,
            now_ms,
            ExportPolicy.from_settings(settings),
            settings.webhook_timeout_s,
            settings.webhook_max_backoff_s,
        )

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
