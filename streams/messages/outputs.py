"""What livesegments publishes for others: membership changes and command replies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from .events import encode

__all__ = ["MembershipChange", "Reply", "encode_change", "encode_change_packed", "pack_value"]

_PACK = msgpack.Packer(use_bin_type=True).pack
_SEGMENT_ID = b"\x86" + _PACK("segment_id")
_CUSTOMER_ID = _PACK("customer_id")
_ENTERED_AT = _PACK("change") + _PACK("entered") + _PACK("at")
_EXITED_AT = _PACK("change") + _PACK("exited") + _PACK("at")
_CAUSE = _PACK("cause")
_SEQ = _PACK("seq")
_HEADS: dict[str, bytes] = {}
"""Segment id -> the map's bytes up to the customer id's value (a few hundred per worker)."""
_CAUSES: dict[str, bytes] = {}
"""Cause -> the bytes from the ``cause`` key to the ``seq`` value (a handful)."""
_PACKED_MAX = 65_536


def _head(segment_id: str) -> bytes:
    head = _HEADS.get(segment_id)
    if head is None:
        head = _SEGMENT_ID + _PACK(segment_id) + _CUSTOMER_ID
        if len(_HEADS) >= _PACKED_MAX:
            _HEADS.clear()
        _HEADS[segment_id] = head
    return head


def _cause(cause: str) -> bytes:
    packed = _CAUSES.get(cause)
    if packed is None:
        packed = _CAUSE + _PACK(cause) + _SEQ
        if len(_CAUSES) >= _PACKED_MAX:
            _CAUSES.clear()
        _CAUSES[cause] = packed
    return packed


def pack_value(value: str | int) -> bytes:
    """The msgpack bytes of one customer id or instant, as `encode_change_packed` takes them."""
    packed: bytes = _PACK(value)
    return packed


def encode_change(
    segment_id: str, customer_id: str, entered: bool, at: int, cause: str, seq: int
) -> bytes:
    """`MembershipChange(...).encode()` without building the change.

    The bytes of the msgpack map, keys in the same order, from pre-packed keys (and the parts
    around each segment id and cause packed once)."""
    return encode_change_packed(segment_id, _PACK(customer_id), entered, _PACK(at), cause, seq)


def encode_change_packed(
    segment_id: str, customer_id: bytes, entered: bool, at: bytes, cause: str, seq: int
) -> bytes:
    """`encode_change` with the customer id and the instant already packed (`pack_value`): the
    engine's hot path, which packs them once for all the changes of an event."""
    return b"".join(
        (
            _head(segment_id),
            customer_id,
            _ENTERED_AT if entered else _EXITED_AT,
            at,
            _cause(cause),
            _PACK(seq),
        )
    )


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """A customer entered or exited a segment (`segments.membership`, keyed by customer).

    `seq` increases strictly per (segment, customer): a consumer drops anything at or below
    the last `seq` it saw for the pair, and folding the topic gives the current members."""

    segment_id: str
    customer_id: str
    entered: bool
    at: int
    cause: str
    seq: int

    def encode(self) -> bytes:
        return encode_change(
            self.segment_id, self.customer_id, self.entered, self.at, self.cause, self.seq
        )

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> MembershipChange:
        return cls(
            str(value["segment_id"]),
            str(value["customer_id"]),
            value["change"] == "entered",
            int(value["at"]),
            str(value["cause"]),
            int(value["seq"]),
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """The one answer to a command (`segments.control.replies`, keyed by its request id):
    `result` when it succeeded, else `error` (`{"code", "message", "path"?}`)."""

    request_id: str | None
    ok: bool
    result: Mapping[str, Any] | None = None
    error: Mapping[str, Any] | None = None

    @classmethod
    def success(cls, request_id: str | None, result: Mapping[str, Any]) -> Reply:
        return cls(request_id, True, result=result)

    @classmethod
    def failure(cls, request_id: str | None, error: Mapping[str, Any]) -> Reply:
        return cls(request_id, False, error=error)

    @property
    def key(self) -> bytes | None:
        return self.request_id.encode() if self.request_id is not None else None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"request_id": self.request_id, "ok": self.ok}
        if self.ok:
            body["result"] = dict(self.result or {})
        else:
            body["error"] = dict(self.error or {})
        return encode(body)
