"""The event contract at the topic edge: what is accepted and why the rest is refused."""

from __future__ import annotations

import copy
import json
import math
import pickle

import msgpack
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from livesegments_compiled import BUILD
from streams.errors import BadMessage
from streams.messages import Event, decode_event, decode_map

from ..hypothesis_profiles import examples

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


def test_an_event_is_an_immutable_value() -> None:
    event = Event("e1", "c1", "purchase", NOW, {"amount": 5})
    assert event == _decode(_event())
    assert event != Event("e1", "c1", "purchase", NOW, {"amount": 6})
    assert event != ("e1", "c1", "purchase", NOW, {"amount": 5})
    assert repr(event) == (
        f"Event(event_id='e1', customer_id='c1', type='purchase', ts={NOW}, "
        "properties={'amount': 5})"
    )
    with pytest.raises(TypeError):  # its properties are a dict, as the dataclass's were
        hash(event)
    assert pickle.loads(pickle.dumps(event)) == event == copy.deepcopy(event) == copy.copy(event)
    if BUILD.compiled:  # a native class: its `Final` attributes cannot be set (mypy: never)
        with pytest.raises(AttributeError):
            event.ts = 0  # type: ignore[misc]


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


def _json_event(properties: str = "{}", **fields: str) -> bytes:
    """A JSON event written by hand, so that it can hold what json.dumps would not write."""
    values = {"event_id": '"e1"', "customer_id": '"c1"', "type": '"profile"', "ts": str(NOW)}
    values.update(fields)
    body = ",".join(f'"{name}":{value}' for name, value in values.items())
    return f'{{{body},"properties":{properties}}}'.encode()


@pytest.mark.parametrize(
    ("raw", "code", "says"),
    [
        (_json_event('{"n":"\\ud800"}'), "invalid_value", "properties.n holds a lone surrogate"),
        (_json_event('{"\\udc00":1}'), "invalid_value", "properties key"),
        (_json_event('{"a":{"b":["x\\ud800"]}}'), "invalid_value", "properties.a.b[0]"),
        (_json_event(event_id='"\\ud800"'), "invalid_value", "'event_id' holds a lone surrogate"),
        (_json_event(customer_id='"c\\ud800"'), "invalid_value", "'customer_id'"),
        (_json_event(type='"\\udfff"'), "invalid_value", "'type'"),
        (_json_event('{"n":NaN}'), "invalid_value", "NaN"),
        (_json_event('{"n":Infinity}'), "invalid_value", "Infinity"),
        (_json_event('{"n":-Infinity}'), "invalid_value", "-Infinity"),
        (_json_event('{"n":1e400}'), "invalid_value", "out of the float range"),
        (_json_event('{"n":' + "9" * 4301 + "}"), "not_json", "4300 digits"),
        (_json_event(ts="1" + "0" * 5000), "not_json", "4300 digits"),
        (_json_event('{"n":' + "[" * 200_000 + "}"), "not_json", "nests too deeply"),
        (b"[" * 200_000, "not_json", "nests too deeply"),
    ],
)
def test_json_that_broke_the_stream_is_refused_at_the_edge(
    raw: bytes, code: str, says: str
) -> None:
    with pytest.raises(BadMessage) as caught:
        decode_event(raw, b"c1", now_ms=NOW, max_bytes=10_000_000, max_future_ms=300_000)
    assert caught.value.code == code
    assert says in caught.value.message
    caught.value.message.encode("utf-8")  # the reason itself is valid text


@pytest.mark.parametrize(
    "properties",
    [
        {1: "x"},  # at the top: the compiled build once raised TypeError here, not BadMessage
        {None: 1, "a": 1},
        {"a": {1: "x"}},
        {"a": [{"b": {b"k": 1}}]},
        {"a": {None: 1}},
        {"a": {"b": {"c": {2.5: 1}}}},
    ],
)
def test_msgpack_maps_with_non_string_keys_at_any_depth_are_refused(
    properties: dict[object, object],
) -> None:
    raw = msgpack.packb(_event(properties=properties))
    with pytest.raises(BadMessage) as caught:
        _decode(None, raw=raw)
    assert caught.value.code == "wrong_type"
    assert "keys must be strings" in caught.value.message


def test_msgpack_non_finite_floats_and_invalid_utf8_are_refused() -> None:
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(BadMessage) as caught:
            _decode(_event(properties={"n": [bad]}))
        assert caught.value.code == "invalid_value"
    # msgpack carries UTF-8: an encoded surrogate cannot even be decoded
    surrogate = "\ud800".encode("utf-8", "surrogatepass")
    raw = msgpack.packb(_event()).replace(b"\xa2e1", b"\xa3" + surrogate)
    with pytest.raises(BadMessage) as caught:
        _decode(None, raw=raw)
    assert caught.value.code == "undecodable"


