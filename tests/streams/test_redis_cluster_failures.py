"""A Redis Cluster node dies under a running worker (a private cluster on its own ports).

* With replicas: the master holding a partition is SIGKILLed mid-stream, its replica is
  promoted; the partition pauses (a stall in /health), then resumes, and the memberships equal
  an independent evaluation of the same events (`tests/segment_rules/reference.py`).
* Without a replica, the master restarts from an empty data dir (data lost): the partitions it
  served are refused (StateBehindError) instead of serving memberships of a lost state, and the
  other partitions keep going.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from streams.engine.group_offsets import GroupOffsets
from tests import layout

from ..private_redis_cluster import PrivateRedisCluster
from ..segment_rules.reference import ref_segment
from .dlq import profile
from .fixtures import Harness, segment, unique_env
from .health import wait_health

PARTITIONS = 4
CUSTOMERS = 200
EVENTS = 2400
SEGMENTS = [
    segment("de", {"attr": "country", "op": "eq", "value": "DE"}),
    segment("gold", {"attr": "tier", "op": "in", "value": ["gold", "platinum"]}),
    segment(
        "spent-200",
        {"event": "purchase", "agg": "sum", "prop": "amount", "op": "gte", "value": 200},
    ),
    segment("frequent", {"event": "purchase", "agg": "count", "op": "gte", "value": 6}),
    {
        "id": "gold-de-or-big",
        "name": "Gold DE or big spenders",
        "rules": [
            {"where": {"all": [{"attr": "country", "op": "eq", "value": "DE"},
                               {"attr": "tier", "op": "eq", "value": "gold"}]}},
            {"op": "union", "where": {"event": "purchase", "agg": "max", "prop": "amount",
                                      "op": "gt", "value": 45}},
            {"op": "except", "where": {"attr": "opt_out", "op": "eq", "value": True}},
        ],
    },
]  # fmt: skip


def _events(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    events = []
    for n in range(EVENTS):
        customer = f"c{rng.randrange(CUSTOMERS)}"
        if rng.random() < 0.4:
            kind, props = (
                "profile",
                {
                    "country": rng.choice(["DE", "FR", "AT", None]),
                    "tier": rng.choice(["gold", "silver", "platinum", None]),
                    "opt_out": rng.random() < 0.1,
                },
            )
        else:
            kind, props = "purchase", {"amount": rng.randint(1, 50)}
        events.append(
            {"event_id": f"ev{n}", "customer_id": customer, "type": kind, "ts": base + n,
             "properties": props}
        )  # fmt: skip
    return events


def _reference(events: list[dict[str, Any]], now: int) -> dict[str, set[str]]:
    """Segment id -> members, from the raw events by the reference interpreter alone."""
    raws: dict[str, dict[str, Any]] = {}
    for e in events:
        raw = raws.setdefault(e["customer_id"], {"attrs": {}, "events": {}, "segments": {}})
        if e["type"] == "profile":
            for key, value in e["properties"].items():
                if value is None:
                    raw["attrs"].pop(key, None)
                else:
                    raw["attrs"][key] = value
        else:
            raw["events"].setdefault(e["type"], []).append((e["ts"], e["properties"]))
    return {s["id"]: {c for c, raw in raws.items() if ref_segment(s, raw, now)} for s in SEGMENTS}


def _send(h: Harness, events: list[dict[str, Any]]) -> None:
    for e in events:
        h.client.send_raw(h.settings.events_topic, e["customer_id"].encode(), msgpack.packb(e))
    h.client.flush()


def _progress(h: Harness) -> tuple[int, int]:
    """(messages applied, messages in the events topic) over all partitions."""
    consumer = KafkaConsumer(bootstrap_servers=h.settings.kafka_bootstrap.split(","))
    parts = [TopicPartition(h.settings.events_topic, p) for p in range(PARTITIONS)]
    ends = consumer.end_offsets(parts)
    consumer.close()
    applied = 0
    for p in range(PARTITIONS):
        offset = h.redis.hget(h.keys.partition(p).meta, "offset")
        applied += int(offset) + 1 if offset is not None else 0
    return applied, sum(ends.values())


def _wait_caught_up(h: Harness, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied, total = _progress(h)
        if applied == total:
            return
        time.sleep(0.2)
    pytest.fail(f"worker did not catch up: {_progress(h)}")


def _committed(h: Harness) -> int:
    """The offsets the worker's group committed in Kafka, summed over the partitions."""
    s = h.settings

    async def read() -> int:
        offsets = GroupOffsets(s.kafka_bootstrap, s.app_id, s.events_topic)
        try:
            found = [await offsets.committed(p) for p in range(PARTITIONS)]
        finally:
            await offsets.close()
        return sum(o for o in found if o is not None)

    return asyncio.run(read())


def _stalled_partition(status: int, body: dict[str, Any]) -> bool:
    return status == 503 and any(
        str(s["where"]).startswith("partition ") for s in body.get("stalls") or []
    )


