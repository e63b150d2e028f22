"""msgpack encoding of stored values."""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["pack", "unpack"]


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)
