"""Where an event's latency goes inside the worker: per-stage timings, for diagnosis only.

Off by default (`LS_STAGE_REPORT_S=0`): every call is then one attribute test. With a report
interval, the events reader and the runtime record monotonic durations per stage (fetch,
decode, profile load, apply, Redis commit, publish, acknowledgement; the oldest record's age
(now minus its producer timestamp) when fetched, when its batch starts and when it ends), the
garbage collector's pauses (`gc.callbacks`) and the event
loop's lag (a 10 ms sleeper's overshoot); every interval the worker logs one line
`stage timings {json}` with count / p50 / p90 / p99 / max in ms per stage, and starts over.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from typing import Any

__all__ = ["STAGES", "StageClock"]

log = logging.getLogger(__name__)

_LAG_TICK_S = 0.01


def _summary(values: list[float]) -> dict[str, float]:
    data = sorted(values)
    n = len(data)
    return {
        "n": n,
        "p50": round(data[n // 2] * 1000, 2),
        "p90": round(data[min(n - 1, round(0.9 * (n - 1)))] * 1000, 2),
        "p99": round(data[min(n - 1, round(0.99 * (n - 1)))] * 1000, 2),
        "max": round(data[-1] * 1000, 2),
    }


class StageClock:
    """Durations (seconds) by stage name, summarised and reset by `report`."""

    def __init__(self) -> None:
        self.enabled = False
        self.samples: dict[str, list[float]] = {}
        self._gc_started = 0.0

    def add(self, stage: str, seconds: float) -> None:
        if self.enabled:
            self.samples.setdefault(stage, []).append(seconds)

    def age(self, stage: str, timestamps_ms: list[int]) -> None:
        """The oldest of Kafka record timestamps (producer's create time), now."""
        if self.enabled and timestamps_ms:
            self.add(stage, time.time() - min(timestamps_ms) / 1000)

    def report(self) -> dict[str, Any]:
        samples, self.samples = self.samples, {}
        return {stage: _summary(values) for stage, values in sorted(samples.items()) if values}

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.monotonic()
        elif self._gc_started:
            self.add(f"gc{info.get('generation', '?')}", time.monotonic() - self._gc_started)

    async def run(self, interval: float) -> None:
        """Record GC pauses and loop lag, log a summary every `interval` s (until cancelled)."""
        self.enabled = True
        gc.callbacks.append(self._on_gc)
        loop = asyncio.get_running_loop()
        reported = loop.time()
        try:
            while True:
                before = loop.time()
                await asyncio.sleep(_LAG_TICK_S)
                now = loop.time()
                self.add("loop_lag", max(0.0, now - before - _LAG_TICK_S))
                if now - reported >= interval:
                    reported = now
                    log.info("stage timings %s", json.dumps(self.report()))
        finally:
            gc.callbacks.remove(self._on_gc)
            self.enabled = False


STAGES = StageClock()
"""The worker's one clock (a process runs one events reader)."""
