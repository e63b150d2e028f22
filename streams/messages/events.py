"""Message contracts at the topic edges: decoding inputs, encoding outputs.

Inputs are msgpack maps or JSON objects; outputs are msgpack maps. Nothing past this module
sees raw bytes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from ..errors import BadMessage

__all__ = [
    "TASK_HEADER",
    "Event",
    "Incoming",
    "decode_event",
    "decode_map",
    "encode",
]

TASK_HEADER = "ls-task"
"""Header marking a task message the control agent wrote into an events partition."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message of an input topic (events or control), as its agent received it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def is_task(self) -> bool:
        return any(name == TASK_HEADER for name, _ in self.headers)


class Event:
    """One input event, validated (`decode_event`).

    An immutable value (the frozen-dataclass contract: attributes read only, `==`, `repr`),
    written as a plain class with `Final` attributes because one is made per event: the
    compiled build makes it a native class whose attributes cannot be set (~0.1 µs to build,
    where a frozen dataclass's generated `__init__` takes ~3.9 µs)."""

    __slots__ = ("customer_id", "event_id", "properties", "ts", "type")

    def __init__(
        self, event_id: str, customer_id: str, type: str, ts: int, properties: dict[str, Any]
    ) -> None:
        self.event_id: Final = event_id
        self.customer_id: Final = customer_id
        self.type: Final = type
        self.ts: Final = ts
        self.properties: Final = properties

    def _astuple(self) -> tuple[str, str, str, int, dict[str, Any]]:
        return (self.event_id, self.customer_id, self.type, self.ts, self.properties)

    def __reduce__(self) -> tuple[type[Event], tuple[object, ...]]:
        """Pickled and copied by its fields, as the dataclass was (a native class has no
        argument-free constructor for the default protocol)."""
        return (Event, self._astuple())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self._astuple() == other._astuple()

    def __hash__(self) -> int:
        return hash(self._astuple())  # raises, as the dataclass did: properties is a dict

    def __repr__(self) -> str:
        return (
            f"Event(event_id={self.event_id!r}, customer_id={self.customer_id!r}, "
            f"type={self.type!r}, ts={self.ts!r}, properties={self.properties!r})"
        )


_PACKER = msgpack.Packer(use_bin_type=True)
"""One packer for the process (`packb` builds one per call); the event loop is one thread."""


def encode(value: dict[str, Any]) -> bytes:
    return _PACKER.pack(value)  # type: ignore[no-any-return]


def decode_map(raw: bytes | None, what: str = "message") -> dict[str, Any]:
    """A msgpack map or a JSON object, else BadMessage."""
    if not raw:
        raise BadMessage("empty", f"{what} is empty; expected a msgpack map or a JSON object")
    first = raw.lstrip()[:1]
    value: Any
    if first in (b"{", b"["):
        try:
            value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
        except RecursionError:
            raise BadMessage(
                "not_json", f"{what} looks like JSON but nests too deeply to parse"
            ) from None
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, > 4300-digit ints
            raise BadMessage(
                "not_json", f"{what} looks like JSON but does not parse: {exc}"
            ) from None
    else:
        try:
            value = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types
            raise BadMessage(
                "undecodable",
                f"{what} is neither a JSON object nor msgpack ({type(exc).__name__}: {exc})",
            ) from None
    if not isinstance(value, dict):
        raise BadMessage(
            "not_a_map", f"{what} decodes to {type(value).__name__}, expected a map/object"
        )
    return value


def _refuse_constant(name: str) -> float:
    raise BadMessage(
        "invalid_value", f"JSON {name} is not a number livesegments accepts (only finite numbers)"
    )


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BadMessage("invalid_value", f"JSON number {text:.40} is out of the float range")
    return number


