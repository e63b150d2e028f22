"""Event -> membership change latency at a fixed offered rate.

A paced producer sends activity events; a known share of them are `profile` events setting
`flag` true on a customer that never had it, which makes that customer enter
`FLIP_SEGMENT`. A consumer of the membership topic stamps each arriving change; the latency of
a flip is its arrival time minus the flip event's send time (same machine, same clock:
`time.time()`). The producer and the reader are processes of their own (spawned): as threads
of the benchmark's process they shared one GIL, and the reader's arrival stamps waited for the
producer's pacing loop.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import msgpack
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from .workload import FLIP_SEGMENT, activity_event, customer_id

__all__ = ["READER_CONFIG", "TICK_S", "LatencyResult", "flip_pool", "measure_latency"]

TICK_S = 0.001
"""The paced producer's shortest sleep: at 5,000 events/s it wakes once for ~5 events instead
of once for each (a wake-up and a `poll` per event, and a produce request each at linger 0)."""


@dataclass
class LatencyResult:
    offered_rate: float
    achieved_rate: float
    seconds: float
    sent: int
    flips: int
    matched: int
    latencies_ms: list[float] = field(default_factory=list)
    p50_by_window_ms: list[float] = field(default_factory=list)
    """p50 of the flips sent in each consecutive window (5 s; 1 s under 10 s): a rising
    series means the worker falls behind the offered rate, a flat one a fixed delay."""
    worker_ms: list[float] = field(default_factory=list)
    """Event sent → the worker's `at` stamp on the change (no consumer-side delay)."""
    produced_ms: list[float] = field(default_factory=list)
    """Flip event sent → the broker's acknowledgement reached the paced producer (acks=1)."""
    after_worker_ms: list[float] = field(default_factory=list)
    """The worker's `at` stamp on the change → its arrival at the change reader."""
    load_cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds of the paced producer's and the change reader's processes (whole life)."""
    producer_phases: list[dict[str, float | str]] = field(default_factory=list)
    """The paced producer's phases (warm-up, measured): offered and achieved rate (events over
    the seconds up to the end of the last one's slot), seconds sending, seconds of the final
    flush (waiting for acknowledgements) and CPU seconds of each."""
    redis_forks: int | None = None
    """Redis' forks during the phase, one running at its start included (None: not counted):
    an AOF rewrite's child takes a core for seconds, and sets the p99 of a phase it falls in."""

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies_ms if values is None else values)
        if not data:
            return float("nan")
        index = min(len(data) - 1, max(0, round(q / 100 * (len(data) - 1))))
        return data[index]


READER_CONFIG: dict[str, str | int | bool] = {
    "enable.auto.commit": False,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 500,
    "socket.nagle.disable": True,  # a small fetch request is not held back
}
"""The change reader's librdkafka settings (`_read` adds the bootstrap and a group id).

`fetch.min.bytes` 1: the broker answers the reader's waiting fetch as soon as a change is
appended to any partition, so an arrival is stamped one fetch response after the append
whatever the wait. `fetch.wait.max.ms` only bounds how long an empty fetch waits on the broker:
at 5 ms (until session 11) the reader sent ~200 empty fetches a second whenever the membership
topic was quiet for a moment (2/3 of its ~140 fetches/s in the latency phase), each ~0.8 ms of
broker CPU on this machine (docs/performance.md, session 11)."""


def _read_changes(
    bootstrap: list[str],
    topic: str,
    partitions: int,
    conn: Connection,
    config: Mapping[str, str | int | bool],
) -> None:
    """The change reader's process (see `_read`); sends back (arrivals, stamped, CPU seconds)."""
    arrivals, stamped = _read(bootstrap, topic, partitions, conn, config)
    conn.send((arrivals, stamped, time.process_time()))


