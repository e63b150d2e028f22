"""The event contract at the topic edge: what is accepted and why the rest is refused."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.errors import BadMessage
from streams.messages import decode_event, decode_map

NOW = 1_800_000_000_000


def _decode(value: object, key: bytes | None = b"c1", raw: bytes | None = None) -> object:
    data = raw if raw is not None else msgpack.packb(value)
    return decode_event(data, key, now_ms=NOW, max_bytes=1000, max_future_ms=300_000)


def _event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event_id": "e1",
        "customer_id": "c1",
        "type": "purchase",
        "ts": NOW,
        "properties": {"amount": 5},
    }
    event.update(overrides)
    return event


def test_msgpack_and_json_are_both_accepted() -> None:
    from_msgpack = _decode(_event())
    from_json = _decode(None, raw=json.dumps(_event()).encode())
    assert from_msgpack == from_json


@pytest.mark.parametrize(
    ("raw", "key", "code"),
    [
        (b"\xc1", b"c1", "undecodable"),
        (b"[1, 2", b"c1", "not_json"),
        (json.dumps([1, 2]).encode(), b"c1", "not_a_map"),
        (msgpack.packb("text"), b"c1", "not_a_map"),
        (b"", b"c1", "empty"),
        (msgpack.packb({k: v for k, v in _event().items() if k != "type"}), b"c1", "missing_field"),
        (msgpack.packb(_event(ts=True)), b"c1", "wrong_type"),
        (msgpack.packb(_event(ts=1.5)), b"c1", "wrong_type"),
        (msgpack.packb(_event(properties=[])), b"c1", "wrong_type"),
        (msgpack.packb(_event(customer_id="")), b"", "invalid_value"),
        (msgpack.packb(_event(ts=NOW + 300_001)), b"c1", "future_ts"),
        (msgpack.packb(_event(ts=-1)), b"c1", "invalid_value"),
        (msgpack.packb(_event()), None, "wrong_key"),
        (msgpack.packb(_event()), b"c2", "wrong_key"),
        (json.dumps(_event(properties={"n": 2**70})).encode(), b"c1", "unsupported_value"),
        (msgpack.packb(_event(properties={"x": "y" * 2000})), b"c1", "oversized"),
    ],
)
def test_each_bad_event_names_its_reason(raw: bytes, key: bytes | None, code: str) -> None:
    with pytest.raises(BadMessage) as caught:
        decode_event(raw, key, now_ms=NOW, max_bytes=1000, max_future_ms=300_000)
    assert caught.value.code == code
    assert caught.value.message


def test_deep_nesting_is_refused() -> None:
    nested: object = 1
    for _ in range(40):
        nested = [nested]
    with pytest.raises(BadMessage, match="nests deeper"):
        _decode(_event(properties={"deep": nested}))


@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_to_a_map_or_raise_bad_message(raw: bytes) -> None:
    try:
        assert isinstance(decode_map(raw), dict)
    except BadMessage as exc:
        assert exc.code in {"empty", "not_json", "undecodable", "not_a_map"}
