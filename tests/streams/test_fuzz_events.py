"""Fuzz the events topic of a running worker: thousands of random and mutated messages,
interleaved with valid traffic. The worker must keep up (lag back to 0), apply every valid
event (profiles in Redis match), and dead-letter every other message with a code.

A seeded generator (the seed is printed; `LS_FUZZ_SEED` replays one) makes random bytes,
byte- and text-mutations of valid msgpack and JSON events, extreme numbers, odd Unicode
(lone surrogates, invalid UTF-8), huge keys, deep nesting, non-string keys, and random
headers (never `ls-task`: task messages are the control plane's). The expected outcome of
each bad message is what the edge (`decode_event`) says of it; a mutation that happens to
stay a valid event is not sent (it is counted as skipped).
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest

from streams.errors import BadMessage
from streams.messages import decode_event

from .dlq import dead_letters, wait_attrs
from .fixtures import Harness, unique_env
from .health import wait_health

VALID = 700
BAD = 1500
CUSTOMERS = 150
HEADER_NAMES = ("trace-id", "ls-internal", "content-type", "", "ls-task-x", "ümlaut", "x" * 300)

Raw = tuple[bytes | None, bytes | None]


@pytest.fixture(scope="module")
def fuzz_harness(kafka_bootstrap: str, redis_url: str) -> Iterator[Harness]:
    h = Harness(unique_env(kafka_bootstrap, redis_url), "test_fuzz_events")
    try:
        h.start()
        yield h
    finally:
        h.close()


class Fuzzer:
    def __init__(self, rng: random.Random, now: int) -> None:
        self.rng = rng
        self.now = now

    def event(self, customer: str | None = None, **overrides: Any) -> dict[str, Any]:
        customer = customer or f"fz-{self.rng.randrange(CUSTOMERS)}"
        event = {
            "event_id": uuid.UUID(int=self.rng.getrandbits(128)).hex,
            "customer_id": customer,
            "type": self.rng.choice(["profile", "purchase", "visit"]),
            "ts": self.now - self.rng.randrange(0, 10**7),
            "properties": {"n": self.rng.randrange(10**6), "s": "ok"},
        }
        event.update(overrides)
        return event

    def _key(self, event: dict[str, Any]) -> bytes:
        return str(event.get("customer_id", "fz-none")).encode("utf-8", "surrogatepass")

    def random_bytes(self) -> Raw:
        n = self.rng.choice([0, 1, 2, 8, 64, 300])
        return self.rng.randbytes(3), self.rng.randbytes(n)

    def mutated_msgpack(self) -> Raw:
        event = self.event()
        return self._key(event), self._mutate(bytearray(msgpack.packb(event)))

    def mutated_json(self) -> Raw:
        event = self.event()
        text = bytearray(json.dumps(event).encode())
        return self._key(event), self._mutate(text, alphabet=b'{}[]",:0123456789.eE-\\u')

    def _mutate(self, data: bytearray, alphabet: bytes | None = None) -> bytes:
        for _ in range(self.rng.randint(1, 4)):
            at = self.rng.randrange(len(data))
            byte = self.rng.choice(alphabet) if alphabet else self.rng.randrange(256)
            action = self.rng.randrange(3)
            if action == 0:
                data[at] = byte
            elif action == 1:
                data.insert(at, byte)
            elif len(data) > 1:
                del data[at]
        return bytes(data)

    def extreme_number(self) -> Raw:
        event = self.event()
        head = json.dumps(event)[:-1].rsplit('"properties"', 1)[0]
        number = self.rng.choice(
            [
                "9" * self.rng.randint(4301, 20_000),
                "1e999",
                "-1e400",
                "NaN",
                "Infinity",
                "-Infinity",
                str(2**64),
                str(-(2**63) - 1),
            ]
        )
        return self._key(event), f'{head}"properties": {{"x": [{number}]}}}}'.encode()

    def extreme_msgpack_number(self) -> Raw:
        value = self.rng.choice([2**64 - 1 + 0, -(2**63), float("nan"), float("inf"), 2**63])
        event = self.event(properties={"x": {"y": value}})
        if isinstance(value, int) and -(2**63) <= value < 2**64:
            event["ts"] = 2**64 - 1  # far in the future: still refused
        return self._key(event), msgpack.packb(event)

    def odd_unicode(self) -> Raw:
        field = self.rng.choice(["event_id", "customer_id", "type", "key", "value"])
        bad = self.rng.choice(["\\ud800", "\\udfff", "x\\udc00y", "\\ud83d"])
        event = self.event()
        text = json.dumps(event)
        if field == "key":
            text = text.replace('"properties": {', f'"properties": {{"{bad}": 1, ', 1)
        elif field == "value":
            text = text.replace('"properties": {', f'"properties": {{"u": ["{bad}"], ', 1)
        else:
            text = text.replace(f'"{field}": "', f'"{field}": "{bad}', 1)
        return self._key(event), text.encode()

    def invalid_utf8_msgpack(self) -> Raw:
        event = self.event(customer="fz-utf8")
        raw = msgpack.packb(event).replace(b"\xa7fz-utf8", b"\xa7fz-\xed\xa0\x80")
        return b"fz-utf8", raw

    def huge_key(self) -> Raw:
        key = self.rng.randbytes(self.rng.choice([2_000, 20_000, 200_000]))
        return key, msgpack.packb(self.event())

    def deep_nesting(self) -> Raw:
        depth = self.rng.choice([33, 100, 1000, 30_000])
        event = self.event()
        if self.rng.random() < 0.5 or depth > 1000:
            head = json.dumps(event)[:-1].rsplit('"properties"', 1)[0]
            nested = "[" * depth + "]" * depth
            return self._key(event), f'{head}"properties": {{"d": {nested}}}}}'.encode()
        nested_value: Any = 1
        for _ in range(depth):
            nested_value = [nested_value]
        event["properties"] = {"d": nested_value}
        return self._key(event), msgpack.packb(event)

    def non_string_key(self) -> Raw:
        key = self.rng.choice([1, -5, 2.5, b"bin", None, True])
        event = self.event(properties={"a": [{"b": {key: 1}}]})
        return self._key(event), msgpack.packb(event)

    def contract_breach(self) -> Raw:
        event = self.event()
        choice = self.rng.randrange(5)
        if choice == 0:
            event["ts"] = self.now + 3_600_000
        elif choice == 1:
            del event[self.rng.choice(["event_id", "customer_id", "type", "ts", "properties"])]
        elif choice == 2:
            event["ts"] = self.rng.choice(["now", 1.5, True, None, -1])
        elif choice == 3:
            return b"someone-else", msgpack.packb(event)
        else:
            event["properties"] = self.rng.choice([[], "x", 1, None])
        return self._key(event), msgpack.packb(event)

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (self.rng.choice(HEADER_NAMES), self.rng.randbytes(self.rng.randrange(20)))
            for _ in range(self.rng.choice([0, 0, 1, 3]))
        ]

    def kinds(self) -> list[Callable[[], Raw]]:
        return [
            self.random_bytes,
            self.mutated_msgpack,
            self.mutated_msgpack,
            self.mutated_json,
            self.mutated_json,
            self.extreme_number,
            self.extreme_msgpack_number,
            self.odd_unicode,
            self.invalid_utf8_msgpack,
            self.huge_key,
            self.deep_nesting,
            self.non_string_key,
            self.contract_breach,
        ]


def _expected_code(h: Harness, key: bytes | None, value: bytes | None, now: int) -> str | None:
    """What the edge says of a message: its dead-letter code, or None if it is valid."""
    s = h.settings
    try:
        decode_event(value, key, now_ms=now, max_bytes=s.max_message_bytes, max_future_ms=0)
    except BadMessage as exc:
        return exc.code
    except Exception:
        return "unprocessable"
    return None


def test_random_and_mutated_events_never_stop_the_worker(fuzz_harness: Harness) -> None:
    h = fuzz_harness
    seed = int(os.environ.get("LS_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fuzz seed {seed} (LS_FUZZ_SEED replays it)")
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    fuzz = Fuzzer(rng, now)
    kinds = fuzz.kinds()

    plan: list[tuple[bytes | None, bytes | None, str | None]] = []
    expected_attrs: dict[str, dict[str, Any]] = {}
    skipped = 0
    bad = 0
    while bad < BAD:
        key, value = rng.choice(kinds)()
        code = _expected_code(h, key, value, now)
        if code is None:
            skipped += 1  # a mutation that is still a valid event: its outcome is unknown here
            continue
        plan.append((key, value, code))
        bad += 1
    valid_events = []
    for i in range(VALID):
        event = fuzz.event(f"fz-{i % CUSTOMERS}", type="profile", properties={"i": i, "u": "ü€😀"})
        valid_events.append(event)
    slots = sorted(rng.sample(range(len(plan) + VALID), VALID))
    for slot, event in zip(slots, valid_events, strict=True):
        plan.insert(slot, (event["customer_id"].encode(), msgpack.packb(event), None))
        expected_attrs[event["customer_id"]] = dict(event["properties"])

    producer = h.client.producer
    sent = []
    started = time.monotonic()
    for key, value, code in plan:
        future = producer.send(
            h.settings.events_topic, key=key, value=value, headers=fuzz.headers() or None
        )
        sent.append((future, code))
    producer.flush()
    expect_dlq: dict[tuple[int, int], str] = {}
    valid_offsets: set[tuple[int, int]] = set()
    for future, code in sent:
        meta = future.get(timeout=60)
        if code is None:
            valid_offsets.add((meta.partition, meta.offset))
        else:
            expect_dlq[(meta.partition, meta.offset)] = code
    print(
        f"fuzz: {len(plan)} inputs sent ({VALID} valid, {bad} bad, {skipped} mutations that "
        f"stayed valid not sent)"
    )

    # the worker keeps up: every partition's lag back to 0
    wait_health(
        h,
        lambda status, body: (
            all(lag == 0 for lag in body["lag"].values())
            and len(body["lag"]) == h.settings.events_partitions
        ),
        timeout=120,
    )
    print(f"fuzz: worker caught up {time.monotonic() - started:.1f}s after the first send")
    wait_attrs(h, expected_attrs)

    letters = {
        (letter["partition"], letter["offset"]): letter
        for letter in dead_letters(h)
        if letter["topic"] == h.settings.events_topic
    }
    assert not valid_offsets & set(letters), "a valid event was dead-lettered"
    missing = set(expect_dlq) - set(letters)
    assert not missing, f"{len(missing)} bad messages are not on the dead-letter topic"
    wrong = {
        at: (code, letters[at]["code"], letters[at]["reason"][:200])
        for at, code in expect_dlq.items()
        if letters[at]["code"] != code
    }
    assert not wrong, list(wrong.items())[:10]
