"""Publishes outbox records to Kafka and waits for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from state import OutboxRecord

__all__ = ["Publisher"]


class Publisher:
    """Sends records through the Faust app's producer (acks=all)."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def publish(self, records: Sequence[OutboxRecord]) -> None:
        futures = []
        for record in records:
            futures.append(
                await self._app.producer.send(
                    record.topic,
                    record.key,
                    record.value,
                    record.partition,
                    None,
                    list(record.headers) or None,
                )
            )
        if futures:
            await asyncio.gather(*futures)
