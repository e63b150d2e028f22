"""Reading a test's dead-letter topic and profiles (integration helpers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgpack

from state import Profile
from tests import layout

from .fixtures import Harness


def dead_letters(h: Harness) -> list[dict[str, Any]]:
    """Every letter on the test's dead-letter topic so far."""
    return [
        msgpack.unpackb(m.value, raw=False) for m in h.client.read_all(h.settings.dlq_topic, 0.5)
    ]


def wait_letters(
    h: Harness, done: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    letters = dead_letters(h)
    while not done(letters) and time.monotonic() < deadline:
        letters = dead_letters(h)
    assert done(letters), letters[-20:]
    return letters


def profile(h: Harness, customer_id: str) -> Profile | None:
    """The customer's committed profile, from whichever partition holds it."""
    for p in range(h.settings.events_partitions):
        blob = h.redis.get(h.keys.partition(p).profile(customer_id))
        if blob is not None:
            return layout.decode(customer_id, blob)
    return None


def wait_attrs(h: Harness, expected: dict[str, dict[str, Any]], timeout: float = 60) -> None:
    """Wait until each customer's attributes equal the expected ones."""
    deadline = time.monotonic() + timeout
    pending = dict(expected)
    while pending and time.monotonic() < deadline:
        for customer_id, attrs in list(pending.items()):
            found = profile(h, customer_id)
            if found is not None and found.attrs == attrs:
                del pending[customer_id]
        if pending:
            time.sleep(0.2)
    wrong = {c: getattr(profile(h, c), "attrs", None) for c in list(pending)[:5]}
    assert not pending, f"{len(pending)} profiles differ, e.g. {wrong}"
