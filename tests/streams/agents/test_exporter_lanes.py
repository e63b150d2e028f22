"""Export runs: one at a time per export, in order; different exports side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from streams.exports.runs import Lanes


def _step(log: list[str], name: str, gate: asyncio.Event) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        log.append(f"{name} start")
        await gate.wait()
        log.append(f"{name} end")

    return work


async def test_one_export_waits_for_its_previous_run_while_others_go_on() -> None:
    lanes = Lanes(limit=4)
    log: list[str] = []
    slow_gate, open_gate = asyncio.Event(), asyncio.Event()
    open_gate.set()
    first = lanes.submit("slow", _step(log, "slow-1", slow_gate))
    second = lanes.submit("slow", _step(log, "slow-2", open_gate))
    other = lanes.submit("fast", _step(log, "fast-1", open_gate))
    await asyncio.wait_for(other, 10)  # done while slow-1 still waits
    assert log == ["slow-1 start", "fast-1 start", "fast-1 end"]
    slow_gate.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert log[3:] == ["slow-1 end", "slow-2 start", "slow-2 end"]
    assert not lanes.tasks


async def test_at_most_limit_runs_at_once() -> None:
    lanes = Lanes(limit=2)
    running = peak = 0
    release = asyncio.Event()

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1

    tasks = [lanes.submit(f"export-{i}", work) for i in range(5)]
    while running < 2:
        await asyncio.sleep(0)
    for _ in range(20):  # give the others every chance to start (they must not)
        await asyncio.sleep(0)
    assert running == 2
    release.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert peak == 2


async def test_cancel_stops_every_pending_run() -> None:
    lanes = Lanes(limit=1)
    never = asyncio.Event()
    log: list[str] = []
    tasks = [lanes.submit("a", _step(log, f"a-{i}", never)) for i in range(3)]
    while not log:
        await asyncio.sleep(0)
    await lanes.cancel()
    assert all(t.cancelled() for t in tasks) and log == ["a-0 start"]
