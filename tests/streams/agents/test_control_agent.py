"""The control agent's batching, without Kafka: a stream that batches as faust's `take_events`
does (a batch once `max_` events are buffered, else what is buffered after `within`) and a
runtime that records what it is given (the real consumer path runs in every worker test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from streams.agents.control import register
from streams.messages import Incoming


class FakeMessage:
    def __init__(self, offset: int) -> None:
        self.partition, self.offset = 0, offset
        self.key, self.value, self.headers = None, b'{"command": "x"}', ()
        self.refs = 0

    def incref(self) -> None:
        self.refs += 1


class FakeEvent:
    def __init__(self, offset: int) -> None:
        self.message = FakeMessage(offset)


class FakeStream:
    """Events already buffered when the agent starts: `take_events` yields them `max_` at a
    time, the rest after `within` (not waited here: only what `within` was asked is kept)."""

    def __init__(self, count: int) -> None:
        self.events = [FakeEvent(offset) for offset in range(count)]
        self.asked: tuple[int, float] | None = None
        self.acked: list[int] = []

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[FakeEvent]]:
        self.asked = (max_, within)
        for at in range(0, len(self.events), max_):
            yield self.events[at : at + max_]

    async def ack(self, event: FakeEvent) -> None:
        self.acked.append(event.message.offset)


class FakeApp:
    def __init__(self) -> None:
        self.agent_fn: Callable[[Any], Any] | None = None

    def agent(self, _topic: Any, **_options: Any) -> Callable[[Any], Any]:
        def decorate(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self.agent_fn = fn
            return fn

        return decorate


class RecordingRuntime:
    def __init__(self) -> None:
        self.calls: list[list[int]] = []

    async def process(self, messages: Sequence[Incoming]) -> None:
        self.calls.append([m.offset for m in messages])


def _run(count: int) -> tuple[FakeStream, RecordingRuntime]:
    app, stream, runtime = FakeApp(), FakeStream(count), RecordingRuntime()
    register(app, "control", runtime)  # type: ignore[arg-type]
    assert app.agent_fn is not None
    asyncio.run(app.agent_fn(stream))
    return stream, runtime


def test_each_command_is_applied_on_its_own_as_it_comes() -> None:
    # A job's last `_task_done` report, whose reply a client waits for, is applied as soon as
    # it is read: batches of one never wait `within` for others to fill them.
    stream, runtime = _run(3)
    assert runtime.calls == [[0], [1], [2]]
    assert stream.acked == [0, 1, 2]  # each acknowledged once applied


def test_an_idle_agent_wakes_the_loop_at_most_once_a_second() -> None:
    stream, _runtime = _run(1)
    assert stream.asked is not None and stream.asked[1] >= 1.0
