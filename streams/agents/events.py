"""The events reader: the events partitions read in batches, without faust's per-message streams.

faust's stream machinery costs ~50 µs per message, aiokafka's `getmany` ~3 µs. The events topic
stays in the app's consumer group (faust assigns, revokes and seeks its partitions), but faust's
fetcher leaves it to this reader (`engine.consumer.app_class(batch_topics=...)`), whose fetcher
(`LS_EVENTS_FETCH`: `engine.loop_fetcher.LoopFetcher` on the event loop, or `BatchFetcher`
through faust's consumer thread) takes up to
`LS_BATCH_SIZE` records of each assigned events partition per `getmany` and hands each
partition's list, in order, to `PartitionRuntime.process`. Partitions are lanes: each applies its
partition's batches one at a time, in order, while the others apply theirs; a slow partition (an
expiry holding its lock, a long commit) does not hold the others' events.

Fetch rhythm: every assigned partition is asked for at every `getmany`, busy or not, and what
comes for a busy partition is queued (at most `LS_BATCH_SIZE` records are asked for while its
queue holds fewer); its lane starts the next batch from the queue as soon as the previous one is
done. aiokafka asks the broker for a partition again only once its buffered records were taken,
so leaving them buffered while the partition was busy (as this reader did before) made what
arrived meanwhile wait on the broker: the next batch started with records as old as the last one,
then waited for a fresh fetch. Before the first fetch the heap is frozen after a full collection,
and the worker's automatic full collections are turned off (`engine.collector`).

Offsets: Kafka gets only what the state applied (`PartitionRuntime.applied_offset` + 1), from a
timer, when partitions are revoked and when the worker stops; never a fetched, unapplied record.
After a crash the group resumes at or before the state's offset, and the state skips what it
applied.

Rebalance fence: faust stops the consumer's flow before it sends `on_partitions_revoked`. No batch
starts once the flow is stopped (records fetched or queued meanwhile are dropped: faust seeks
every partition back to its committed offset after the rebalance, and the `LoopFetcher` places
its own consumer there before it hands out another record), and `revoked()` waits for
the batches in progress, commits the applied offsets and forgets the partitions before the
consumer rejoins, so a new owner starts after this one stopped. A batch that outlives half the
session timeout (Redis unreachable, retried forever) is cancelled: the state's own fence (claim,
versioned commit) keeps a late writer out in any case.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from ..engine import PartitionRuntime, hops
from ..engine.collector import no_automatic_full_collections
from ..engine.consumer import BatchFetcher
from ..engine.loop_fetcher import LoopFetcher
from ..engine.stages import STAGES
from ..messages import Incoming
from ..stalls import retry_forever

__all__ = ["EventsReader", "fetcher", "register"]

log = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.5
"""Longest one `getmany` waits when nothing was fetched (it returns as soon as records come)."""

_UNASSIGNED_WAIT_S = 0.05
"""How often the reader looks for an assignment while it has none."""

COMMIT_INTERVAL_S = 1.0
"""How often applied offsets are committed to Kafka (the state holds its own offsets)."""

_BUSY_WAIT_S = 0.005
"""Longest one `getmany` waits while some partition's queue is full (it is asked for again once
its lane took from it)."""


def incoming(record: Any) -> Incoming:
    """An aiokafka `ConsumerRecord` as the runtime takes it."""
    headers = record.headers
    return Incoming(
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple((name, bytes(value or b"")) for name, value in headers) if headers else (),
    )


class EventsReader:
    """Reads the events partitions in batches and commits the offsets the state applied."""

    def __init__(
        self,
        fetcher: BatchFetcher,
        runtime: PartitionRuntime,
        batch_size: int,
        fence_timeout_s: float,
    ) -> None:
        self._fetcher = fetcher
        self._runtime = runtime
        self._batch_size = batch_size
        self._fence_timeout_s = fence_timeout_s
        self._lanes: dict[int, asyncio.Future[None]] = {}
        """Partition -> its lane: applies the partition's queued records, one batch at a time."""
        self._queued: dict[int, list[Any]] = {}
        """Partition -> records fetched and not started yet (in offset order)."""
        self._committed: dict[int, int] = {}
        """Partition -> the next offset this worker last committed for it."""
        self._stopping = False

    async def run(self) -> None:
        """Fetch until the worker stops: every assigned partition is asked for, busy or not, so
        what arrives while a partition applies a batch is fetched meanwhile and queued, and its
        lane starts the next batch from the queue as soon as the previous one is done."""
        fetcher = self._fetcher
        freezer = getattr(self._runtime, "freezer", None)
        if freezer is not None:  # faust's and the libraries' objects: no full collection later
            freezer.freeze(full=True)
        lanes, queued, most = self._lanes, self._queued, self._batch_size
        while not self._stopping:
            if not fetcher.flowing:
                queued.clear()  # read again from the committed offsets after the rebalance
                await fetcher.wait_flowing()
                continue
            tps = fetcher.assigned()
            if not tps:
                await asyncio.sleep(_UNASSIGNED_WAIT_S)
                continue
            for tp in tps:  # a lane that ended at a rebalance left its queue: go on with it
                if queued.get(tp.partition) and tp.partition not in lanes:
                    lanes[tp.partition] = asyncio.ensure_future(self._lane(tp.partition))
            room = [tp for tp in tps if len(queued.get(tp.partition, ())) < most]
            if not room:  # a backlog: every queue holds a batch, and its lane runs
                await asyncio.wait(list(lanes.values()), return_when=asyncio.FIRST_COMPLETED)
                continue
            asked = time.monotonic()
            records = await fetcher.fetch(
                room, _BUSY_WAIT_S if len(room) < len(tps) else _IDLE_WAIT_S, most
            )
            now = time.monotonic()
            STAGES.add("fetch_call", now - asked)
            if not records or not fetcher.flowing or self._stopping:
                continue  # nothing, or a rebalance began: read again from the committed offsets
            fetcher.note_inbound(records, now)
            if STAGES.enabled:
                STAGES.age("age_fetched", [r.timestamp for b in records.values() for r in b])
                hops.stamp_loop(records, now)
            for tp, batch in records.items():
                partition = tp.partition
                queued.setdefault(partition, []).extend(batch)
                if partition not in lanes:
                    lanes[partition] = asyncio.ensure_future(self._lane(partition))

    async def _lane(self, partition: int) -> None:
        """Apply the partition's queued records in batches of at most `batch_size`, in order,
        until the queue is empty or the flow stops (a rebalance: the queue is dropped)."""
        fetcher, queued, most = self._fetcher, self._queued, self._batch_size
        try:
            while not self._stopping and fetcher.flowing:
                waiting = queued.get(partition)
                if not waiting:
                    break
                batch, queued[partition] = waiting[:most], waiting[most:]
                await self._batch(partition, batch)
        finally:
            if self._lanes.get(partition) is asyncio.current_task():
                del self._lanes[partition]

    async def _batch(self, partition: int, batch: Sequence[Any]) -> None:
        """Apply one batch (retried while the infrastructure fails)."""
        started = time.monotonic()
        messages = [incoming(r) for r in batch]
        if STAGES.enabled:
            STAGES.age("age_lane_start", [r.timestamp for r in batch])
            hops.start(partition, batch, started)
        try:
            await retry_forever(
                f"{self._fetcher.topic}[{partition}] batch at {messages[0].offset}",
                functools.partial(self._runtime.process, partition, messages),
                where=f"partition {partition}",
                plane="events",
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("events batch of partition %d failed", partition)
        finally:
            if STAGES.enabled:
                STAGES.age("age_lane_end", [r.timestamp for r in batch])
            STAGES.add("lane", time.monotonic() - started)

    async def fence(self) -> None:
        """Wait for the batches in progress; cancel them past the fence timeout."""
        batches = list(self._lanes.values())
        if not batches:
            return
        _, pending = await asyncio.wait(batches, timeout=self._fence_timeout_s)
        if pending:
            log.warning(
                "events batches still running after %.1fs at a rebalance or stop; cancelling them",
                self._fence_timeout_s,
            )
            for batch in pending:
                batch.cancel()
            await asyncio.wait(pending)

    async def commit_applied(self, partitions: Sequence[int] | None = None) -> None:
        """Commit `applied offset + 1` of the (given) assigned partitions that moved on."""
        wanted = {tp.partition for tp in self._fetcher.assigned()}
        if partitions is not None:
            wanted &= set(partitions)
        offsets = {}
        for partition in sorted(wanted):
            applied = self._runtime.applied_offset(partition)
            if applied is not None and applied + 1 > self._committed.get(partition, -1):
                offsets[partition] = applied + 1
        if not offsets:
            return
        try:
            await self._fetcher.commit(offsets)
        except Exception as exc:  # a rebalance, or Kafka unreachable: the next one catches up
            log.warning("committing events offsets %s failed: %r", offsets, exc)
            return
        self._committed.update(offsets)
        log.debug("committed events offsets %s", offsets)

    async def revoked(self, partitions: Sequence[int]) -> None:
        """The group takes `partitions` away: finish, commit, forget (before it rejoins)."""
        await self.fence()
        await self.commit_applied(partitions)
        self._runtime.forget(partitions)
        for partition in partitions:
            self._committed.pop(partition, None)
            self._queued.pop(partition, None)

    async def stop(self) -> None:
        """The worker stops: no new batch, finish the current one, commit what it applied."""
        self._stopping = True
        await self.fence()
        await self.commit_applied()
        await self._fetcher.close()
        log.info("events reader stopped; committed offsets %s", self._committed)


def fetcher(app: Any, topic: str, runtime: PartitionRuntime) -> BatchFetcher:
    """The fetcher `LS_EVENTS_FETCH` names: on the event loop (`loop`), or through faust's
    consumer thread (`thread`); the app was built for it (`app_class(fetch_on_loop=...)`)."""
    settings = runtime.settings
    if settings.events_fetch == "thread":
        return BatchFetcher(app, topic)
    return LoopFetcher(
        app,
        topic,
        settings.kafka_bootstrap,
        runtime.applied_offset,
        settings.fetch_max_wait_ms,
        settings.fetch_min_bytes,
        settings.events_fetch_linger_ms,
    )


def register(
    app: Any, topic: Any, runtime: PartitionRuntime, batch_size: int, fence_timeout_s: float
) -> EventsReader:
    """Subscribe `topic` in the app's group and read it with an `EventsReader`."""
    app.topics.add(topic)  # subscribed; faust's fetcher leaves it alone (app_class)
    reader = EventsReader(
        fetcher(app, topic.get_topic_name(), runtime), runtime, batch_size, fence_timeout_s
    )

    @app.task  # type: ignore[untyped-decorator]
    async def events() -> None:
        no_automatic_full_collections()  # the worker's process only, not the reader's tests
        loop = asyncio.get_running_loop()
        log.info("events reader: event loop %s.%s", type(loop).__module__, type(loop).__name__)
        await reader.run()

    if runtime.settings.stage_report_s > 0:

        @app.task  # type: ignore[untyped-decorator]
        async def stage_timings() -> None:
            hops.install_kafka_stamps()
            await STAGES.run(runtime.settings.stage_report_s)

    @app.timer(interval=COMMIT_INTERVAL_S)  # type: ignore[untyped-decorator]
    async def commit_events_offsets() -> None:
        if app.consumer.flow_active:
            await reader.commit_applied()

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def stop_events(sender: Any, **kwargs: Any) -> None:
        await reader.stop()

    return reader