def _read(
    bootstrap: list[str],
    topic: str,
    partitions: int,
    conn: Connection,
    config: Mapping[str, str | int | bool] = READER_CONFIG,
) -> tuple[dict[str, float], dict[str, float]]:
    """Stamps every `entered` change of FLIP_SEGMENT with its arrival time (`time.time()` when
    `consume` returned it) and the worker's own `at` stamp. Sends "ready" once the end offsets
    are resolved, then reads until the parent sends the customers it waits for and they all
    arrived (or its deadline passed).

    librdkafka (confluent-kafka), not aiokafka: this process shares the two cores with the
    worker it measures, and aiokafka's Python fetch path took ~120 µs of CPU per change."""
    consumer = Consumer(
        {
            **config,
            "bootstrap.servers": ",".join(bootstrap),
            "group.id": f"latency-reader-{uuid.uuid4().hex}",  # assigned, never committed
        }
    )
    arrivals: dict[str, float] = {}
    stamped: dict[str, float] = {}
    try:
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p))[1])
            for p in range(partitions)
        ]  # resolved now, before anything is sent
        consumer.assign(ends)
        conn.send("ready")
        wanted: set[str] | None = None
        deadline = float("inf")
        while wanted is None or (time.monotonic() < deadline and not wanted <= arrivals.keys()):
            if wanted is None and conn.poll():
                wanted, drain_s = conn.recv()
                deadline = time.monotonic() + drain_s
            # `consume` waits out its whole timeout unless the batch fills: wait for the first
            # message with `poll`, then take what else is there without waiting
            first = consumer.poll(0.05)
            if first is None:
                continue
            now = time.time()
            messages = [first, *consumer.consume(num_messages=10_000, timeout=0)]
            for message in messages:
                if message.error() is not None:
                    raise RuntimeError(f"the membership reader failed: {message.error()}")
                change = msgpack.unpackb(message.value(), raw=False)
                if change["segment_id"] == FLIP_SEGMENT and change["change"] == "entered":
                    arrivals.setdefault(change["customer_id"], now)
                    stamped.setdefault(change["customer_id"], change["at"] / 1000)
    finally:
        consumer.close()
    return arrivals, stamped


def _produce(
    bootstrap: list[str],
    topic: str,
    seed: int,
    customers: int,
    flip_ids: list[str],
    phases: list[tuple[float, float, str]],
    flip_share: float,
    linger_ms: int,
    conn: Connection,
    extra: Mapping[str, str | int | bool],
) -> None:
    """The paced producer's process: each (rate, seconds, tag) phase in turn; sends back the
    last phase's (sent, took, sent_at, acked_at), how many flip customers were used, CPU
    seconds, and each phase's figures (`LatencyResult.producer_phases`).

    librdkafka (confluent-kafka), not aiokafka: at 1,000 events/s and linger 0 aiokafka's
    Python send path took ~450 µs of CPU per event on the cores the worker shares (kafka-python
    more still)."""
    pool = list(flip_ids)
    failed: list[str] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failed.append(str(error))

    producer = Producer(
        {
            "bootstrap.servers": ",".join(bootstrap),
            "acks": 1,
            # Kafka's (and aiokafka's) partitioner: librdkafka's default (CRC32) would send a
            # customer's events to another partition than the preload's, where no state is
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "enable.idempotence": False,
            "on_delivery": delivered,
            "socket.nagle.disable": True,  # a lone event's request is not held back
            **extra,
        }
    )
    rng = random.Random(seed)
    sent, took, sent_at, acked_at = 0, 0.0, dict[str, float](), dict[str, float]()
    figures: list[dict[str, float | str]] = []
    for rate, seconds, tag in phases:
        sent_at, acked_at = {}, {}
        cpu = time.process_time()
        sent, took, flush_s = _paced(
            producer,
            topic,
            rng,
            customers,
            pool,
            rate,
            seconds,
            flip_share,
            tag,
            sent_at,
            acked_at,
            failed,
        )
        if failed:
            raise RuntimeError(f"the paced producer lost {len(failed)} events: {failed[0]}")
        figures.append(
            {
                "phase": tag,
                "offered_per_s": rate,
                "achieved_per_s": round(sent / took, 1),
                "sent": sent,
                "send_s": round(took, 3),
                "flush_s": round(flush_s, 3),
                "cpu_s": round(time.process_time() - cpu, 3),
            }
        )
    used = len(flip_ids) - len(pool)
    conn.send((sent, took, sent_at, acked_at, used, time.process_time(), figures))


