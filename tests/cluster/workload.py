"""A seeded workload, its reference evaluation, and the checks the cluster tests share.

The expected memberships come from the project's reference interpreter
(`tests/segment_rules/reference.py`), applied to the same events in each customer's order
(Kafka keeps that order: the key is the customer), with no engine code involved: the
definitions have no time windows, so the result does not depend on when the events applied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import msgpack
from kafka import KafkaConsumer, TopicPartition

from tests import layout
from tests.segment_rules.reference import Raw, ref_segment
from tests.streams.fixtures import Harness, segment

__all__ = [
    "LATE",
    "SEGMENTS",
    "Event",
    "applied_purchases",
    "check_against_reference",
    "progress",
    "reference",
    "stream",
    "wait_caught_up",
    "workload",
]

Event = tuple[str, dict[str, Any]]
"""(customer id, event) as sent: the customer id is the Kafka key."""

SEGMENTS = [  # dependencies first: the reference evaluates them in this order
    segment("de", {"attr": "country", "op": "eq", "value": "DE"}),
    segment("gold", {"attr": "tier", "op": "in", "value": ["gold", "platinum"]}),
    segment(
        "spent-300",
        {"event": "purchase", "agg": "sum", "prop": "amount", "op": "gte", "value": 300},
    ),
    segment("regular", {"event": "purchase", "agg": "count", "op": "gte", "value": 6}),
    segment(
        "browser",
        {
            "event": "view",
            "agg": "distinct_count",
            "prop": "page",
            "op": "gte",
            "value": 4,
            "filter": {"prop": "page", "op": "starts_with", "value": "/p/"},
        },
    ),
    {
        "id": "gold-de-or-big",
        "name": "Gold DE or big spenders",
        "rules": [
            {"where": {"all": [{"in_segment": "de"}, {"in_segment": "gold"}]}},
            {"op": "union", "where": {"in_segment": "spent-300"}},
            {"op": "except", "where": {"attr": "opt_out", "op": "eq", "value": True}},
        ],
    },
]
LATE = segment(
    "big-basket", {"event": "purchase", "agg": "max", "prop": "amount", "op": "gt", "value": 90}
)
"""Activated mid-run: its backfill is a job that must complete across a rebalance."""


def workload(seed: int, customers: int, events: int) -> list[Event]:
    """Profile updates, purchases and page views, with some upstream redeliveries (the same
    event_id again, a little later)."""
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    out: list[Event] = []
    for n in range(events):
        customer = f"c{rng.randrange(customers)}"
        roll = rng.random()
        if roll < 0.3:
            kind, props = (
                "profile",
                {
                    "country": rng.choice(["DE", "FR", "AT", None]),
                    "tier": rng.choice(["gold", "silver", "platinum", None]),
                    "opt_out": rng.random() < 0.1,
                },
            )
        elif roll < 0.7:
            kind, props = "purchase", {"amount": rng.randint(1, 100)}
        else:
            kind, props = (
                "view",
                {"page": rng.choice(["/p/1", "/p/2", "/p/3", "/p/4", "/p/5", "/"])},
            )
        event = {
            "event_id": f"ev{n}",
            "customer_id": customer,
            "type": kind,
            "ts": base + n,
            "properties": props,
        }
        out.append((customer, event))
    for n in sorted(rng.sample(range(events - 50), events // 50), reverse=True):
        out.insert(n + rng.randint(1, 40), out[n])
    return out


def reference(
    definitions: Sequence[dict[str, Any]], events: Sequence[Event]
) -> dict[str, set[str]]:
    """segment id -> members, by the reference interpreter over `events` (each applied once)."""
    profiles: dict[str, Raw] = {}
    seen: set[str] = set()
    for customer, event in events:
        if event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        raw = profiles.setdefault(customer, {"attrs": {}, "events": {}, "segments": set()})
        if event["type"] == "profile":
            for name, value in event["properties"].items():
                if value is None:
                    raw["attrs"].pop(name, None)
                else:
                    raw["attrs"][name] = value
        else:
            raw["events"].setdefault(event["type"], []).append((event["ts"], event["properties"]))
    now = int(time.time() * 1000)
    members: dict[str, set[str]] = {d["id"]: set() for d in definitions}
    for customer, raw in profiles.items():
        for definition in definitions:
            if ref_segment(definition, raw, now):
                raw["segments"].add(definition["id"])
                members[definition["id"]].add(customer)
    return members


def stream(h: Harness, events: Sequence[Event], seconds: float, slices: int = 20) -> None:
    """Send `events` spread over about `seconds` (a steady stream while workers come and go)."""
    step = max(1, len(events) // slices)
    for start in range(0, len(events), step):
        for customer, event in events[start : start + step]:
            h.client.send_raw(h.settings.events_topic, customer.encode(), msgpack.packb(event))
        h.client.flush()
        time.sleep(seconds / slices)


def progress(h: Harness) -> tuple[int, int]:
    """(messages applied, messages in the events topic) over all partitions."""
    partitions = h.settings.events_partitions
    consumer = KafkaConsumer(bootstrap_servers=h.settings.kafka_bootstrap.split(","))
    try:
        ends = consumer.end_offsets(
            [TopicPartition(h.settings.events_topic, p) for p in range(partitions)]
        )
    finally:
        consumer.close()
    applied = 0
    for p in range(partitions):
        offset = h.redis.hget(h.keys.partition(p).meta, "offset")
        applied += int(offset) + 1 if offset is not None else 0
    return applied, sum(ends.values())


def wait_caught_up(h: Harness, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied, total = progress(h)
        if applied == total:
            return
        time.sleep(0.2)
    raise AssertionError(f"the workers did not catch up within {timeout}s: {progress(h)}")


def applied_purchases(h: Harness) -> dict[str, int]:
    """Purchases kept in each customer's profile (each applied once: one record each)."""
    counts: dict[str, int] = {}
    for p in range(h.settings.events_partitions):
        keys = h.keys.partition(p)
        for cid in layout.customers(h.redis, keys):
            blob = h.redis.get(keys.profile(cid))
            counts[cid] = len(layout.decode(cid, blob).events.get("purchase", []))
    return counts


