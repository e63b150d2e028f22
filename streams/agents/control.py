"""The control agent: operator commands and partitions' task reports, in one order."""

from __future__ import annotations

import functools
from typing import Any

from ..control import ControlRuntime
from ..stalls import retry_forever
from .batches import applied_batches, incoming

__all__ = ["BATCH_SIZE", "IDLE_WAKE_S", "register"]

BATCH_SIZE = 1
"""Commands per batch: each one is applied as soon as it arrives. faust's `take_events` yields
a batch when it is full, else after `within` seconds: with 100 a batch, a command (a job's last
`_task_done` report, whose reply a client waits for) waited up to `within` (0.05 s) for others
that mostly never came. Gathering saves nothing: `ControlRuntime.process` commits each command
on its own."""

IDLE_WAKE_S = 1.0
"""`take_events`' `within`: with batches of one it only says how often an idle agent wakes the
event loop (at 0.01, 100 wake-ups a second cost ~0.035 of a core of an idle worker, session 9)."""


def register(app: Any, topic: Any, runtime: ControlRuntime) -> Any:
    @app.agent(topic, concurrency=1, name="control")  # type: ignore[untyped-decorator]
    async def control(stream: Any) -> None:
        async for batch in applied_batches(stream, BATCH_SIZE, IDLE_WAKE_S):
            messages = [incoming(event) for event in batch]
            await retry_forever(
                f"control batch at {messages[0].offset}",
                functools.partial(runtime.process, messages),
                where="control plane",
                plane="control",
            )

    return control
