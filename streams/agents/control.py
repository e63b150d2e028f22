"""The control agent: operator commands and partitions' task reports, in one order."""

from __future__ import annotations

import functools
from typing import Any

from ..control import ControlRuntime
from ..stalls import retry_forever
from .batches import applied_batches, incoming

__all__ = ["register"]


def register(app: Any, topic: Any, runtime: ControlRuntime) -> Any:
    @app.agent(topic, concurrency=1, name="control")  # type: ignore[untyped-decorator]
    async def control(stream: Any) -> None:
        async for batch in applied_batches(stream, 100, 0.01):
            messages = [incoming(event) for event in batch]
            await retry_forever(
                f"control batch at {messages[0].offset}",
                functools.partial(runtime.process, messages),
                where="control plane",
                plane="control",
            )

    return control
