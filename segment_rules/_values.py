"""Value helpers shared by parsing and evaluation: kinds, durations and dates.

The language never coerces types: a value has a *kind* (``"str"``, ``"number"``,
``"bool"``) or none (lists, objects, ``None``); ``bool`` is never a number.
"""

from __future__ import annotations

__all__ = [
    "DURATION_RE",
    "SLUG_RE",
    "date_to_ms",
    "duration_to_ms",
    "is_number",
    "same_scalar",
    "scalar_kind",
]

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

DURATION_RE: Final = re.compile(r"[1-9][0-9]*[smhdw]")
SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
"""A segment id: 1-64 lowercase letters, digits, '_' or '-', starting with a letter or digit."""
_UNIT_MS: Final[dict[str, int]] = {
    "s": 1000,
    "m": 60 * 1000,
    "h": 60 * 60 * 1000,
    "d": 24 * 60 * 60 * 1000,
    "w": 7 * 24 * 60 * 60 * 1000,
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


def is_number(value: object) -> bool:
    """True for ``int`` and ``float`` values, never for ``bool``."""
    kind = type(value)
    if kind is int or kind is float:  # the common case, without isinstance
        return True
    return isinstance(value, int | float) and not isinstance(value, bool)


def scalar_kind(value: object) -> str | None:
    """``"str"``, ``"number"`` or ``"bool"``; ``None`` for anything else."""
    if isinstance(value, str):
        return "str"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return None


def same_scalar(a: object, b: object) -> bool:
    """Type-aware equality: ``1 == 1.0`` but ``True != 1`` and ``"1" != 1``."""
    kind = scalar_kind(a)
    return kind is not None and kind == scalar_kind(b) and a == b


def duration_to_ms(text: str) -> int | None:
    """``"7d"`` -> milliseconds; ``None`` when ``text`` is not a duration."""
    if not DURATION_RE.fullmatch(text):
        return None
    return int(text[:-1]) * _UNIT_MS[text[-1]]


@lru_cache(maxsize=8192)
def _iso_to_ms(text: str) -> int | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return (parsed - _EPOCH) // _ONE_MS
    except OverflowError:  # pragma: no cover - extreme offsets near year 1
        return None


def date_to_ms(value: object) -> int | None:
    """A date as epoch milliseconds, or ``None`` when ``value`` is not a date.

    Dates are ISO-8601 strings (parsed with :meth:`datetime.fromisoformat`; a
    naive time is UTC) or ``int`` epoch milliseconds (not ``bool``, not ``float``).
    """
    if isinstance(value, str):
        return _iso_to_ms(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None