_TEXT = (
    st.text(st.characters(codec="utf-8"), max_size=5)
    | st.text(max_size=5)
    | st.sampled_from(["\ud800", "a\udfff", "\udc00b"])
)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(_TEXT | st.integers(), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(_VALUES)
def test_every_accepted_event_can_be_stored_and_written_as_json(value: object) -> None:
    """Whatever the edge accepts, msgpack (the state, the outputs) and JSON (the HTTP API,
    CSV, webhooks) can encode: no input can break the commit or an output later."""
    try:
        event = _decode(None, raw=json.dumps(_event(properties={"v": value})).encode())
    except (BadMessage, TypeError, ValueError):
        return  # refused, or json.dumps itself refused the value
    assert isinstance(event, Event)
    msgpack.packb(event.properties, use_bin_type=True)
    json.dumps(event.properties, allow_nan=False, ensure_ascii=False).encode("utf-8")


_FLAT = st.dictionaries(
    st.sampled_from(["a", "page", ""]) | _TEXT | st.integers(-3, 3),
    st.none()
    | st.booleans()
    | st.integers(-(2**65), 2**65)
    | st.sampled_from([-(2**63), -(2**63) - 1, 2**64 - 1, 2**64])
    | st.floats()
    | _TEXT
    | st.lists(st.integers(), max_size=1),
    max_size=4,
)


@settings(max_examples=examples(300), deadline=None)
@given(_FLAT)
@example({"a": math.inf})
@example({"a": math.nan})
@example({"a": 2**64})
@example({"a": -(2**63) - 1})
@example({"a": "\ud800"})
@example({"\ud800": 1})
def test_the_flat_properties_check_accepts_only_what_the_full_check_accepts(
    properties: dict[object, object],
) -> None:
    """`_plain_properties` (the one-loop check of the common event) says nothing is wrong
    only when `_check_value` says so too; otherwise the full check decides (and names the
    problem). Keys and values of every kind, integers on the 64-bit edges, non-finite
    floats, non-ASCII text and lone surrogates."""
    from streams.messages.events import _check_value, _plain_properties

    if not _plain_properties(properties):  # type: ignore[arg-type]
        return
    _check_value(properties, "properties")  # must not raise


def test_the_flat_properties_check_passes_the_common_event() -> None:
    from streams.messages.events import _plain_properties

    assert _plain_properties({"page": "/cart", "ms": 120, "x": 1.5, "ok": True, "n": None})
    assert not _plain_properties({"nested": {"a": 1}})


_ID = st.sampled_from(["c1", "", "é", "\ud800"]) | _TEXT
_FIELD_VALUE = (
    _ID
    | st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from([NOW, NOW + 300_000, NOW + 300_001, -1, 0, 2**64])
    | st.floats(allow_nan=False)
    | st.just({"page": "/cart"})
)
_EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "event_id": _FIELD_VALUE,
        "customer_id": _FIELD_VALUE | st.just("c1"),
        "type": _FIELD_VALUE,
        "ts": _FIELD_VALUE,
        "properties": _FLAT | _FIELD_VALUE,
        "extra": _FIELD_VALUE,
    },
)


def _outcome(decode: object, raw: bytes, key: bytes | None) -> object:
    try:
        return decode(raw, key, now_ms=NOW, max_bytes=200, max_future_ms=300_000)  # type: ignore[operator]
    except BadMessage as exc:
        return (exc.code, exc.message)


@settings(max_examples=examples(500), deadline=None)
@given(_EVENTS, st.sampled_from([b"c1", None, b"c2", "é".encode()]))
@example(_event(ts=NOW + 300_000), b"c1")
@example(_event(ts=NOW + 300_001), b"c1")
@example(_event(ts=0), b"c1")
@example(_event(ts=-1), b"c1")
@example(_event(ts=True), b"c1")
@example(_event(event_id=""), b"c1")
@example(_event(type="é"), b"c1")
@example(_event(customer_id="é"), "é".encode())
@example(_event(properties={"a": [1]}), b"c1")
@example(_event(properties={"a": math.inf}), b"c1")
@example(_event(properties={"a": 2**64 - 1, 1: 2}), b"c1")
@example(_event(), b"c2")
@example(_event(), None)
@example(_event(properties={"a": "x" * 300}), b"c1")
def test_the_one_pass_decode_accepts_and_refuses_exactly_as_the_full_checks(
    value: dict[str, object], key: bytes | None
) -> None:
    """`decode_event` takes a one-pass path for the common msgpack event: it must return the
    same event as the full checks (`_checked_event`), and every refusal must be theirs (same
    code, same message): missing and mistyped fields, empty and non-ASCII text, `ts` on
    both edges, wrong keys, nested or odd properties, oversized messages."""
    from streams.messages.events import _checked_event

    try:
        raw = msgpack.packb(value)
    except (OverflowError, UnicodeEncodeError):
        assume(False)  # not a message anyone can send
    assert _outcome(decode_event, raw, key) == _outcome(_checked_event, raw, key)
