"""redis-py types replies as `bytes | str`; our clients never decode, so these narrow them."""

from __future__ import annotations

__all__ = ["as_bytes", "as_text"]


def as_bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