def _check_text(text: str, path: str) -> None:
    """A string must be valid Unicode text (JSON's `\\ud800` escapes are not)."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadMessage(
                "invalid_value",
                f"{path} holds a lone surrogate {text[exc.start : exc.end]!r} at index "
                f"{exc.start}; strings must be valid Unicode",
            ) from None


def _field(value: dict[str, Any], name: str, kind: type, what: str = "event") -> Any:
    if name not in value or value[name] is None:
        raise BadMessage("missing_field", f"{what} has no {name!r} field")
    found = value[name]
    if not isinstance(found, kind) or isinstance(found, bool):
        raise BadMessage(
            "wrong_type",
            f"{what} field {name!r} is {type(found).__name__} {found!r:.80}, "
            f"expected {kind.__name__}",
        )
    return found


_MAX_DEPTH = 32


def _check_value(value: Any, path: str, depth: int = 0) -> None:
    """Only values a profile can store and every output can carry: msgpack's 64-bit integers,
    finite floats, valid Unicode, string keys, bounded nesting."""
    if isinstance(value, bool) or value is None or isinstance(value, bytes):
        return
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BadMessage("invalid_value", f"{path} = {value} is not a finite number")
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise BadMessage("unsupported_value", f"{path} = {value} does not fit in 64 bits")
        return
    if depth >= _MAX_DEPTH:
        raise BadMessage("unsupported_value", f"{path} nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadMessage(
                    "wrong_type",
                    f"{path} has a key {key!r:.80} of type {type(key).__name__}; "
                    "keys must be strings",
                )
            _check_text(key, f"{path} key {key!r:.80}")
            _check_value(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]", depth + 1)
    else:
        raise BadMessage("unsupported_value", f"{path} has a value of type {type(value).__name__}")


_INT_MIN = -(2**63)
_INT_END = 2**64


def _plain_properties(properties: dict[Any, Any]) -> bool:
    """True when `_check_value(properties, "properties")` has nothing to say, decided in one
    flat loop for the common event: ASCII string keys over ASCII strings, 64-bit integers,
    finite floats, booleans and nulls. False means "ask `_check_value`" (which names the
    problem, if any: nested values, non-ASCII text and every error take that path). Keys are
    `Any`: msgpack maps may have other keys, and the compiled build checks declared types."""
    for key, item in properties.items():
        if type(key) is not str or not key.isascii():
            return False
        kind = type(item)
        if kind is str:
            if not item.isascii():
                return False
        elif kind is int:
            if not _INT_MIN <= item < _INT_END:
                return False
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif item is not None and kind is not bool:
            return False
    return True


_MSGPACK_MAP_FIRST = frozenset([*range(0x80, 0x90), 0xDE, 0xDF])
"""First bytes of a msgpack map (fixmap, map 16, map 32): never whitespace, `{` or `[`."""

_unpackb = msgpack.unpackb


def decode_event(
    raw: bytes | None, key: bytes | None, *, now_ms: int, max_bytes: int, max_future_ms: int
) -> Event:
    """Validate one input event against the contract; BadMessage says what is wrong.

    The common event (a msgpack map of ASCII ids and type, an in-range `ts`, plain properties,
    keyed by its customer) is accepted in one pass (`_plain_event`); anything else, and every
    error, takes the full checks (`_checked_event`), which name the problem. Both accept the
    same events (`tests/streams/test_messages.py` compares them)."""
    if raw and raw[0] in _MSGPACK_MAP_FIRST and len(raw) <= max_bytes:
        try:
            value = _unpackb(raw, raw=False, strict_map_key=False)
        except Exception:  # the full checks say what is wrong
            value = None
        if type(value) is dict:
            event = _plain_event(value, key, now_ms + max_future_ms)
            if event is not None:
                return event
    return _checked_event(raw, key, now_ms=now_ms, max_bytes=max_bytes, max_future_ms=max_future_ms)


def _plain_event(value: dict[str, Any], key: bytes | None, latest_ts: int) -> Event | None:
    """The event, if every check of `_checked_event` passes for it on the common path; None
    when any might not (the caller then runs them all)."""
    event_id = value.get("event_id")
    customer_id = value.get("customer_id")
    event_type = value.get("type")
    ts = value.get("ts")
    properties = value.get("properties")
    if (
        type(event_id) is str
        and type(customer_id) is str
        and type(event_type) is str
        and type(ts) is int
        and type(properties) is dict
        and event_id
        and customer_id
        and event_type
        and event_id.isascii()
        and customer_id.isascii()
        and event_type.isascii()
        and 0 <= ts <= latest_ts
        and key is not None
        and key == customer_id.encode()
        and _plain_properties(properties)
    ):
        return Event(event_id, customer_id, event_type, ts, properties)
    return None


def _checked_event(
    raw: bytes | None, key: bytes | None, *, now_ms: int, max_bytes: int, max_future_ms: int
) -> Event:
    """Every check of the contract, in order; BadMessage names the first that fails."""
    size = len(raw or b"")
    if size > max_bytes:
        raise BadMessage("oversized", f"event is {size} bytes, the limit is {max_bytes}")
    value = decode_map(raw, "event")
    event_id = _field(value, "event_id", str)
    customer_id = _field(value, "customer_id", str)
    event_type = _field(value, "type", str)
    ts = _field(value, "ts", int)
    properties = _field(value, "properties", dict)
    for name, text in (("event_id", event_id), ("customer_id", customer_id), ("type", event_type)):
        if not text:
            raise BadMessage("invalid_value", f"event field {name!r} is empty")
        _check_text(text, f"event field {name!r}")
    if not _plain_properties(properties):
        _check_value(properties, "properties")
    if ts > now_ms + max_future_ms:
        raise BadMessage(
            "future_ts",
            f"event ts {ts} is {ts - now_ms} ms in the future; at most {max_future_ms} ms allowed",
        )
    if ts < 0:
        raise BadMessage("invalid_value", f"event ts {ts} is negative; expected epoch ms")
    if key is None or key != customer_id.encode():
        raise BadMessage(
            "wrong_key",
            f"message key {key!r} must equal customer_id {customer_id!r}: events are keyed by "
            "customer so that one partition owns each customer",
        )
    return Event(event_id, customer_id, event_type, ts, properties)
