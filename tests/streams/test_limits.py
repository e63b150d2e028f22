"""Configured limits are enforced with clear errors (a worker with small limits)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgpack
import pytest

from tests import layout

from .fixtures import Harness, read_until, segment, unique_env


@pytest.fixture(scope="module")
def small(kafka_bootstrap: str, redis_url: str) -> Iterator[Harness]:
    env = unique_env(
        kafka_bootstrap,
        redis_url,
        LS_MAX_ACTIVE_SEGMENTS="2",
        LS_MAX_CONDITIONS="3",
        LS_MAX_DEPTH="2",
        LS_HISTORY_MAX_EVENTS="3",
        LS_HISTORY_MAX_AGE_MS=str(86_400_000),
        LS_MAX_MESSAGE_BYTES="400",
    )
    h = Harness(env, "limits")
    h.start()
    yield h
    h.close()


def _leaf(n: int) -> dict[str, object]:
    return {"attr": f"a{n}", "op": "exists"}


def test_definition_limits_name_the_path(small: Harness) -> None:
    reply = small.command(
        {
            "command": "create",
            "segment": segment("wide", {"any": [_leaf(1), _leaf(2), _leaf(3), _leaf(4)]}),
        }
    )
    assert reply["error"]["code"] == "limit_exceeded"
    assert "3" in reply["error"]["message"]
    reply = small.command(
        {"command": "create", "segment": segment("deep", {"all": [{"any": [{"not": _leaf(1)}]}]})}
    )
    assert reply["error"]["code"] == "limit_exceeded"
    assert reply["error"]["path"].startswith("segment.rules[0].where")
    reply = small.command(
        {
            "command": "create",
            "segment": segment(
                "long-window",
                {"event": "visit", "agg": "count", "within": "2d", "op": "gt", "value": 0},
            ),
        }
    )
    assert reply["error"]["code"] == "limit_exceeded"
    assert reply["error"]["path"] == "segment.rules[0].where.within"


def _deactivate_all(h: Harness) -> None:
    """No active segment left, whatever the module's other tests activated."""
    for segment_id, blob in h.redis.hgetall(h.keys.registry.segments).items():
        if msgpack.unpackb(blob, raw=False)["active"]:
            h.ok({"command": "deactivate", "segment_id": segment_id.decode()})


def test_active_segment_limit(small: Harness) -> None:
    _deactivate_all(small)
    for n in range(2):
        small.ok({"command": "create", "activate": True, "segment": segment(f"on{n}", _leaf(n))})
    small.ok({"command": "create", "segment": segment("third", _leaf(3))})
    reply = small.command({"command": "activate", "segment_id": "third"})
    assert reply["error"]["code"] == "limit_exceeded"
    assert "LS_MAX_ACTIVE_SEGMENTS" in reply["error"]["message"]
    small.ok({"command": "deactivate", "segment_id": "on0"})
    small.ok({"command": "activate", "segment_id": "third"})


def test_history_keeps_the_newest_events_and_large_messages_are_refused(small: Harness) -> None:
    _deactivate_all(small)  # room under LS_MAX_ACTIVE_SEGMENTS=2
    small.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "four-visits", {"event": "visit", "agg": "count", "op": "gte", "value": 3}
            ),
        }
    )
    now = int(time.time() * 1000)
    for n in range(5):
        small.client.send_event("h1", "visit", {"n": n}, ts=now - 5000 + n)
    big = {
        "event_id": "big",
        "customer_id": "h1",
        "type": "visit",
        "ts": now,
        "properties": {"pad": "x" * 500},
    }
    small.client.send_raw(small.settings.events_topic, b"h1", msgpack.packb(big))
    small.client.flush()
    small.wait_members("four-visits", {"h1"})
    # the oversized message comes after the visits: wait for its dead letter, and for the
    # profile to hold all five visits applied (the newest three of them)
    letters = read_until(
        small.settings.kafka_bootstrap, small.settings.dlq_topic, lambda got: len(got) >= 1
    )
    assert [letter["code"] for letter in letters] == ["oversized"]
    profile_keys = [small.keys.partition(p).profile("h1") for p in range(4)]
    deadline = time.monotonic() + 30
    while True:
        blob = next(b for b in (small.redis.get(k) for k in profile_keys) if b)
        kept = [r.props["n"] for r in layout.decode("h1", blob).events["visit"]]
        if kept == [2, 3, 4] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert kept == [2, 3, 4]  # only the newest three are retained
