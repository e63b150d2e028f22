"""The events agent: every events partition processed serially, in batches."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..partitions import Incoming, PartitionRuntime

__all__ = ["incoming", "register", "retry_forever"]

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


async def retry_forever(what: str, work: Callable[[], Awaitable[None]]) -> None:
    """Retry infrastructure failures (Redis or Kafka down) with backoff; never skip a batch.

    Acknowledging a batch that was not applied would lose it, so the agent waits instead.
    """
    delay = 0.1
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying in %.1fs", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def register(
    app: Any, topic: Any, runtime: PartitionRuntime, batch_size: int, within: float
) -> Any:
    # concurrency=1: one actor per worker, so each partition is applied strictly in order and
    # faust acknowledges (and commits) a batch only after it was applied.
    @app.agent(topic, concurrency=1, name="events")  # type: ignore[untyped-decorator]
    async def events(stream: Any) -> None:
        async for batch in stream.take_events(batch_size, within=within):
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
                    )
                    for partition, messages in by_partition.items()
                )
            )

    return events
