"""No single message can stop a partition: each known trigger goes to the dead-letter topic
with a code, and the events after it are applied (issue #7, the events path)."""

from __future__ import annotations

import hashlib
import time

import msgpack

from streams.messages.dead_letters import KEY_CAP, VALUE_CAP

from .dlq import wait_attrs, wait_letters
from .fixtures import Harness, segment


def _now() -> int:
    return int(time.time() * 1000)


def _json(customer: str, properties: str, event_id: str = "e1", **fields: str) -> bytes:
    head = {"event_id": f'"{event_id}"', "customer_id": f'"{customer}"', "type": '"profile"'}
    head.update(fields)
    body = ",".join(f'"{k}":{v}' for k, v in head.items())
    return f'{{{body},"ts":{_now()},"properties":{properties}}}'.encode()


def _activate_within_last(h: Harness, segment_id: str, attr: str, within: str) -> None:
    where = {"attr": attr, "op": "within_last", "value": within}
    h.ok({"command": "create", "activate": True, "segment": segment(segment_id, where)})


def _after(h: Harness, tag: str) -> dict[str, dict[str, object]]:
    """Send one valid profile event to each of 16 customers (every partition); returns them."""
    expected: dict[str, dict[str, object]] = {}
    for i in range(16):
        customer = f"{tag}-{i}"
        h.client.send_event(customer, "profile", {"after": tag})
        expected[customer] = {"after": tag}
    h.client.flush()
    return expected


def test_a_lone_surrogate_in_a_json_event_is_dead_lettered_and_the_stream_goes_on(
    harness: Harness,
) -> None:
    """The issue's reproduction: `"\\ud800"` in a property stalled the partition forever."""
    h = harness
    h.client.send_raw(h.settings.events_topic, b"c1", _json("c1", '{"n":"\\ud800"}'))
    h.client.flush()
    expected = _after(h, "after-surrogate")
    letters = wait_letters(h, lambda ls: any(letter["key"] == b"c1" for letter in ls))
    letter = next(letter for letter in letters if letter["key"] == b"c1")
    assert letter["code"] == "invalid_value" and "surrogate" in letter["reason"]
    wait_attrs(h, expected)


def test_each_known_trigger_is_dead_lettered_with_a_code(harness: Harness) -> None:
    h = harness
    deep = "[" * 50_000  # under LS_MAX_MESSAGE_BYTES, deep enough for RecursionError
    triggers: dict[bytes, tuple[bytes, str]] = {
        b"t-event-id": (_json("t-event-id", "{}", event_id="\\ud800"), "invalid_value"),
        b"t-customer\xed\xa0\x80": (_json("t-customer\\ud800", "{}"), "invalid_value"),
        b"t-type": (_json("t-type", "{}", type='"\\udfff"'), "invalid_value"),
        b"t-prop-key": (_json("t-prop-key", '{"\\ud800":1}'), "invalid_value"),
        b"t-nan": (_json("t-nan", '{"n":NaN}'), "invalid_value"),
        b"t-inf": (_json("t-inf", '{"n":[Infinity]}'), "invalid_value"),
        b"t-digits": (_json("t-digits", '{"n":' + "7" * 5000 + "}"), "not_json"),
        b"t-deep": (_json("t-deep", '{"n":' + deep + "}"), "not_json"),
        b"t-intkey": (
            msgpack.packb(
                {
                    "event_id": "e1",
                    "customer_id": "t-intkey",
                    "type": "profile",
                    "ts": _now(),
                    "properties": {"a": [{"b": {7: 1}}]},
                }
            ),
            "wrong_type",
        ),
    }
    for key, (value, _code) in triggers.items():
        h.client.send_raw(h.settings.events_topic, key, value)
    h.client.flush()
    expected = _after(h, "after-triggers")
    letters = wait_letters(h, lambda ls: set(triggers) <= {letter["key"] for letter in ls})
    by_key = {letter["key"]: letter for letter in letters}
    for key, (value, code) in triggers.items():
        assert by_key[key]["code"] == code, (key, by_key[key]["reason"])
        assert by_key[key]["value"] == value
    wait_attrs(h, expected)


