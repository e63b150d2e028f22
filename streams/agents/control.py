"""The control agent: operator commands and partitions' task reports, in one order."""

from __future__ import annotations

import functools
from typing import Any

from ..control import ControlRuntime
from ..stalls import retry_forever
from .batches import applied_batches, incoming

__all__ = ["BATCH_WITHIN_S", "register"]

BATCH_WITHIN_S = 0.05
"""How long the control agent gathers a batch (up to 100 commands). faust's `take_events` wakes
the event loop every `within` seconds, idle or not: at 0.01 that was 100 wake-ups a second,
~0.035 of a core of an idle worker (0.097 against 0.062 with 0.5, an idle worker alone with 8
partitions, session 9) and the same share of a busy one's CPU. A command waits at most this long
before it is applied, well inside an operator's round trip."""


def register(app: Any, topic: Any, runtime: ControlRuntime) -> Any:
    @app.agent(topic, concurrency=1, name="control")  # type: ignore[untyped-decorator]
    async def control(stream: Any) -> None:
        async for batch in applied_batches(stream, 100, BATCH_WITHIN_S):
            messages = [incoming(event) for event in batch]
            await retry_forever(
                f"control batch at {messages[0].offset}",
                functools.partial(runtime.process, messages),
                where="control plane",
                plane="control",
            )

    return control
