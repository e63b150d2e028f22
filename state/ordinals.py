"""Customer ordinals: the compact encoding of who is on a partition and in which segments.

Each customer gets an ordinal on first sight on its partition (0, 1, 2... from the partition
meta's ``ord`` counter, never reused). The ordinal is stored in front of the customer's
profile bytes (`stored_value`), the ordinal -> id index keeps `BUCKET` ordinals per hash
(small enough to stay listpack-encoded) and a segment's members on the partition are the set
bits of one bitmap (`SETBIT` offset = ordinal). Pure functions here; the reads are in
`state.index`.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import StateError

__all__ = [
    "BUCKET",
    "MAGIC",
    "bitfield_args",
    "bucket_of",
    "ordinals_in",
    "split_stored",
    "stored_head",
    "stored_value",
]

BUCKET = 128
"""Ordinals per index hash: Redis keeps a hash of <= 128 short fields as a listpack
(`hash-max-listpack-entries`), ~4 B of overhead per field instead of ~60."""

MAGIC = b"\xc1"
"""First byte of a stored profile: msgpack never uses 0xc1, so a profile written before
ordinals (bare msgpack) is told apart."""

_HEADER = len(MAGIC) + 4

_BITS = [tuple(bit for bit in range(8) if byte & (0x80 >> bit)) for byte in range(256)]
"""Byte value -> the offsets (0 = most significant) of its set bits."""


def stored_value(ordinal: int, profile: bytes) -> bytes:
    """The bytes of a profile key: `MAGIC`, the ordinal (4 bytes, big-endian), the profile."""
    return stored_head(ordinal) + profile


def stored_head(ordinal: int) -> bytes:
    """What a profile key's bytes start with (`stored_value`): `MAGIC` and the ordinal."""
    return MAGIC + ordinal.to_bytes(4, "big")


def split_stored(value: bytes, where: str) -> tuple[int, bytes]:
    """(ordinal, profile bytes) of a profile key's value; `where` names it in errors."""
    if len(value) < _HEADER or value[:1] != MAGIC:
        raise StateError(
            f"{where}: stored profile has no ordinal header (starts {bytes(value[:8])!r}); "
            "it was written by a layout before ordinals: migrate the partition "
            "(`state.migrate`) or rebuild its state"
        )
    return int.from_bytes(value[1:_HEADER], "big"), value[_HEADER:]


def bucket_of(ordinal: int) -> tuple[int, int]:
    """(index hash number, field) holding `ordinal`'s customer id."""
    return divmod(ordinal, BUCKET)


def ordinals_in(chunk: bytes, first: int) -> list[int]:
    """The set bits of a bitmap slice whose first byte holds ordinals `first`.. (`first` is a
    multiple of 8); bit 0 of a Redis bitmap is the most significant bit of its first byte."""
    out: list[int] = []
    bits = _BITS
    for index, byte in enumerate(chunk):
        if byte:
            base = first + 8 * index
            out.extend(base + bit for bit in bits[byte])
    return out


def bitfield_args(changes: Iterable[tuple[int, bool]]) -> list[object]:
    """`BITFIELD` arguments setting each (ordinal, member) bit: ``SET u1 #? v`` per change."""
    args: list[object] = []
    for ordinal, member in changes:
        args.extend(("SET", "u1", ordinal, 1 if member else 0))
    return args
