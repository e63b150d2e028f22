"""Dead letters: what the dead-letter topic carries for an input message that cannot be used.

A dead letter keeps the original key and value, capped so that the record always fits in a
Kafka request whatever came in: a key over `KEY_CAP` bytes or a value over `VALUE_CAP` bytes
is cut, and the letter says so with the original sizes and sha256 digests (always present),
so the original can still be identified. The reason is plain text, cut at `REASON_CAP`
characters, with anything that is not encodable as UTF-8 escaped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from state import OutboxRecord

from .events import encode

__all__ = ["KEY_CAP", "REASON_CAP", "VALUE_CAP", "DeadLetter", "safe_text"]

KEY_CAP = 4096
VALUE_CAP = 262_144
REASON_CAP = 2000


def safe_text(text: str, cap: int = REASON_CAP) -> str:
    """`text` cut at `cap` characters, lone surrogates escaped (it is then valid UTF-8)."""
    if len(text) > cap:
        text = text[:cap] + f"... ({len(text)} characters)"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    code: str
    reason: str
    at: int

    @property
    def record_key(self) -> bytes | None:
        return None if self.key is None else self.key[:KEY_CAP]

    def encode(self) -> bytes:
        truncated = [
            name
            for name, data, cap in (("key", self.key, KEY_CAP), ("value", self.value, VALUE_CAP))
            if data is not None and len(data) > cap
        ]
        return encode(
            {
                "topic": self.topic,
                "partition": self.partition,
                "offset": self.offset,
                "key": self.record_key,
                "value": None if self.value is None else self.value[:VALUE_CAP],
                "code": self.code,
                "reason": safe_text(self.reason),
                "at": self.at,
                "key_size": None if self.key is None else len(self.key),
                "value_size": None if self.value is None else len(self.value),
                "key_sha256": _digest(self.key),
                "value_sha256": _digest(self.value),
                "truncated": truncated,
            }
        )

    def to_record(self, dlq_topic: str) -> OutboxRecord:
        return OutboxRecord(dlq_topic, self.record_key, self.encode())
