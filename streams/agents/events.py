"""The events agent: every events partition processed serially, in batches."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any

from ..engine import PartitionRuntime
from ..messages import Incoming
from ..stalls import retry_forever

__all__ = ["applied_batches", "incoming", "register", "retry_forever"]

log = logging.getLogger(__name__)


def incoming(event: Any) -> Incoming:
    message = event.message
    headers = message.headers or ()
    if isinstance(headers, dict):
        headers = headers.items()
    return Incoming(
        message.partition,
        message.offset,
        message.key,
        message.value,
        tuple((name, bytes(value or b"")) for name, value in headers),
    )


async def applied_batches(stream: Any, size: int, within: float) -> AsyncIterator[list[Any]]:
    """Batches from `stream.take_events` that faust acknowledges only once they are applied.

    `take_events` acknowledges a batch when the generator moves on, and also when it is
    closed: a worker stopped (SIGTERM) in the middle of a batch would then commit offsets of
    messages never applied. Each message gets one more reference here and loses it only after
    the loop body finished, so an interrupted batch is never committed to Kafka and is read
    again after a restart (the state's own offset then skips what was applied).
    """
    async for batch in stream.take_events(size, within=within):
        for event in batch:
            event.message.incref()
        yield batch
        for event in batch:  # reached only when the body completed
            await stream.ack(event)


def register(
    app: Any, topic: Any, runtime: PartitionRuntime, batch_size: int, within: float
) -> Any:
    # concurrency=1: one actor per worker, so each partition is applied strictly in order;
    # faust acknowledges (and commits) a batch only after it was applied (applied_batches).
    @app.agent(topic, concurrency=1, name="events")  # type: ignore[untyped-decorator]
    async def events(stream: Any) -> None:
        async for batch in applied_batches(stream, batch_size, within):
            by_partition: dict[int, list[Incoming]] = {}
            for event in batch:
                item = incoming(event)
                by_partition.setdefault(item.partition, []).append(item)
            # partitions are independent: apply them concurrently, each one in order
            await asyncio.gather(
                *(
                    retry_forever(
                        f"{topic.get_topic_name()}[{partition}] batch at {messages[0].offset}",
                        functools.partial(runtime.process, partition, messages),
                        where=f"partition {partition}",
                        plane="events",
                    )
                    for partition, messages in by_partition.items()
                )
            )

    return events
