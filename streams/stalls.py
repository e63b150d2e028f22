"""Retries of infrastructure failures, with capped backoff, visible while they last.

Whatever retries (a partition's batch, the control plane's batch, an export run) reports
each failure here under a stable name; `/health` turns any retry older than
`LS_STALL_THRESHOLD_S`, and any partition refused because its state went backwards, into
`degraded` with the name and the error, and `livesegments_retries_total{plane,cause}`
counts the retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from . import metrics
from .failures import StateBehindError, cause_name, describe

__all__ = ["STALLS", "Stall", "Stalls", "retry_forever"]

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.1
BACKOFF_CAP_S = 5.0


@dataclass(frozen=True, slots=True)
class Stall:
    """Something that has been failing since `since` (monotonic seconds)."""

    where: str
    error: str
    since: float
    retries: int
    refused: bool
    """The failure is a refusal an operator must resolve (state behind Kafka)."""

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "where": self.where,
            "error": self.error,
            "seconds": round(now - self.since, 1),
            "retries": self.retries,
            "refused": self.refused,
        }


class Stalls:
    """The failures currently being retried, by name."""

    def __init__(self) -> None:
        self._stalls: dict[str, Stall] = {}

    def failed(self, where: str, exc: BaseException) -> Stall:
        previous = self._stalls.get(where)
        stall = Stall(
            where,
            describe(exc)[:500],
            previous.since if previous else time.monotonic(),
            previous.retries + 1 if previous else 1,
            isinstance(exc, StateBehindError),
        )
        self._stalls[where] = stall
        return stall

    def cleared(self, where: str) -> None:
        if self._stalls.pop(where, None) is not None:
            log.info("%s: recovered", where)

    def report(self, threshold_s: float) -> list[dict[str, object]]:
        """Stalls older than the threshold, and every refusal, oldest first."""
        now = time.monotonic()
        return [
            s.as_dict(now)
            for s in sorted(self._stalls.values(), key=lambda s: s.since)
            if s.refused or now - s.since >= threshold_s
        ]


STALLS = Stalls()
"""The worker's stalls (one worker per process, like the metrics registry)."""


async def retry_forever(
    what: str, work: Callable[[], Awaitable[None]], where: str | None = None, plane: str = "other"
) -> None:
    """Run `work` until it succeeds, retrying failures with capped backoff; never skip it.

    Acknowledging a batch that was not applied would lose it, so the agent waits instead.
    Failures reaching this loop are infrastructure (message faults are isolated before), but
    whatever they are, they are counted and reported in `/health` while they last.
    """
    name = where or what
    delay = BACKOFF_START_S
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stall = STALLS.failed(name, exc)
            metrics.RETRIES.labels(plane, cause_name(exc)).inc()
            if stall.retries == 1 or stall.refused:
                log.exception("%s failed; retrying in %.1fs", what, delay)
            else:
                log.warning("%s failed again (%s); retrying in %.1fs", what, stall.error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_CAP_S)
        else:
            STALLS.cleared(name)
            return
