"""`wrong_partition`: an event that would create a customer on another partition than Kafka's
default partitioner (murmur2) gives its key is dead-lettered; placed ones and existing
customers' events are applied (real broker, real worker)."""

from __future__ import annotations

import time
from typing import Any

import msgpack
from kafka.partitioner.default import murmur2

from .dlq import profile, wait_letters
from .fixtures import Harness, segment

PARTITIONS = 4  # unique_env's LS_EVENTS_PARTITIONS


def _home(customer: str) -> int:
    return (murmur2(customer.encode()) & 0x7FFFFFFF) % PARTITIONS


def _send(h: Harness, customer: str, partition: int, n: int) -> None:
    event = {
        "event_id": f"{customer}-{n}",
        "customer_id": customer,
        "type": "profile",
        "ts": int(time.time() * 1000),
        "properties": {"ok": True, "n": n},
    }
    h.client.producer.send(
        h.settings.events_topic,
        key=customer.encode(),
        value=msgpack.packb(event),
        partition=partition,
    )


def _stored_on(h: Harness, customer: str) -> list[int]:
    return [p for p in range(PARTITIONS) if h.redis.exists(h.keys.partition(p).profile(customer))]


def _restart(h: Harness, **env: str | None) -> None:
    h.worker.stop()
    for name, value in env.items():
        if value is None:
            h.env.pop(name, None)
        else:
            h.env[name] = value
    h.worker.start()
    h._wait_ready()


def _letters_of(letters: list[dict[str, Any]], customer: str) -> list[dict[str, Any]]:
    return [letter for letter in letters if letter["key"] == customer.encode()]


def test_a_new_customer_on_another_partition_is_dead_lettered_and_a_placed_one_applied(
    harness: Harness,
) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("wp-ok", {"attr": "ok", "op": "eq", "value": True}),
        }
    )
    away, placed = "wp-away", "wp-placed"
    wrong = (_home(away) + 1) % PARTITIONS
    _send(h, away, wrong, 1)
    _send(h, away, wrong, 2)  # the customer's second event in the same or the next batch
    _send(h, placed, _home(placed), 1)
    h.client.flush()
    h.wait_members("wp-ok", {placed})

    letters = wait_letters(h, lambda got: len(_letters_of(got, away)) == 2)
    assert _letters_of(letters, placed) == []
    for n, letter in enumerate(_letters_of(letters, away), 1):
        assert letter["code"] == "wrong_partition"
        assert (letter["topic"], letter["partition"]) == (h.settings.events_topic, wrong)
        assert msgpack.unpackb(letter["value"])["event_id"] == f"{away}-{n}"
        reason = letter["reason"]
        assert f"{h.settings.events_topic}[{wrong}]" in reason
        assert f"key b'{away}' on partition {_home(away)} of {PARTITIONS}" in reason
        assert "partitioner=murmur2_random" in reason
    assert _stored_on(h, away) == []
    assert _stored_on(h, placed) == [_home(placed)]


def test_with_the_check_off_a_misplaced_customer_is_created_and_later_not_checked_again(
    harness: Harness,
) -> None:
    """LS_CHECK_PARTITIONER=0 creates the customer where its event came; once the check is on
    again, that existing customer's events are applied (only creation is checked), while a
    new misplaced customer is still refused."""
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("wp-n2", {"attr": "n", "op": "eq", "value": 2}),
        }
    )
    old = "wp-old"
    wrong = (_home(old) + 1) % PARTITIONS
    # a new customer misplaced on the same partition: likely in the same batch as `old`'s
    new = next(c for c in (f"wp-new-{i}" for i in range(100)) if _home(c) != wrong)
    try:
        _restart(h, LS_CHECK_PARTITIONER="0")
        _send(h, old, wrong, 1)
        h.client.flush()
        deadline = time.monotonic() + 30
        while _stored_on(h, old) != [wrong] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _stored_on(h, old) == [wrong]
    finally:
        _restart(h, LS_CHECK_PARTITIONER=None)
    _send(h, old, wrong, 2)
    _send(h, new, wrong, 2)
    h.client.flush()
    h.wait_members("wp-n2", {old})
    stored = profile(h, old)
    assert stored is not None and stored.attrs["n"] == 2
    letters = wait_letters(h, lambda got: len(_letters_of(got, new)) == 1)
    assert _letters_of(letters, old) == []
    assert _letters_of(letters, new)[0]["code"] == "wrong_partition"
    assert _stored_on(h, new) == []