def _paced(
    producer: Producer,
    topic: str,
    rng: random.Random,
    customers: int,
    flip_ids: list[str],
    rate: float,
    seconds: float,
    flip_share: float,
    tag: str,
    sent_at: dict[str, float],
    acked_at: dict[str, float],
    failed: list[str],
) -> tuple[int, float, float]:
    """Send `rate` events a second for `seconds`; returns how many were sent, the seconds
    from the start to the end of the last one's slot (`seconds` when the producer kept pace),
    and the seconds the final flush then waited for the acknowledgements.

    Event i is due `i / rate` s after the start. The producer sleeps until the next event is
    due, `TICK_S` at least, and then sends every event due by then in one burst: sleeping
    before each event (as this did before) lost the rate at 5,000/s (4,843 and 4,301/s in
    session 8), each wake-up costing about as long as the 0.2 ms between events on a loaded
    machine. Each event is stamped (`ts`, and a flip's
    `sent_at`, `time.time()`) when it is sent, not when it was due, so the latency counts
    from the send. The time its acknowledgement came goes in `acked_at` (its delivery report,
    served by `poll` after each burst). The producer does not wait for acknowledgements."""
    total = int(rate * seconds)
    clock = time.perf_counter
    started = clock()
    sent = 0
    while sent < total:
        now = clock()
        due = min(total, int((now - started) * rate) + 1)  # events due by now: 0 .. due - 1
        if due <= sent:
            time.sleep(max(started + sent / rate - now, TICK_S))
            continue
        for i in range(sent, due):
            wall = time.time()
            wall_ms = int(wall * 1000)
            cid = None
            if flip_ids and rng.random() < flip_share:
                cid = flip_ids.pop()
                event = {
                    "event_id": f"flip-{tag}-{cid}",
                    "customer_id": cid,
                    "type": "profile",
                    "ts": wall_ms,
                    "properties": {"flag": True},
                }
                sent_at[cid] = wall
            else:
                event = activity_event(rng, customers, f"{tag}-{i}", wall_ms)
            key, value = event["customer_id"].encode(), msgpack.packb(event)
            if cid is None:
                producer.produce(topic, key=key, value=value)
            else:
                stamp = _stamp(acked_at, failed, cid)
                producer.produce(topic, key=key, value=value, on_delivery=stamp)
        sent = due
        producer.poll(0)  # serves delivery reports, so the queue never fills
    took = clock() - started + 1 / rate
    flushing = clock()
    if producer.flush(30) != 0:
        raise RuntimeError("the paced producer could not deliver its events within 30 s")
    return total, took, clock() - flushing


def _stamp(
    stamps: dict[str, float], failed: list[str], key: str
) -> Callable[[KafkaError | None, object], None]:
    """A flip's delivery report callback (it replaces the producer's default one): stamps
    `key`'s acknowledgement time, or records the error as the default one does."""

    def stamp(error: KafkaError | None, _message: object) -> None:
        if error is None:
            stamps[key] = time.time()
        else:
            failed.append(str(error))

    return stamp


def flip_pool(customers: int, seed: int) -> list[str]:
    """Customers to flip, in the order `measure_latency` pops them: share one list between
    runs so that no customer is flipped twice (a second flip changes nothing)."""
    rng = random.Random(seed + 2)
    flip_ids = [customer_id(i) for i in range(customers)]
    rng.shuffle(flip_ids)
    return flip_ids


