"""The batch topic fetched on the worker's event loop, without a hop to faust's consumer thread.

faust's aiokafka group consumer lives in faust's consumer thread (an event loop of its own), so
`BatchFetcher.fetch` is a `call_thread` there and back per batch: two cross-thread wake-ups, each
waiting for the GIL and a core on a machine shared with the broker and Redis (the hop map of
`docs/performance.md`, session 8: ~8 ms p50 and up to ~135 ms p99 between aiokafka's buffer and
the event loop). Here the topic stays subscribed in the group (faust assigns, revokes, fences and
reports its partitions, and its offsets are committed through the group consumer, once a second),
but the group consumer keeps its partitions paused (`consumer.app_class(fetch_on_loop=True)`) and
a second aiokafka consumer without a group, started on the event loop that calls `fetch`, is
`assign()`ed exactly the partitions the group gave this worker and reads them.

Where it starts: at every change of the assigned partitions and after every stop of the flow (a
rebalance), before it hands out a record, it is assigned afresh (aiokafka drops what it had
fetched) and each partition is placed where the group would resume: the group's committed offset
(read through the group consumer; none: the app's `auto_offset_reset`), or the state's applied
offset + 1 when the runtime holds it and it is later. Records fetched across a stop of the flow
are dropped (the reader drops what it queued: read again from the committed offsets).

Linger (`LS_EVENTS_FETCH_LINGER_MS`): while events come, each fetch request asks the broker to
wait up to the linger for `LINGER_MIN_BYTES`, so one response carries what came meanwhile; idle
(a fetch waited at least the linger and got nothing), the requests go back to the consumer
settings (`LS_FETCH_MIN_BYTES`, `LS_FETCH_MAX_WAIT_MS`: by default the broker answers at the
first record, and an idle worker asks every 100 ms, not every linger). At 1,000 events/s,
answering at the first record meant a fetch, a batch per partition, a Redis commit and a
produce request for every ~1.6 events: the worker spent ~750-800 us of CPU per event there
against ~134 us at full rate (`docs/performance.md`, session 11). The parameters are the ones
aiokafka's fetcher reads into every request it builds (aiokafka is pinned); a change applies
from the next request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from .consumer import BatchFetcher

__all__ = ["LINGER_MIN_BYTES", "LoopFetcher", "start_offset"]

log = logging.getLogger(__name__)

_COMMITTED_TIMEOUT_S = 10.0
"""Longest the group's committed offsets are waited for (a rebalance may be under way)."""

_RETRY_S = 0.1
"""Wait before placing the partitions again after a failed read of the committed offsets."""

LINGER_MIN_BYTES = 65_536
"""What a lingering fetch asks the broker to gather: far more than a linger's events at a low
rate (so the linger says when it answers), a few hundred events at a high one."""


def start_offset(committed: int | None, applied: int | None) -> int | None:
    """Where a partition's reading starts: the group's committed offset, or the state's applied
    offset + 1 when it is later (None: the consumer's `auto_offset_reset`)."""
    if applied is not None and (committed is None or applied + 1 > committed):
        return applied + 1
    return committed


