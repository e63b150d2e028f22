"""Publishes outbox records to Kafka through the Faust app's producer (acks=all).

For the data plane (`drop_undeliverable=True`), a record Kafka can never accept (larger than
the producer's request limit, an invalid topic) is dropped: logged with its topic and size and
counted in `livesegments_outbox_dropped_total`, so one odd membership change or dead letter
cannot hold a partition back forever. Every other producer failure (the broker is down or
moving a leader) is raised, and the caller retries.

The control plane's records (task messages, replies) are small and written by livesegments
itself, and a job cannot finish without them: one that Kafka refuses says the topic is
misconfigured, which an operator must fix like an unreachable service. So that publisher
(`drop_undeliverable=False`) raises it too; the caller retries and `/health` shows the stall.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from state import OutboxRecord

from . import metrics
from .failures import cause_name, is_undeliverable

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


def _drop(record: OutboxRecord, exc: BaseException) -> None:
    log.error(
        "dropping an outbox record Kafka cannot accept: topic %s, key %d bytes, value %d bytes: "
        "%s: %s",
        record.topic,
        len(record.key or b""),
        len(record.value),
        type(exc).__name__,
        exc,
    )
    metrics.OUTBOX_DROPPED.labels(record.topic, cause_name(exc)).inc()


class Publisher:
    def __init__(self, app: Any, *, drop_undeliverable: bool) -> None:
        self._app = app
        self._drop_undeliverable = drop_undeliverable

    def _droppable(self, exc: BaseException) -> bool:
        return self._drop_undeliverable and is_undeliverable(exc)

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer in order; returns their delivery futures."""
        producer = self._app.producer
        futures = []
        for record in records:
            try:
                future = await producer.send(
                    record.topic,
                    record.key,
                    record.value,
                    record.partition,
                    None,
                    list(record.headers) or None,
                )
            except Exception as exc:
                if not self._droppable(exc):
                    raise
                _drop(record, exc)
                future = asyncio.get_running_loop().create_future()
                future.set_result(None)
            futures.append(future)
        return futures

    async def settle(
        self, records: Sequence[OutboxRecord], futures: Sequence[asyncio.Future[Any]]
    ) -> None:
        """Wait for every delivery; drop what can never be delivered, raise anything else."""
        results = await asyncio.gather(*futures, return_exceptions=True)
        retry: BaseException | None = None
        for record, result in zip(records, results, strict=True):
            if isinstance(result, BaseException):
                if self._droppable(result):
                    _drop(record, result)
                elif retry is None:
                    retry = result
        if retry is not None:
            raise retry

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Send and wait until Kafka acknowledged (or refused for good) every record."""
        futures = await self.send(records)
        if futures:
            await self.settle(records, futures)
