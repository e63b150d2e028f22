"""Event -> membership change latency at a fixed offered rate.

A paced producer sends activity events; a known share of them are `profile` events setting
`flag` true on a customer that never had it, which makes that customer enter
`FLIP_SEGMENT`. A consumer of the membership topic (in a thread) stamps each arriving
change; the latency of a flip is its arrival time minus the flip event's send time (same
machine, same clock: `time.time()`).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import msgpack
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from .workload import FLIP_SEGMENT, activity_event, customer_id

__all__ = ["LatencyResult", "flip_pool", "measure_latency"]


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
    worker_ms: list[float] = field(default_factory=list)
    """Event sent → the worker's `at` stamp on the change (no consumer-side delay)."""
    """p50 of the flips sent in each consecutive window (5 s; 1 s under 10 s): a rising
    series means the worker falls behind the offered rate, a flat one a fixed delay."""

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        data = sorted(self.latencies_ms if values is None else values)
        if not data:
            return float("nan")
        index = min(len(data) - 1, max(0, round(q / 100 * (len(data) - 1))))
        return data[index]


class _ChangeReader(threading.Thread):
    """Stamps every `entered` change of FLIP_SEGMENT with its arrival time."""

    def __init__(self, bootstrap: list[str], topic: str, partitions: int) -> None:
        super().__init__(daemon=True, name="membership-reader")
        self.arrivals: dict[str, float] = {}
        self.stamped: dict[str, float] = {}
        """The worker's own `at` stamp of each flip (epoch s): when it applied the event."""
        self.stop_flag = threading.Event()
        self.ready = threading.Event()
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=5
        )
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the end offsets now, before anything is sent
            self.consumer.position(tp)

    def run(self) -> None:
        self.ready.set()
        try:
            while not self.stop_flag.is_set():
                for records in self.consumer.poll(timeout_ms=50).values():
                    now = time.time()
                    for record in records:
                        change = msgpack.unpackb(record.value, raw=False)
                        if change["segment_id"] == FLIP_SEGMENT and change["change"] == "entered":
                            self.arrivals.setdefault(change["customer_id"], now)
                            self.stamped.setdefault(change["customer_id"], change["at"] / 1000)
        finally:
            self.consumer.close()


def _paced(
    producer: KafkaProducer,
    topic: str,
    rng: random.Random,
    customers: int,
    flip_ids: list[str],
    rate: float,
    seconds: float,
    flip_share: float,
    tag: str,
    sent_at: dict[str, float],
) -> tuple[int, float]:
    total = int(rate * seconds)
    started = time.perf_counter()
    for i in range(total):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        wall_ms = int(time.time() * 1000)
        if flip_ids and rng.random() < flip_share:
            cid = flip_ids.pop()
            event = {
                "event_id": f"flip-{tag}-{cid}",
                "customer_id": cid,
                "type": "profile",
                "ts": wall_ms,
                "properties": {"flag": True},
            }
            sent_at[cid] = time.time()
        else:
            event = activity_event(rng, customers, f"{tag}-{i}", wall_ms)
        producer.send(topic, key=event["customer_id"].encode(), value=msgpack.packb(event))
    producer.flush()
    return total, time.perf_counter() - started


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
) -> LatencyResult:
    rng = random.Random(seed + 2 if rate == 1000 else seed + 2 + int(rate))
    if flip_ids is None:
        flip_ids = flip_pool(customers, seed)
    reader = _ChangeReader(bootstrap, membership_topic, partitions)
    reader.start()
    reader.ready.wait()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
    try:
        _paced(
            producer,
            events_topic,
            rng,
            customers,
            flip_ids,
            rate,
            warmup_s,
            flip_share,
            "warm",
            {},
        )
        sent_at: dict[str, float] = {}
        sent, took = _paced(
            producer,
            events_topic,
            rng,
            customers,
            flip_ids,
            rate,
            seconds,
            flip_share,
            "lat",
            sent_at,
        )
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline and not sent_at.keys() <= reader.arrivals.keys():
            time.sleep(0.05)
    finally:
        producer.close()
        reader.stop_flag.set()
        reader.join(5)
    latencies = [
        (reader.arrivals[cid] - at) * 1000 for cid, at in sent_at.items() if cid in reader.arrivals
    ]
    first = min(sent_at.values(), default=0.0)
    window = 5.0 if seconds >= 10 else 1.0
    buckets: dict[int, list[float]] = {}
    for cid, at in sent_at.items():
        if cid in reader.arrivals:
            buckets.setdefault(int((at - first) // window), []).append(
                (reader.arrivals[cid] - at) * 1000
            )
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
        worker_ms=[
            (reader.stamped[cid] - at) * 1000
            for cid, at in sent_at.items()
            if cid in reader.stamped
        ],
    )
