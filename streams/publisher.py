"""Publishes outbox records to Kafka through the Faust app's producer (acks=all)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from state import OutboxRecord

__all__ = ["Publisher"]


class Publisher:
    def __init__(self, app: Any) -> None:
        self._app = app

    async def send(self, records: Sequence[OutboxRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer in order; returns their delivery futures."""
        producer = self._app.producer
        futures = []
        for record in records:
            futures.append(
                await producer.send(
                    record.topic,
                    record.key,
                    record.value,
                    record.partition,
                    None,
                    list(record.headers) or None,
                )
            )
        return futures

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        """Send and wait until Kafka acknowledged every record."""
        futures = await self.send(records)
        if futures:
            await asyncio.gather(*futures)
