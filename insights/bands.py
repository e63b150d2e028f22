"""The bands of a similar-customers score (light: the worker imports it, not only the pool)."""

from __future__ import annotations

__all__ = ["BANDS", "band_of"]

BANDS = (
    ("very similar", 0.85, 1.0),
    ("similar", 0.7, 0.85),
    ("somewhat similar", 0.55, 0.7),
    ("less similar", 0.4, 0.55),
)
"""(name, from, to): a score belongs to the first band whose `from` it reaches."""


def band_of(score: float) -> str | None:
    """The band of `score`; None below the last band (0.4)."""
    for name, low, _high in BANDS:
        if score >= low:
            return name
    return None
