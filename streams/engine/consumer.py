"""Faust's aiokafka consumer, with a configurable fetch wait and topics read in batches.

faust-streaming 0.15.3 builds its worker consumer with `fetch_max_wait_ms=1500` fixed.
aiokafka fetches a partition again only after its previous records were drained, and an
in-flight fetch for the other partitions may wait up to that long on the broker: under a
steady load some partitions then lag by a constant ~1.5 s (measured: a flat p50 of 1.5 s at
1,000 events/s, with the worker keeping up). This transport lets `LS_FETCH_MAX_WAIT_MS` set it.

faust's stream machinery costs ~50 µs per message (an empty agent body measured 47.5 µs per
message; aiokafka's `getmany` ~3 µs). A topic named in `batch_topics` stays subscribed in the
app's consumer group (its partitions are assigned, revoked, seeked to the committed offsets and
reported by faust as any other), but faust's fetcher never takes its records: they are read with
`BatchFetcher.fetch`, a `getmany` on the same aiokafka consumer (or, with `fetch_on_loop`, by a
`loop_fetcher.LoopFetcher`: the group consumer keeps them paused and a group-less consumer on the
worker's event loop reads them), and their offsets are committed with `BatchFetcher.commit` by
whoever reads them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError
from aiokafka.structs import OffsetAndMetadata
from faust.transport.drivers import aiokafka as faust_aiokafka

from .producer import IdempotentProducer

__all__ = ["BatchFetcher", "app_class", "known_partitions"]

log = logging.getLogger(__name__)


def app_class(
    fetch_max_wait_ms: int,
    batch_topics: Iterable[str] = (),
    fetch_min_bytes: int = 1,
    fetch_on_loop: bool = False,
) -> type[faust.App]:
    """A `faust.App` whose worker consumer waits at most `fetch_max_wait_ms` per fetch for
    `fetch_min_bytes` (aiokafka's default 1: the broker answers as soon as any record came) and
    leaves the partitions of `batch_topics` to a `BatchFetcher`; with `fetch_on_loop` the group
    consumer never fetches them (paused in aiokafka at every assignment) and a `LoopFetcher`
    reads them with its own consumer. The app's consumer counts the flow's stops
    (`flow_stops`: a rebalance began) for the `LoopFetcher`."""
    own = frozenset(batch_topics)

    class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
            consumer._fetch_min_bytes = fetch_min_bytes
            return consumer

        async def on_partitions_assigned(self, assigned: Any, generation_id: int = 0) -> None:
            # in the consumer thread, right after aiokafka took the assignment (fresh, unpaused
            # partition states): the batch topics' partitions are the LoopFetcher's to read
            if fetch_on_loop:
                mine = [TopicPartition(tp.topic, tp.partition) for tp in assigned]
                paused = [tp for tp in mine if tp.topic in own]
                self._ensure_consumer().pause(*paused)
                log.info("paused in the group consumer (read on the event loop): %s", paused)
            await super().on_partitions_assigned(assigned, generation_id)

    class LsConsumer(faust_aiokafka.Consumer):
        # faust's fetcher reads `_active_partitions`: the batch topics are never among them
        def _new_consumer_thread(self) -> Any:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

        def _set_active_tps(self, tps: Any) -> Any:
            active = super()._set_active_tps(tps)
            active.difference_update([tp for tp in active if tp.topic in own])
            return active

        def resume_partitions(self, tps: Iterable[Any]) -> None:
            super().resume_partitions([tp for tp in tps if tp.topic not in own])

        flow_stops = 0
        """How many times the flow stopped (each rebalance stops it before it revokes)."""

        def stop_flow(self) -> None:
            self.flow_stops += 1
            super().stop_flow()

    class Transport(faust_aiokafka.Transport):
        Consumer = LsConsumer
        Producer = IdempotentProducer

    class App(faust.App):
        def _new_transport(self) -> Any:
            return Transport(self.conf.broker_consumer, self)

    return App


def known_partitions(app: Any, topic: str) -> int | None:
    """The partition count of `topic` in the app's consumer's cluster metadata (its cache, kept
    up to date by aiokafka: no request), or None while the consumer or the topic is unknown.
    (faust's `topic_partitions` reads the group leader's snapshot: None on the other members.)"""
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    if consumer is None:
        return None
    partitions = consumer._client.cluster.partitions_for_topic(topic)
    return len(partitions) if partitions else None


class BatchFetcher:
    """`getmany` and offset commits on the app's group consumer, for one batch topic.

    The aiokafka consumer lives in faust's consumer thread; both calls go through its method
    queue (one hop per batch, not per message).
    """

    def __init__(self, app: Any, topic: str) -> None:
        self._app = app
        self.topic = topic

    @property
    def _consumer(self) -> Any:
        return self._app.consumer

    @property
    def flowing(self) -> bool:
        """False from the start of a rebalance until faust resumes the consumer's flow."""
        return bool(self._consumer.flow_active)

    async def wait_flowing(self) -> None:
        await self._consumer.can_resume_flow.wait()

    def assigned(self) -> list[Any]:
        """The topic's partitions assigned to this worker (faust TPs), in partition order."""
        try:
            assignment = self._consumer.assignment()
        except Exception:  # the consumer thread has not started yet
            return []
        return sorted(tp for tp in assignment if tp.topic == self.topic)

    async def fetch(
        self, tps: Sequence[Any], timeout: float, max_records: int
    ) -> Mapping[Any, list[Any]]:
        """Records already fetched for `tps` (waiting up to `timeout` for some), at most
        `max_records` of each partition: aiokafka `ConsumerRecord`s by partition, in offset
        order. Empty while the flow is stopped (a rebalance).

        Per partition, because aiokafka hands out one partition's fetched records (up to
        `max_partition_fetch_bytes`, thousands) before the next one's: with a cap on the total,
        a backlog is drained one partition at a time and the others wait minutes.
        """
        faust_consumer = self._consumer
        thread = faust_consumer._thread
        consumer = thread._ensure_consumer()
        wanted = list(tps)

        async def fetch_in_thread() -> dict[Any, list[Any]]:
            if not faust_consumer.flow_active:
                return {}
            fetcher = consumer._fetcher
            if consumer._closed or fetcher._closed:
                raise ConsumerStoppedError()
            with fetcher._subscriptions.fetch_context():
                found: dict[Any, list[Any]] = {}
                for tp in wanted:
                    found.update(await fetcher.fetched_records({tp}, 0, max_records))
                if not found and timeout:
                    found.update(await fetcher.fetched_records(set(wanted), timeout, max_records))
                return found

        return await thread.call_thread(fetch_in_thread)  # type: ignore[no-any-return]

    async def close(self) -> None:
        """Nothing of its own to stop (the group consumer is faust's)."""

    async def commit(self, offsets: Mapping[int, int], timeout: float = 10.0) -> None:
        """Commit the group's next offsets (`last applied + 1`) of the topic's partitions that
        are still assigned. Raises what Kafka answered (e.g. the group rebalanced) or
        `TimeoutError`; unlike faust's own commit, a refusal does not crash the worker."""
        tps = {tp.partition: tp for tp in self.assigned()}
        todo = {
            TopicPartition(self.topic, p): OffsetAndMetadata(offset, "")
            for p, offset in offsets.items()
            if p in tps
        }
        if not todo:
            return
        thread = self._consumer._thread

        async def commit_in_thread() -> None:
            await thread._ensure_consumer().commit(todo)
            now = time.monotonic()  # faust's "has not committed in a while" check reads it
            thread.tp_last_committed_at.update({tps[tp.partition]: now for tp in todo})

        await asyncio.wait_for(thread.call_thread(commit_in_thread), timeout)

    def note_inbound(self, tps: Iterable[Any], now: float) -> None:
        """Tell faust's monitor the partitions are being processed (its slow-stream check)."""
        monitor = self._app.monitor
        if monitor is not None and monitor.stream_inbound_time is not None:
            for tp in tps:
                monitor.stream_inbound_time[tp] = now