class LoopFetcher(BatchFetcher):
    """`fetch` with a group-less consumer on the caller's event loop; the rest (assignment, flow,
    commits) is the group consumer's, as for a `BatchFetcher`."""

    def __init__(
        self,
        app: Any,
        topic: str,
        bootstrap: str,
        applied_offset: Callable[[int], int | None],
        fetch_max_wait_ms: int,
        fetch_min_bytes: int = 1,
        linger_ms: int = 0,
    ) -> None:
        super().__init__(app, topic)
        self._bootstrap = bootstrap.split(",")
        self._applied_offset = applied_offset
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._fetch_min_bytes = fetch_min_bytes
        self._linger_ms = linger_ms
        self.lingering = False
        """True while the fetch requests linger (events came), False while idle."""
        self._reader: AIOKafkaConsumer | None = None
        self._placed: tuple[int, frozenset[int]] | None = None
        """(the flow's stop count, the partitions) the reader was assigned and placed for."""

    async def fetch(
        self, tps: Sequence[Any], timeout: float, max_records: int
    ) -> Mapping[Any, list[Any]]:
        """As `BatchFetcher.fetch` (per partition, then waiting up to `timeout` for any), from
        the loop's own consumer; empty while the flow is stopped or when it stopped meanwhile."""
        if not self.flowing:
            return {}
        reader = await self._started()
        placed = await self._place(reader)
        if placed is None:
            return {}
        wanted = [TopicPartition(self.topic, tp.partition) for tp in tps if tp.partition in placed]
        found: dict[Any, list[Any]] = {}
        for tp in wanted:
            found.update(await reader.getmany(tp, timeout_ms=0, max_records=max_records))
        if not found and timeout and wanted:
            found.update(
                await reader.getmany(
                    *wanted, timeout_ms=int(timeout * 1000), max_records=max_records
                )
            )
        if self._linger_ms:
            if found:
                self._linger(reader, True)
            elif wanted and timeout * 1000 >= self._linger_ms:
                self._linger(reader, False)  # nothing for a whole linger or more: idle
        if not self._still_placed():  # a rebalance came while it waited: read again from its end
            return {}
        return found

    def _linger(self, reader: AIOKafkaConsumer, lingering: bool) -> None:
        """Ask the broker to linger in the next fetch requests (events come), or not (idle)."""
        if lingering == self.lingering:
            return
        self.lingering = lingering
        fetcher = reader._fetcher
        if lingering:
            fetcher._fetch_min_bytes = LINGER_MIN_BYTES
            fetcher._fetch_max_wait_ms = self._linger_ms
        else:
            fetcher._fetch_min_bytes = self._fetch_min_bytes
            fetcher._fetch_max_wait_ms = self._fetch_max_wait_ms

    def _flow_stops(self) -> int:
        return int(getattr(self._consumer, "flow_stops", 0))

    def _still_placed(self) -> bool:
        placed = self._placed
        return placed is not None and placed[0] == self._flow_stops() and self.flowing

    async def _started(self) -> AIOKafkaConsumer:
        reader = self._reader
        if reader is None:
            conf = self._app.conf
            reader = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id=f"{conf.broker_client_id}-{self.topic}",
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset=conf.consumer_auto_offset_reset,
                fetch_max_wait_ms=self._fetch_max_wait_ms,
                fetch_min_bytes=self._fetch_min_bytes,
                max_partition_fetch_bytes=conf.consumer_max_fetch_size,
                check_crcs=conf.broker_check_crcs,
                request_timeout_ms=int(conf.broker_request_timeout * 1000),
            )
            await reader.start()
            self._reader = reader
            self.lingering = False
        return reader

    async def _place(self, reader: AIOKafkaConsumer) -> frozenset[int] | None:
        """The partitions the reader reads, assigned and placed for the current assignment and
        flow (None: a rebalance is under way, or the committed offsets could not be read)."""
        stops = self._flow_stops()
        partitions = frozenset(tp.partition for tp in self.assigned())
        if self._placed == (stops, partitions):
            return partitions
        self._placed = None
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        try:
            committed = await asyncio.wait_for(self._committed(tps), _COMMITTED_TIMEOUT_S)
        except Exception as exc:  # a rebalance began, or Kafka unreachable: again next fetch
            log.warning("reading the group's committed %s offsets failed: %r", self.topic, exc)
            await asyncio.sleep(_RETRY_S)
            return None
        if stops != self._flow_stops() or not self.flowing:
            return None  # a rebalance began meanwhile
        reader.assign(tps)  # afresh: what it fetched for the previous assignment is dropped
        starts = {}
        for tp in tps:
            start = start_offset(committed.get(tp), self._applied_offset(tp.partition))
            if start is not None:
                reader.seek(tp, start)
            starts[tp.partition] = start
        self._placed = (stops, partitions)
        log.info("events fetched on the event loop from %s", starts)
        return partitions

    async def _committed(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offsets of `tps`, read through the group consumer (its thread)."""
        thread = self._consumer._thread

        async def in_thread() -> dict[TopicPartition, int | None]:
            consumer = thread._ensure_consumer()
            return {tp: await consumer.committed(tp) for tp in tps}

        return await thread.call_thread(in_thread)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Stop the loop's consumer (the worker stops)."""
        reader, self._reader = self._reader, None
        self._placed = None
        if reader is not None:
            await reader.stop()
