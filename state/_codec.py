"""msgpack encoding of stored values."""

from __future__ import annotations

from typing import Any

import msgpack

__all__ = ["bin_header", "msgpack_header", "pack", "unpack"]


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(blob: bytes) -> Any:
    return msgpack.unpackb(blob, raw=False, strict_map_key=False)


def msgpack_header(count: int, fix: int, wider: int) -> bytes:
    """A msgpack array (fix 0x90, wider 0xdc) or map (0x80, 0xde) header of `count` items."""
    if count < 16:
        return bytes((fix | count,))
    if count < 0x10000:
        return bytes((wider,)) + count.to_bytes(2, "big")
    return bytes((wider + 1,)) + count.to_bytes(4, "big")


def bin_header(size: int) -> bytes:
    """The msgpack bin 8/16/32 header of `size` bytes (what `packb(bytes)` starts with)."""
    if size < 0x100:
        return bytes((0xC4, size))
    if size < 0x10000:
        return b"\xc5" + size.to_bytes(2, "big")
    return b"\xc6" + size.to_bytes(4, "big")