def test_within_last_on_an_attribute_near_2_to_64_is_applied_not_retried(harness: Harness) -> None:
    """Regression: the wake time (attribute + window) overflowed msgpack at every commit."""
    h = harness
    _activate_within_last(h, "seen-recently", "seen", "7d")
    h.client.send_event("huge-seen", "profile", {"seen": 2**64 - 1})
    h.client.send_event("now-seen", "profile", {"seen": _now()})
    h.client.flush()
    h.wait_members("seen-recently", {"huge-seen", "now-seen"})
    wait_attrs(h, _after(h, "after-huge"))


def test_a_message_that_fails_while_applied_is_isolated_as_unprocessable(
    harness: Harness,
) -> None:
    """A failure inside apply/commit (here: the customer's stored profile is corrupt) costs
    only that customer's message, dead-lettered `unprocessable` with the exception type;
    the rest of its batch is applied."""
    h = harness
    for p in range(h.settings.events_partitions):
        h.redis.set(h.keys.partition(p).profile("rotten"), b"\xc1 not a profile")
    for i in range(8):
        h.client.send_event(f"before-rotten-{i}", "profile", {"batch": "rotten"})
    h.client.send_event("rotten", "profile", {"batch": "rotten"}, event_id="rotten-1")
    expected = {f"before-rotten-{i}": {"batch": "rotten"} for i in range(8)}
    expected.update(_after(h, "after-rotten"))
    letters = wait_letters(h, lambda ls: any(letter["key"] == b"rotten" for letter in ls))
    letter = next(letter for letter in letters if letter["key"] == b"rotten")
    assert letter["code"] == "unprocessable"
    assert letter["reason"].startswith(("ExtraData", "FormatError", "UnpackValueError"))
    assert msgpack.unpackb(letter["value"], raw=False)["event_id"] == "rotten-1"
    wait_attrs(h, expected)


def test_a_huge_key_and_value_make_a_capped_dead_letter_that_kafka_accepts(
    harness: Harness,
) -> None:
    """Regression: a 600 kB key with a 300 kB value became a dead letter larger than the
    producer's request limit, refused by Kafka and retried forever."""
    h = harness
    key = b"k" * 600_000
    value = b"\xc1" * 300_000
    h.client.send_raw(h.settings.events_topic, key, value)
    h.client.flush()
    expected = _after(h, "after-huge-key")
    letters = wait_letters(h, lambda ls: any(letter.get("key_size") == len(key) for letter in ls))
    letter = next(letter for letter in letters if letter.get("key_size") == len(key))
    assert letter["code"] == "oversized"
    assert letter["key"] == key[:KEY_CAP] and letter["value"] == value[:VALUE_CAP]
    assert letter["value_size"] == len(value)
    assert letter["key_sha256"] == hashlib.sha256(key).hexdigest()
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert letter["truncated"] == ["key", "value"]
    wait_attrs(h, expected)


def test_an_expiry_that_fails_drops_that_timer_and_the_others_still_fire(
    harness: Harness,
) -> None:
    """A customer whose expiry raises (corrupt stored profile) must not keep the partition's
    other timers from firing, tick after tick."""
    h = harness
    _activate_within_last(h, "signed-up-now", "signed_up", "2s")
    partitions = range(h.settings.events_partitions)
    for p in partitions:
        keys = h.keys.partition(p)
        h.redis.set(keys.profile("rotten-timer"), b"\xc1 not a profile")
        h.redis.zadd(keys.timers, {"rotten-timer": 0})
    h.client.send_event("fresh-timer", "profile", {"signed_up": _now()})
    h.client.flush()
    h.wait_members("signed-up-now", {"fresh-timer"})
    h.wait_members("signed-up-now", set(), timeout=20)  # its timer fired 2 s later
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(
        h.redis.zscore(h.keys.partition(p).timers, "rotten-timer") is not None for p in partitions
    ):
        time.sleep(0.2)
    assert all(
        h.redis.zscore(h.keys.partition(p).timers, "rotten-timer") is None for p in partitions
    )
