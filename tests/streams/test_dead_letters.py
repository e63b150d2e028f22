"""Every kind of unusable event lands in the dead-letter topic; the worker keeps going."""

from __future__ import annotations

import json
import time

import msgpack

from .fixtures import Harness, segment


def _event(customer: str, **overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": f"e-{customer}",
        "customer_id": customer,
        "type": "profile",
        "ts": int(time.time() * 1000),
        "properties": {"ok": True},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not _DROP}


_DROP = object()


def test_each_bad_input_is_dead_lettered_with_its_bytes_and_reason(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("ok-flag", {"attr": "ok", "op": "eq", "value": True}),
        }
    )
    now = int(time.time() * 1000)
    bad: dict[str, tuple[bytes | None, bytes]] = {
        "undecodable": (b"d1", b"\xc1\xc1 definitely not msgpack"),
        "not_json": (b"d2", b'{"event_id": "x", '),
        "not_a_map": (b"d3", msgpack.packb([1, 2, 3])),
        "missing_field": (b"d4", msgpack.packb(_event("d4", ts=_DROP))),
        "wrong_type": (b"d5", json.dumps(_event("d5", ts="yesterday")).encode()),
        "oversized": (b"d6", msgpack.packb(_event("d6", properties={"blob": "x" * 70_000}))),
        "future_ts": (b"d7", msgpack.packb(_event("d7", ts=now + 3_600_000))),
        "wrong_key": (b"someone-else", msgpack.packb(_event("d8"))),
        "empty": (b"d9", b""),
    }
    for key, value in bad.values():
        h.client.send_raw(h.settings.events_topic, key, value)
    h.client.send_event("good-after-bad", "profile", {"ok": True})
    h.client.flush()
    h.wait_members("ok-flag", {"good-after-bad"})

    letters = {}
    deadline = time.monotonic() + 30
    while len(letters) < len(bad) and time.monotonic() < deadline:
        for message in h.client.read_all(h.settings.dlq_topic, idle=0.5):
            letter = msgpack.unpackb(message.value, raw=False)
            letters[letter["code"]] = letter
    assert set(letters) == set(bad)
    for code, (key, value) in bad.items():
        letter = letters[code]
        assert letter["value"] == value, code
        assert letter["key"] == key, code
        assert letter["topic"] == h.settings.events_topic
        assert isinstance(letter["offset"], int) and letter["reason"], code
    assert "70" in letters["oversized"]["reason"] and "65536" in letters["oversized"]["reason"]
    assert "'ts'" in letters["missing_field"]["reason"]
    assert "customer_id 'd8'" in letters["wrong_key"]["reason"]
    # nothing bad reached a profile
    bad_customers = ("d1", "d2", "d3", "d4", "d5", "d6", "d7", "d8", "d9")
    assert not any(
        h.redis.exists(h.keys.partition(p).profile(c))
        for p in range(h.settings.events_partitions)
        for c in bad_customers
    )