@pytest.fixture
def cluster_harness(
    request: pytest.FixtureRequest, kafka_bootstrap: str
) -> Iterator[tuple[PrivateRedisCluster, Harness]]:
    replicas = request.param
    # failover after 10 s: longer than redis-py's own retries, so the worker sees the outage
    cluster = PrivateRedisCluster(f"redis-failure-r{replicas}", replicas, node_timeout_ms=10_000)
    h: Harness | None = None
    try:
        cluster.start()
        env = unique_env(
            kafka_bootstrap,
            cluster.url,
            LS_EVENTS_PARTITIONS=str(PARTITIONS),
            LS_STALL_THRESHOLD_S="1",
            LS_BATCH_SIZE="40",
        )
        h = Harness(env, f"redis_cluster_r{replicas}")
        h.start()
        yield cluster, h
    finally:
        try:
            if h is not None:
                h.close()
        finally:
            cluster.close()  # even when the worker's cleanup failed


@pytest.mark.parametrize("cluster_harness", [1], indirect=True)
def test_master_killed_mid_stream_a_replica_takes_over_and_results_are_exact(
    cluster_harness: tuple[PrivateRedisCluster, Harness],
) -> None:
    cluster, h = cluster_harness
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    events = _events(seed=23)
    victim = cluster.master_of(h.keys.partition(0).meta)
    half = len(events) // 2
    _send(h, events[:half])
    applied, _ = _progress(h)
    deadline = time.monotonic() + 60
    while applied < half // 4 and time.monotonic() < deadline:  # mid-stream
        time.sleep(0.01)
        applied, _ = _progress(h)
    killed_at = time.monotonic()
    cluster.kill(victim)
    _send(h, events[half:])
    body = wait_health(h, _stalled_partition)
    assert body["status"] == "degraded"
    wait_health(h, lambda status, body: status == 200 and not body["stalls"], timeout=120)
    paused_s = time.monotonic() - killed_at
    _wait_caught_up(h)

    expected = _reference(events, int(time.time() * 1000))
    got = {s["id"]: h.members(s["id"]) for s in SEGMENTS}
    mismatches = sum(len(expected[k] ^ got[k]) for k in expected)
    print(
        f"redis cluster failover: {len(events)} events, {CUSTOMERS} customers, "
        f"{len(SEGMENTS)} segments; master 127.0.0.1:{victim} SIGKILLed at {applied} applied; "
        f"healthy again {paused_s:.1f}s later; mismatches {mismatches}"
    )
    assert all(expected.values())
    assert mismatches == 0, {k: sorted(expected[k] ^ got[k])[:5] for k in expected}


@pytest.mark.parametrize("cluster_harness", [0], indirect=True)
def test_master_restarted_empty_without_a_replica_refuses_its_partitions(
    cluster_harness: tuple[PrivateRedisCluster, Harness],
) -> None:
    cluster, h = cluster_harness
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    events = _events(seed=29)[:600]
    _send(h, events)
    _wait_caught_up(h)
    deadline = time.monotonic() + 60  # faust commits the applied offsets every few seconds
    while _committed(h) < len(events) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _committed(h) >= len(events)

    victim = cluster.master_of(h.keys.partition(0).meta)
    lost = [p for p in range(PARTITIONS) if cluster.master_of(h.keys.partition(p).meta) == victim]
    kept = [p for p in range(PARTITIONS) if p not in lost]
    cluster.kill(victim)
    cluster.wipe_data(victim)
    cluster.start()  # the node comes back with its slots and no data

    after = {p: _customer_on(p) for p in range(PARTITIONS)}
    for p, customer in after.items():
        h.client.send_event(customer, "profile", {"after": p})
    h.client.flush()

    def refused(body: dict[str, Any]) -> set[int]:
        return {int(s["where"].split()[1].rstrip(":")) for s in body["stalls"] if s["refused"]}

    body = wait_health(h, lambda status, body: status == 503 and bool(refused(body)), timeout=90)
    # a refused partition holds the worker's events agent (docs/operations.md), so only one of
    # the lost partitions may be reached: never one of the kept ones
    assert refused(body) <= set(lost), (lost, body["stalls"])
    assert all("StateBehindError" in s["error"] for s in body["stalls"] if s["refused"])
    for p in lost:  # nothing applied on top of the lost state: no wrong membership is served
        assert profile(h, after[p]) is None
        assert not any(h.redis.bitcount(h.keys.partition(p).members(s["id"])) for s in SEGMENTS)
    expected = _reference(events, int(time.time() * 1000))
    on_kept = {e["customer_id"] for e in events if _partition_of(e["customer_id"]) in kept}
    mismatches = sum(len((expected[k] & on_kept) ^ _members(h, k, kept)) for k in expected)
    print(
        f"redis cluster data loss: {len(events)} events applied; master 127.0.0.1:{victim} "
        f"restarted empty; partitions {lost} lost, refused {sorted(refused(body))}; "
        f"partitions {kept} intact, mismatches {mismatches}"
    )
    assert mismatches == 0


def _members(h: Harness, segment_id: str, partitions: list[int]) -> set[str]:
    return {m for p in partitions for m in layout.members(h.redis, h.keys.partition(p), segment_id)}


def _partition_of(customer: str) -> int:
    """The events partition Kafka's default partitioner gives the customer id's key."""
    return (murmur2(customer.encode()) & 0x7FFFFFFF) % PARTITIONS


def _customer_on(partition: int) -> str:
    """A new customer id whose events land on `partition`."""
    for n in range(10_000):
        customer = f"after-{partition}-{n}"
        if _partition_of(customer) == partition:
            return customer
    raise AssertionError(f"no customer id found for partition {partition}")
