"""Batches of a faust stream, acknowledged only once applied (the control agent's input)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from ..messages import Incoming

__all__ = ["applied_batches", "incoming"]


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