def check_against_reference(
    h: Harness, definitions: Sequence[dict[str, Any]], events: Sequence[Event]
) -> dict[str, set[str]]:
    """Redis memberships, and the membership topic folded by seq, equal the reference; every
    purchase applied once. Returns the expected memberships."""
    expected = reference(definitions, events)
    got = {d["id"]: h.members(d["id"]) for d in definitions}
    mismatches = {
        sid: (sorted(got[sid] - expected[sid]), sorted(expected[sid] - got[sid]))
        for sid in expected
        if got[sid] != expected[sid]
    }
    assert not mismatches, f"Redis differs from the reference (extra, missing): {mismatches}"
    assert all(expected.values()), expected  # a workload that fills every segment
    purchases: dict[str, set[str]] = {}
    for customer, event in events:
        if event["type"] == "purchase":
            purchases.setdefault(customer, set()).add(event["event_id"])
    stored = applied_purchases(h)
    wrong = {
        customer: (stored.get(customer, 0), len(purchases.get(customer, ())))
        for customer in purchases.keys() | stored.keys()
        if stored.get(customer, 0) != len(purchases.get(customer, ()))
    }
    assert not wrong, (
        f"purchases kept by customer (stored, sent) differ: {wrong}; "
        f"{progress(h)} messages (applied, in the topic)"
    )
    fold = h.client.wait_for(
        lambda f: {sid: f.members.get(sid, set()) for sid in expected} == expected,
        timeout=60,
        what="membership topic folded by seq equal to the reference",
    )
    assert {sid: fold.members.get(sid, set()) for sid in expected} == expected
    return expected
