"""The events reader's fences, without Kafka: a fetcher and a runtime that record what they
are asked (the real consumer path runs in every worker test, e.g. test_effectively_once)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from streams.agents.events import EventsReader
from streams.messages import Incoming


class TP(NamedTuple):
    topic: str
    partition: int


class Record(NamedTuple):
    partition: int
    offset: int
    key: bytes | None = b"c1"
    value: bytes | None = b"{}"
    headers: tuple[tuple[str, bytes], ...] = ()


class FakeFetcher:
    topic = "events"

    def __init__(self, partitions: Sequence[int]) -> None:
        self.partitions = list(partitions)
        self.flowing = True
        self.batches: asyncio.Queue[dict[TP, list[Record]]] = asyncio.Queue()
        self.commits: list[dict[int, int]] = []
        self.stop_flow_during_fetch = False
        self.asked: list[list[int]] = []

    async def wait_flowing(self) -> None:
        await asyncio.sleep(3600)

    def assigned(self) -> list[TP]:
        return [TP(self.topic, p) for p in self.partitions]

    async def fetch(self, tps: Sequence[Any], timeout: float, max_records: int) -> Any:
        self.asked.append(sorted(tp.partition for tp in tps))
        await asyncio.sleep(0.001)  # as the consumer thread's hop
        batch = await self.batches.get()
        wanted = set(tps)
        later = {tp: records for tp, records in batch.items() if tp not in wanted}
        if later:  # as aiokafka: only the partitions asked for; the rest stays buffered
            self.batches.put_nowait(later)
            batch = {tp: records for tp, records in batch.items() if tp in wanted}
        if self.stop_flow_during_fetch:
            self.flowing = False  # a rebalance began while the records came in
        return batch

    async def commit(self, offsets: Mapping[int, int], timeout: float = 10.0) -> None:
        self.commits.append(dict(offsets))

    def note_inbound(self, tps: Any, now: float) -> None:
        pass


class FakeRuntime:
    def __init__(self) -> None:
        self.applied: dict[int, int] = {}
        self.processed: list[tuple[int, list[int]]] = []
        self.forgotten: list[int] = []
        self.release = asyncio.Event()
        self.release.set()
        self.started = asyncio.Event()

    async def process(self, partition: int, messages: Sequence[Incoming]) -> None:
        self.started.set()
        await self.release.wait()
        self.processed.append((partition, [m.offset for m in messages]))
        self.applied[partition] = messages[-1].offset

    def applied_offset(self, partition: int) -> int | None:
        return self.applied.get(partition)

    def forget(self, partitions: Sequence[int]) -> None:
        self.forgotten.extend(partitions)


def _reader(fetcher: FakeFetcher, runtime: FakeRuntime, fence_s: float = 5.0) -> EventsReader:
    return EventsReader(fetcher, runtime, 500, fence_s)  # type: ignore[arg-type]


def _records(partition: int, offsets: range) -> dict[TP, list[Record]]:
    return {TP("events", partition): [Record(partition, o) for o in offsets]}


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_each_partitions_records_go_to_the_runtime_in_order() -> None:
    async def run() -> FakeRuntime:
        fetcher, runtime = FakeFetcher([0, 1]), FakeRuntime()
        reader = _reader(fetcher, runtime)
        task = asyncio.ensure_future(reader.run())
        await fetcher.batches.put({**_records(0, range(3)), **_records(1, range(5, 7))})
        await _until(lambda: len(runtime.processed) == 2)
        task.cancel()
        return runtime

    runtime = asyncio.run(run())
    assert sorted(runtime.processed) == [(0, [0, 1, 2]), (1, [5, 6])]


def test_no_batch_starts_once_a_rebalance_stopped_the_flow() -> None:
    async def run() -> FakeRuntime:
        fetcher, runtime = FakeFetcher([0]), FakeRuntime()
        fetcher.stop_flow_during_fetch = True
        task = asyncio.ensure_future(_reader(fetcher, runtime).run())
        await fetcher.batches.put(_records(0, range(3)))
        await _until(lambda: fetcher.batches.empty())
        await asyncio.sleep(0.05)
        task.cancel()
        return runtime

    assert asyncio.run(run()).processed == []  # read again from the committed offsets


def test_revocation_waits_for_the_batch_then_commits_what_it_applied_and_forgets() -> None:
    async def run() -> tuple[FakeFetcher, FakeRuntime, list[str]]:
        fetcher, runtime = FakeFetcher([0, 1]), FakeRuntime()
        runtime.release.clear()
        reader = _reader(fetcher, runtime)
        task = asyncio.ensure_future(reader.run())
        await fetcher.batches.put(_records(0, range(10, 20)))
        await runtime.started.wait()
        order: list[str] = []
        revoking = asyncio.ensure_future(reader.revoked([0]))
        await asyncio.sleep(0.05)
        order.append(f"revoked done: {revoking.done()}, commits: {fetcher.commits}")
        runtime.release.set()
        await revoking
        task.cancel()
        return fetcher, runtime, order

    fetcher, runtime, order = asyncio.run(run())
    assert order == ["revoked done: False, commits: []"]  # the batch in progress finishes first
    assert runtime.processed == [(0, list(range(10, 20)))]
    assert fetcher.commits == [{0: 20}]  # the next offset after the last one applied
    assert runtime.forgotten == [0]


def test_only_offsets_the_state_applied_are_committed_once() -> None:
    async def run() -> list[dict[int, int]]:
        fetcher, runtime = FakeFetcher([0, 1, 2]), FakeRuntime()
        reader = _reader(fetcher, runtime)
        runtime.applied = {0: 4, 1: 7}  # partition 2: nothing applied (not loaded)
        await reader.commit_applied()
        await reader.commit_applied()  # nothing moved: nothing to commit
        runtime.applied[1] = 9
        await reader.commit_applied()
        return fetcher.commits

    assert asyncio.run(run()) == [{0: 5, 1: 8}, {1: 10}]


def test_a_batch_stuck_past_the_fence_timeout_is_cancelled_at_a_rebalance() -> None:
    async def run() -> tuple[FakeFetcher, FakeRuntime]:
        fetcher, runtime = FakeFetcher([0]), FakeRuntime()
        runtime.release.clear()  # e.g. Redis unreachable, retried forever
        reader = _reader(fetcher, runtime, fence_s=0.1)
        task = asyncio.ensure_future(reader.run())
        await fetcher.batches.put(_records(0, range(3)))
        await runtime.started.wait()
        await asyncio.wait_for(reader.revoked([0]), 5)
        task.cancel()
        return fetcher, runtime

    fetcher, runtime = asyncio.run(run())
    assert runtime.processed == [] and fetcher.commits == [] and runtime.forgotten == [0]


class SlowRuntime(FakeRuntime):
    """Only the `slow` partition waits for `release`; two batches of one partition at once fail."""

    def __init__(self, slow: int) -> None:
        super().__init__()
        self.slow = slow
        self.release.clear()
        self.running: set[int] = set()

    async def process(self, partition: int, messages: Sequence[Incoming]) -> None:
        assert partition not in self.running, f"two batches of partition {partition} at once"
        self.running.add(partition)
        try:
            if partition == self.slow:
                self.started.set()
                await self.release.wait()
            else:
                await asyncio.sleep(0)
            self.processed.append((partition, [m.offset for m in messages]))
            self.applied[partition] = messages[-1].offset
        finally:
            self.running.discard(partition)


def test_a_slow_partition_does_not_hold_the_other_partitions_batches() -> None:
    """Regression: the reader applied one batch across every partition and fetched again only
    once all of them were done, so one slow partition (an expiry holding its lock, a long
    commit) delayed the events of all (a cause of the latency p99)."""

    async def run() -> list[tuple[int, list[int]]]:
        fetcher, runtime = FakeFetcher([0, 1]), SlowRuntime(slow=0)
        task = asyncio.ensure_future(_reader(fetcher, runtime).run())
        await fetcher.batches.put({**_records(0, range(3)), **_records(1, range(10, 12))})
        await runtime.started.wait()
        await fetcher.batches.put(_records(1, range(12, 14)))
        await _until(lambda: len(runtime.processed) == 2)  # partition 0 is still stuck
        runtime.release.set()
        await _until(lambda: len(runtime.processed) == 3)
        task.cancel()
        return runtime.processed

    assert asyncio.run(run()) == [(1, [10, 11]), (1, [12, 13]), (0, [0, 1, 2])]


def test_a_busy_partition_is_fetched_meanwhile_and_its_batches_stay_in_order() -> None:
    """Regression: a partition busy with a batch was not asked for, so aiokafka kept its first
    answer buffered and asked the broker for nothing newer until the batch ended: the next batch
    started with records as old as the last one and then waited for a fresh fetch (the latency
    figure's "sent -> stamped by the worker", 60/136 ms p50/p99 at 1,000 events/s)."""

    async def run() -> tuple[list[tuple[int, list[int]]], list[list[int]]]:
        fetcher, runtime = FakeFetcher([0, 1]), SlowRuntime(slow=0)
        reader = _reader(fetcher, runtime)
        task = asyncio.ensure_future(reader.run())
        await fetcher.batches.put(_records(0, range(3)))
        await runtime.started.wait()
        await fetcher.batches.put({**_records(0, range(3, 5)), **_records(1, range(7, 8))})
        await _until(lambda: len(runtime.processed) == 1)  # partition 1's batch, not 0's
        asked = len(fetcher.asked)
        runtime.release.set()
        await _until(lambda: len(runtime.processed) == 3)
        assert len(fetcher.asked) == asked  # 0's next batch came from its queue, no fetch
        await reader.fence()
        task.cancel()
        return runtime.processed, fetcher.asked

    processed, asked = asyncio.run(run())
    assert processed == [(1, [7]), (0, [0, 1, 2]), (0, [3, 4])]  # one batch a partition at once
    assert asked[1] == [0, 1]  # partition 0 was asked for while it was busy


def test_a_busy_partition_queues_at_most_a_batch() -> None:
    async def run() -> list[list[int]]:
        fetcher, runtime = FakeFetcher([0, 1]), SlowRuntime(slow=0)
        reader = EventsReader(fetcher, runtime, 3, 5.0)  # type: ignore[arg-type]
        task = asyncio.ensure_future(reader.run())
        await fetcher.batches.put(_records(0, range(3)))
        await runtime.started.wait()
        await fetcher.batches.put(_records(0, range(3, 6)))  # a whole batch queued
        await _until(fetcher.batches.empty)
        seen = len(fetcher.asked) - 1  # the fetch after it was queued
        await fetcher.batches.put(_records(1, range(9, 10)))
        await _until(lambda: len(runtime.processed) == 1)
        asked = fetcher.asked[seen:]
        runtime.release.set()
        await _until(lambda: len(runtime.processed) == 3)
        task.cancel()
        return asked

    asked = asyncio.run(run())
    assert asked and all(a == [1] for a in asked)  # partition 0 waits on the broker meanwhile


async def _rebalance_behind_a_queue(resume: bool) -> list[tuple[int, list[int]]]:
    """Partition 0 applies 0-2 with 3-4 queued behind it when the flow stops (a rebalance)
    and the batch ends; with `resume`, the flow comes back before the reader looked."""
    fetcher, runtime = FakeFetcher([0]), SlowRuntime(slow=0)
    task = asyncio.ensure_future(_reader(fetcher, runtime).run())
    await fetcher.batches.put(_records(0, range(3)))
    await runtime.started.wait()
    await fetcher.batches.put(_records(0, range(3, 5)))  # queued behind the busy batch
    await _until(fetcher.batches.empty)
    fetcher.flowing = False  # a rebalance begins: the lane ends after its batch
    runtime.release.set()
    await _until(lambda: len(runtime.processed) == 1)
    await asyncio.sleep(0.05)
    if resume:
        fetcher.flowing = True  # and ends before the reader looked
        await fetcher.batches.put({})  # its fetch returns nothing
        await _until(lambda: len(runtime.processed) == 2)
    task.cancel()
    return runtime.processed


def test_records_queued_before_a_rebalance_start_no_batch() -> None:
    processed = asyncio.run(_rebalance_behind_a_queue(resume=False))
    assert processed == [(0, [0, 1, 2])]  # read again from the committed offsets


def test_records_a_lane_left_queued_at_a_short_rebalance_are_applied_after_it() -> None:
    """The flow stopped and resumed while the reader waited in a fetch: the partition kept its
    queue (it was not revoked) but its lane had ended; nothing new may ever come for it."""
    processed = asyncio.run(_rebalance_behind_a_queue(resume=True))
    assert processed == [(0, [0, 1, 2]), (0, [3, 4])]
