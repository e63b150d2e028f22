"""Size limits applied when parsing a definition."""

from __future__ import annotations

__all__ = ["DEFAULT_LIMITS", "NO_LIMITS", "Limits"]

from dataclasses import dataclass
from typing import Final

_DAY_MS: Final = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one definition.

    Attributes:
        max_conditions: leaf conditions per segment (attribute, event, in_segment
            conditions and the property conditions inside event filters).
        max_depth: nesting of ``all``/``any``/``not`` along any path, filters included.
        max_rules: entries in ``rules``.
        max_window_ms: longest ``within``/``within_last``/``not_within_last``; it must
            not exceed the event history retention or results would silently be wrong.
    """

    max_conditions: int = 100
    max_depth: int = 10
    max_rules: int = 20
    max_window_ms: int = 365 * _DAY_MS


DEFAULT_LIMITS: Final = Limits()

_UNBOUNDED: Final = 1 << 62
NO_LIMITS: Final = Limits(
    max_conditions=_UNBOUNDED,
    max_depth=_UNBOUNDED,
    max_rules=_UNBOUNDED,
    max_window_ms=_UNBOUNDED,
)
"""For definitions already accepted: they were checked against the limits of their day."""
