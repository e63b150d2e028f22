"""Compile one operator and its constant value into a fast predicate.

A predicate takes the tested value (``None`` when missing) and ``now_ms``. Every
operator is false on a missing value or a type mismatch, except ``not_exists``.
Constants (dates, durations, ``in`` sets) are folded here, once.
"""

from __future__ import annotations

__all__ = [
    "LATEST_CHANGE_MS",
    "TIME_OPS",
    "ValueNextChange",
    "ValuePredicate",
    "value_next_change",
    "value_predicate",
]

from collections.abc import Callable
from typing import Final

from ._values import date_to_ms, duration_to_ms, is_number, same_scalar, scalar_kind
from .model import Scalar, Value

ValuePredicate = Callable[[object, int], bool]
ValueNextChange = Callable[[object, int], "int | None"]

#: Operators whose result changes with time alone.
TIME_OPS: Final = frozenset({"within_last", "not_within_last"})

#: The latest instant a time-only change is scheduled at (year 9999, end): a date attribute
#: beyond it (an integer near 2**64 ms) changes "never", so no wake time can overflow the
#: signed 64-bit integers that timers and stored profiles hold.
LATEST_CHANGE_MS: Final = 253_402_300_799_999


def _kind_test(kind: str | None) -> Callable[[object], bool]:
    if kind == "str":
        return lambda a: isinstance(a, str)
    if kind == "bool":
        return lambda a: isinstance(a, bool)
    return is_number


def value_predicate(op: str, value: Value) -> ValuePredicate:
    """The predicate for ``op`` with the (validated) constant ``value``."""
    if op == "exists":
        return lambda a, now: a is not None
    if op == "not_exists":
        return lambda a, now: a is None
    if op in ("eq", "ne", "lt", "lte", "gt", "gte"):
        return _compare(op, value)
    if op == "between":
        assert isinstance(value, tuple)
        lo, hi = value[0], value[1]
        return lambda a, now: is_number(a) and lo <= a <= hi  # type: ignore[operator]
    if op in ("in", "not_in"):
        assert isinstance(value, tuple)
        return _membership(op == "in", value)
    if op in ("contains", "not_contains"):
        assert isinstance(value, str | int | float)
        return _contains(op == "contains", value)
    if op == "starts_with":
        assert isinstance(value, str)
        prefix = value
        return lambda a, now: isinstance(a, str) and a.startswith(prefix)
    if op == "ends_with":
        assert isinstance(value, str)
        suffix = value
        return lambda a, now: isinstance(a, str) and a.endswith(suffix)
    if op in ("before", "after"):
        return _date_compare(op, value)
    if op in TIME_OPS:
        return _recency(op, value)
    raise ValueError(f"unknown operator {op!r}")  # parsing rejects these


def _compare(op: str, value: Value) -> ValuePredicate:
    same_kind = _kind_test(scalar_kind(value))
    v: object = value
    if op == "eq":
        return lambda a, now: same_kind(a) and a == v
    if op == "ne":
        return lambda a, now: same_kind(a) and a != v
    assert isinstance(value, int | float)
    n = value
    if op == "lt":
        return lambda a, now: is_number(a) and a < n  # type: ignore[operator]
    if op == "lte":
        return lambda a, now: is_number(a) and a <= n  # type: ignore[operator]
    if op == "gt":
        return lambda a, now: is_number(a) and a > n  # type: ignore[operator]
    return lambda a, now: is_number(a) and a >= n  # type: ignore[operator]


def _membership(positive: bool, values: tuple[Scalar, ...]) -> ValuePredicate:
    same_kind = _kind_test(scalar_kind(values[0]))
    members = frozenset(values)
    if positive:
        return lambda a, now: same_kind(a) and a in members
    return lambda a, now: same_kind(a) and a not in members


def _contains(positive: bool, value: Scalar) -> ValuePredicate:
    is_str = isinstance(value, str)

    def test(a: object, now: int) -> bool:
        if isinstance(a, str):
            if not is_str:
                return False
            return (value in a) is positive  # type: ignore[operator]
        if isinstance(a, list | tuple):
            found = any(same_scalar(item, value) for item in a)
            return found is positive
        return False

    return test


def _date_compare(op: str, value: Value) -> ValuePredicate:
    bound = date_to_ms(value)
    assert bound is not None
    if op == "before":

        def before(a: object, now: int) -> bool:
            ms = date_to_ms(a)
            return ms is not None and ms < bound

        return before

    def after(a: object, now: int) -> bool:
        ms = date_to_ms(a)
        return ms is not None and ms > bound

    return after


def _duration(value: Value) -> int:
    assert isinstance(value, str)
    ms = duration_to_ms(value)
    assert ms is not None
    return ms


def _recency(op: str, value: Value) -> ValuePredicate:
    span = _duration(value)
    if op == "within_last":

        def within_last(a: object, now: int) -> bool:
            ms = date_to_ms(a)
            return ms is not None and ms > now - span

        return within_last

    def not_within_last(a: object, now: int) -> bool:
        ms = date_to_ms(a)
        return ms is not None and ms <= now - span

    return not_within_last


def value_next_change(op: str, value: Value) -> ValueNextChange | None:
    """When a time-only change can next happen for ``op``; ``None`` if never."""
    if op not in TIME_OPS:
        return None
    span = _duration(value)

    def next_change(a: object, now: int) -> int | None:
        ms = date_to_ms(a)
        if ms is None:
            return None
        edge = ms + span
        return edge if now < edge <= LATEST_CHANGE_MS else None

    return next_change
