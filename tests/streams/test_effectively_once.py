"""Killed mid-stream (SIGKILL, and a SIGTERM in the middle of a batch), restarted: exactly the
memberships and aggregates of an uninterrupted run."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from kafka import KafkaConsumer, TopicPartition

from tests import layout

from .fixtures import Harness, segment, unique_env

CUSTOMERS = 150
EVENTS = 3000
SEGMENTS = [
    segment("de", {"attr": "country", "op": "eq", "value": "DE"}),
    segment("gold", {"attr": "tier", "op": "in", "value": ["gold", "platinum"]}),
    segment(
        "spent-200",
        {"event": "purchase", "agg": "sum", "prop": "amount", "op": "gte", "value": 200},
    ),
    segment("frequent", {"event": "purchase", "agg": "count", "op": "gte", "value": 8}),
    {
        "id": "gold-de-spenders",
        "name": "Gold DE spenders",
        "rules": [
            {"where": {"all": [{"in_segment": "de"}, {"in_segment": "gold"}]}},
            {"op": "union", "where": {"in_segment": "spent-200"}},
            {"op": "except", "where": {"attr": "opt_out", "op": "eq", "value": True}},
        ],
    },
]
LATE = segment(
    "big-basket", {"event": "purchase", "agg": "max", "prop": "amount", "op": "gt", "value": 45}
)


def _events(seed: int) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    base = int(time.time() * 1000) - 3_600_000
    events = []
    for n in range(EVENTS):
        customer = f"c{rng.randrange(CUSTOMERS)}"
        if rng.random() < 0.4:
            props: dict[str, Any] = {
                rng.choice(["country", "tier", "opt_out"]): rng.choice(
                    {
                        "country": ["DE", "FR", "AT", None],
                        "tier": ["gold", "silver", "platinum"],
                        "opt_out": [True, False],
                    }[k]
                )
                for k in ["country", "tier", "opt_out"][:1]
            }
            props = {
                "country": rng.choice(["DE", "FR", "AT", None]),
                "tier": rng.choice(["gold", "silver", "platinum", None]),
                "opt_out": rng.random() < 0.1,
            }
            event = ("profile", props)
        else:
            event = ("purchase", {"amount": rng.randint(1, 50)})
        events.append(
            (
                customer,
                {
                    "event_id": f"ev{n}",
                    "customer_id": customer,
                    "type": event[0],
                    "ts": base + n,
                    "properties": event[1],
                },
            )
        )
    # upstream retries: some events delivered twice, later, with the same event_id
    for n in rng.sample(range(EVENTS - 50), 60):
        events.insert(n + rng.randint(1, 40), events[n])
    return events


def _send(h: Harness, events: list[tuple[str, dict[str, Any]]]) -> None:
    for customer, event in events:
        h.client.send_raw(h.settings.events_topic, customer.encode(), msgpack.packb(event))
    h.client.flush()


def _progress(h: Harness) -> tuple[int, int]:
    """(messages applied, messages in the events topic) over all partitions."""
    consumer = KafkaConsumer(bootstrap_servers=h.settings.kafka_bootstrap.split(","))
    parts = [TopicPartition(h.settings.events_topic, p) for p in range(4)]
    ends = consumer.end_offsets(parts)
    consumer.close()
    applied = 0
    for p in range(4):
        offset = h.redis.hget(h.keys.partition(p).meta, "offset")
        applied += int(offset) + 1 if offset is not None else 0
    return applied, sum(ends.values())


def _wait_caught_up(h: Harness, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        applied, total = _progress(h)
        if applied == total:
            return
        time.sleep(0.2)
    pytest.fail(f"worker did not catch up: {_progress(h)}")


def _state(h: Harness) -> dict[str, Any]:
    members = {s["id"]: h.members(s["id"]) for s in [*SEGMENTS, LATE]}
    profiles = {}
    for p in range(4):
        keys = h.keys.partition(p)
        for customer in layout.customers(h.redis, keys):
            profile = layout.decode(customer, h.redis.get(keys.profile(customer)))
            profiles[customer] = (
                profile.attrs,
                {t: [tuple(r) for r in rs] for t, rs in profile.events.items()},
                sorted(profile.segments),
            )
    return {"members": members, "profiles": profiles}


@pytest.fixture
def pair(kafka_bootstrap: str, redis_url: str) -> Iterator[tuple[Harness, Harness]]:
    small = {"LS_BATCH_SIZE": "40", "LS_TASK_CHUNK": "20", "LS_BATCH_WITHIN_S": "0.005"}
    reference = Harness(unique_env(kafka_bootstrap, redis_url, **small), "once-reference")
    crashed = Harness(unique_env(kafka_bootstrap, redis_url, **small), "once-crashed")
    yield reference, crashed
    reference.close()
    crashed.close()


def _run(h: Harness, events: list[tuple[str, dict[str, Any]]], crash: bool) -> None:
    h.start()
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    half = len(events) // 2
    _send(h, events[:half])
    if crash:  # a graceful stop in the middle of a batch must not commit it to Kafka either
        _kill_mid_stream(h, sig=signal.SIGTERM)
    _wait_caught_up(h)
    # activate a segment over the existing customers, killing the worker during the backfill
    h.client.send_command(
        {"command": "create", "request_id": "late", "activate": True, "segment": LATE}
    )
    if crash:
        _kill_mid_stream(h, during_task=True)
    assert h.client.wait_reply("late", timeout=120)["ok"]
    _send(h, events[half:])
    if crash:
        _kill_mid_stream(h)
    _wait_caught_up(h)


def _kill_mid_stream(h: Harness, during_task: bool = False, sig: int = signal.SIGKILL) -> None:
    start_applied, total = _progress(h)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        applied, total = _progress(h)
        task_running = any(h.redis.hexists(h.keys.partition(p).meta, "task") for p in range(4))
        if (during_task and task_running) or (
            not during_task and start_applied < applied < total - 100
        ):
            break
        time.sleep(0.01)
    h.worker.kill(sig)
    h.worker.start()


def test_sigkill_and_restart_gives_the_uninterrupted_result(
    pair: tuple[Harness, Harness],
) -> None:
    reference, crashed = pair
    events = _events(seed=11)
    _run(reference, events, crash=False)
    _run(crashed, events, crash=True)
    assert crashed.worker.starts == 4  # three stops (SIGTERM, SIGKILL, SIGKILL), three restarts
    expected, got = _state(reference), _state(crashed)
    assert got["members"] == expected["members"]
    assert got["profiles"] == expected["profiles"]
    assert any(expected["members"].values())
    # every purchase applied once: duplicates (same event_id) and replays were dropped
    purchases = sum(len(p[1].get("purchase", [])) for p in got["profiles"].values())
    assert purchases == len({e["event_id"] for _, e in events if e["type"] == "purchase"})
    # and the membership topic, folded from the start, gives exactly the memberships
    for h, state in ((reference, expected), (crashed, got)):
        fold = h.client.wait_for(
            lambda f, s=state: {k: f.members.get(k, set()) for k in s["members"]} == s["members"],
            timeout=30,
            what="membership topic fold equal to Redis",
        )
        assert {k: fold.members.get(k, set()) for k in state["members"]} == state["members"]