def measure_latency(
    bootstrap: list[str],
    events_topic: str,
    membership_topic: str,
    partitions: int,
    customers: int,
    seed: int,
    rate: float = 1000.0,
    seconds: float = 20.0,
    warmup_s: float = 3.0,
    flip_share: float = 0.2,
    drain_s: float = 10.0,
    flip_ids: list[str] | None = None,
    linger_ms: int = 0,
    reader_config: Mapping[str, str | int | bool] | None = None,
    producer_config: Mapping[str, str | int | bool] | None = None,
    phase_id: str = "",
) -> LatencyResult:
    """The paced producer and the change reader run in processes of their own (spawned), so
    their CPU does not share this process's GIL; the flips used are popped from `flip_ids`.
    `linger_ms` is the paced producer's (0: one produce request per event); `reader_config`
    replaces `READER_CONFIG` keys, `producer_config` adds to the paced producer's settings
    (librdkafka names, for A/B runs of the bench's own clients). `phase_id` goes into every
    event id: phases that repeat a seed must send events the worker has not seen (a repeated
    id is a duplicate, which the worker skips: no evaluation, no change, no commit of it)."""
    if flip_ids is None:
        flip_ids = flip_pool(customers, seed)
    ctx = multiprocessing.get_context("spawn")
    reader_end, reader_child = ctx.Pipe()
    reader = ctx.Process(
        target=_read_changes,
        args=(
            bootstrap,
            membership_topic,
            partitions,
            reader_child,
            {**READER_CONFIG, **(reader_config or {})},
        ),
        name="membership-reader",
        daemon=True,
    )
    reader.start()
    producer: BaseProcess | None = None
    try:
        if reader_end.recv() != "ready":
            raise RuntimeError("the membership reader did not start")
        producer_end, producer_child = ctx.Pipe()
        producer = ctx.Process(
            target=_produce,
            args=(
                bootstrap,
                events_topic,
                seed + 2 if rate == 1000 else seed + 2 + int(rate),
                customers,
                flip_ids,
                [(rate, warmup_s, f"warm{phase_id}"), (rate, seconds, f"lat{phase_id}")],
                flip_share,
                linger_ms,
                producer_child,
                dict(producer_config or {}),
            ),
            name="paced-producer",
            daemon=True,
        )
        producer.start()
        sent, took, sent_at, acked_at, used, producer_cpu, phases = producer_end.recv()
        producer.join(10)
        del flip_ids[len(flip_ids) - used :]  # popped from the end, as `_paced` does
        reader_end.send((set(sent_at), drain_s))
        arrivals, stamped, reader_cpu = reader_end.recv()
        reader.join(10)
    finally:
        for process in (producer, reader):
            if process is not None and process.is_alive():
                process.kill()
                process.join(5)
    latencies = [(arrivals[cid] - at) * 1000 for cid, at in sent_at.items() if cid in arrivals]
    first = min(sent_at.values(), default=0.0)
    window = 5.0 if seconds >= 10 else 1.0
    buckets: dict[int, list[float]] = {}
    for cid, at in sent_at.items():
        if cid in arrivals:
            buckets.setdefault(int((at - first) // window), []).append((arrivals[cid] - at) * 1000)
    by_window = [sorted(v)[len(v) // 2] for _k, v in sorted(buckets.items())]
    return LatencyResult(
        offered_rate=rate,
        achieved_rate=sent / took if took else 0.0,
        seconds=took,
        sent=sent,
        flips=len(sent_at),
        matched=len(latencies),
        latencies_ms=latencies,
        p50_by_window_ms=by_window,
        produced_ms=[(acked_at[c] - at) * 1000 for c, at in sent_at.items() if c in acked_at],
        after_worker_ms=[(arrivals[c] - stamped[c]) * 1000 for c in sent_at if c in arrivals],
        worker_ms=[(stamped[cid] - at) * 1000 for cid, at in sent_at.items() if cid in stamped],
        load_cpu_s={"bench-paced-producer": producer_cpu, "bench-change-reader": reader_cpu},
        producer_phases=phases,
    )
