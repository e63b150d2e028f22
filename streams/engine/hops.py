"""Where one event waits: per-record hop timings of the events path, for diagnosis only.

On with the stage report (`LS_STAGE_REPORT_S` > 0), off otherwise (every call site tests
`STAGES.enabled` first). Each record of an events batch is followed from its producer timestamp
(the Kafka record's create time, taken by the sender's clock on this machine) through the hops:

1. `thread_fetch`: the fetch response that held it was read by aiokafka (its `FetchResult` was
   created: in faust's consumer thread, or on the event loop with `LS_EVENTS_FETCH=loop`);
2. `thread_take`: the fetcher took it from aiokafka's buffer;
3. `loop`: that `fetch` returned to the reader (with `BatchFetcher`, the `call_thread` hop back;
   on the loop, about nothing);
4. `lane`: its partition's lane started the batch that holds it (queued behind the lane's
   previous batch until then);
5. `loaded`: the batch's profiles were loaded (cache or one MGET);
6. `applied`: the engine applied the batch (the changes' `at` is the batch's start);
7. `committed`: the fenced commit (EVALSHA) replied;
8. `sent`: the outbox records were handed to the producer;
9. `acked`: Kafka acknowledged them.

Per record and hop the stage clock gets the hop's own duration (`h<i>_<hop>`: since the
previous hop) and the record's age there (`a<i>_<hop>`: since its producer timestamp), so the
stage report holds a histogram per hop.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from .stages import STAGES

__all__ = ["BatchTrace", "install_kafka_stamps", "mark", "stamp_loop", "start", "trace_of"]

_HOPS = ("thread_fetch", "thread_take", "loop", "lane")
"""The hops stamped on each record (the later ones are stamped on its batch)."""


class BatchTrace:
    """One events batch's hop stamps (monotonic seconds), reported once by `finish`."""

    __slots__ = ("_done", "_marks", "_records")

    def __init__(self, records: Sequence[Any], lane_started: float) -> None:
        offset = time.time() - time.monotonic()  # wall minus monotonic, to place timestamps
        self._records = [
            (
                r.timestamp / 1000 - offset,
                getattr(r, "_ls_fetched", None),
                getattr(r, "_ls_taken", None),
                getattr(r, "_ls_back", None),
                lane_started,
            )
            for r in records
        ]
        self._marks: list[tuple[str, float]] = []
        self._done = False

    def mark(self, hop: str) -> None:
        if not self._done and all(name != hop for name, _ in self._marks):
            self._marks.append((hop, time.monotonic()))

    def finish(self) -> None:
        """Add every record's hop durations and ages to the stage clock (once)."""
        if self._done:
            return
        self._done = True
        names = (*_HOPS, *(name for name, _ in self._marks))
        later = [at for _, at in self._marks]
        add = STAGES.add
        for sent, *stamps in self._records:
            previous = sent
            for index, (name, at) in enumerate(zip(names, [*stamps, *later], strict=True), start=1):
                if at is None:
                    continue
                add(f"h{index}_{name}", at - previous)
                add(f"a{index}_{name}", at - sent)
                previous = at


_current: dict[int, BatchTrace] = {}
"""Partition -> the trace of the batch its lane runs (the stage report's worker only)."""


def start(partition: int, records: Sequence[Any], lane_started: float) -> None:
    """Its lane starts a batch of `records` on `partition`."""
    if STAGES.enabled:
        _current[partition] = BatchTrace(records, lane_started)


def trace_of(partition: int) -> BatchTrace | None:
    """The trace of the batch `partition`'s lane runs (None when the stage report is off)."""
    return _current.get(partition) if STAGES.enabled else None


def mark(partition: int, hop: str) -> None:
    if STAGES.enabled:
        trace = _current.get(partition)
        if trace is not None:
            trace.mark(hop)


def stamp_loop(records: Any, now: float) -> None:
    """`BatchFetcher.fetch` returned these records (by partition) to the loop at `now`."""
    for batch in records.values():
        for record in batch:
            record._ls_back = now


def install_kafka_stamps() -> None:
    """Stamp each record aiokafka hands out with its fetch response's arrival and the take
    (patches aiokafka's `FetchResult.getall`), and time every fetch request of the consumer and
    produce request of the producer (stages `fetch_request`, `produce_request`: how many, how
    long each was in flight). Diagnosis only, once per process."""
    from aiokafka.consumer.fetcher import Fetcher, FetchResult
    from aiokafka.producer.sender import Sender

    if getattr(FetchResult.getall, "_ls_stamped", False):
        return
    getall_records = FetchResult.getall

    def getall(self: Any, max_records: int | None = None) -> Any:
        records = getall_records(self, max_records)
        taken = time.monotonic()
        for record in records:
            record._ls_fetched = self._created
            record._ls_taken = taken
        return records

    getall._ls_stamped = True  # type: ignore[attr-defined]
    FetchResult.getall = getall
    Fetcher._proc_fetch_request = _timed(Fetcher._proc_fetch_request, "fetch_request")
    Sender._send_produce_req = _timed(Sender._send_produce_req, "produce_request")


def _timed(request: Any, stage: str) -> Any:
    """`request` (an aiokafka coroutine method), its time in flight added to `stage`."""

    async def timed(self: Any, *args: Any) -> Any:
        started = time.monotonic()
        try:
            return await request(self, *args)
        finally:
            STAGES.add(stage, time.monotonic() - started)

    return timed
