"""Did-you-mean suggestions for misspelt names."""

from __future__ import annotations

__all__ = ["suggest"]

import difflib
from collections.abc import Iterable
from typing import Final

# Spellings people reach for that difflib alone would not map to our names.
_ALIASES: Final[dict[str, str]] = {
    "=": "eq",
    "==": "eq",
    "equal": "eq",
    "equals": "eq",
    "is": "eq",
    "!=": "ne",
    "<>": "ne",
    "neq": "ne",
    "not_eq": "ne",
    "not_equal": "ne",
    "not_equals": "ne",
    "<": "lt",
    "less_than": "lt",
    "<=": "lte",
    "le": "lte",
    ">": "gt",
    "greater_than": "gt",
    ">=": "gte",
    "ge": "gte",
    "range": "between",
    "one_of": "in",
    "nin": "not_in",
    "not_one_of": "not_in",
    "includes": "contains",
    "has": "contains",
    "prefix": "starts_with",
    "suffix": "ends_with",
    "is_set": "exists",
    "not_null": "exists",
    "present": "exists",
    "is_null": "not_exists",
    "missing": "not_exists",
    "older_than": "not_within_last",
    "newer_than": "within_last",
    "since": "after",
    "until": "before",
    "or": "union",
    "and": "intersect",
    "minus": "except",
    "difference": "except",
    "intersection": "intersect",
    "average": "avg",
    "mean": "avg",
    "total": "sum",
    "unique": "distinct_count",
    "distinct": "distinct_count",
    "property": "prop",
    "attribute": "attr",
    "segment": "in_segment",
    "event_type": "event",
    "window": "within",
    "aggregate": "agg",
    "conditions": "all",
    "condition": "where",
    "combine": "op",
    "operator": "op",
}


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The option closest to ``word``, or ``None`` when nothing is close."""
    choices = list(options)
    lowered = word.strip().lower()
    if lowered in choices:
        return lowered
    alias = _ALIASES.get(lowered)
    if alias is not None and alias in choices:
        return alias
    close = difflib.get_close_matches(lowered, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    prefixed = [c for c in choices if len(c) >= 2 and lowered.startswith(c)]
    if prefixed:
        return max(prefixed, key=len)
    return None
