"""Compile an aggregate condition over a customer's events."""

from __future__ import annotations

__all__ = ["PropNextChange", "PropPredicate", "compile_aggregate"]

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from operator import attrgetter
from typing import Final

from ._values import duration_to_ms, is_number, scalar_kind
from .model import EventCondition
from .profile import EventRecord, ProfileView

PropPredicate = Callable[[Mapping[str, object], int], bool]
PropNextChange = Callable[[Mapping[str, object], int], "int | None"]
_Evaluate = Callable[[ProfileView, int], bool]
_NextChange = Callable[[ProfileView, int], "int | None"]
_Reducer = Callable[[Sequence[EventRecord], int], bool]

_TS: Final = attrgetter("ts")


def _exact_sum(found: Sequence[float]) -> float | Fraction:
    """The sum, exact even when an integer beyond the float range meets a float."""
    try:
        return sum(found)
    except OverflowError:
        return sum(map(Fraction, found), Fraction(0))


def _comparator(
    op: str, value: int | float | tuple[int | float, int | float]
) -> Callable[[float | Fraction], bool]:
    if op == "between":
        assert isinstance(value, tuple)
        lo, hi = value
        return lambda x: lo <= x <= hi
    assert not isinstance(value, tuple)
    v = value
    table: dict[str, Callable[[float | Fraction], bool]] = {
        "eq": lambda x: x == v,
        "ne": lambda x: x != v,
        "lt": lambda x: x < v,
        "lte": lambda x: x <= v,
        "gt": lambda x: x > v,
        "gte": lambda x: x >= v,
    }
    return table[op]


def compile_aggregate(
    cond: EventCondition, filt: PropPredicate | None, filt_next: PropNextChange | None
) -> tuple[_Evaluate, _NextChange | None]:
    """The evaluator of ``cond`` and, when it depends on time, its next-change function.

    ``filt``/``filt_next`` are the compiled ``filter`` (``None`` when absent or, for
    ``filt_next``, when the filter does not depend on time).
    """
    etype = cond.event
    window = duration_to_ms(cond.within) if cond.within is not None else None
    reduce = _reducer(cond, filt)

    if window is None:

        def evaluate(profile: ProfileView, now: int) -> bool:
            return reduce(profile.events(etype), now)

    else:
        span = window

        def evaluate(profile: ProfileView, now: int) -> bool:
            events = profile.events(etype)
            start = bisect_right(events, now - span, key=_TS)
            return reduce(events[start:] if start else events, now)

    if window is None and filt_next is None:
        return evaluate, None
    return evaluate, _next_change(etype, window, filt, filt_next)


def _next_change(
    etype: str, window: int | None, filt: PropPredicate | None, filt_next: PropNextChange | None
) -> _NextChange:
    def next_change(profile: ProfileView, now: int) -> int | None:
        events = profile.events(etype)
        start = 0 if window is None else bisect_right(events, now - window, key=_TS)
        best: int | None = None
        if window is not None:
            for event in events[start:]:
                if filt is None or filt(event.props, now):
                    best = event.ts + window  # oldest passing event leaves first
                    break
        if filt_next is not None:
            for event in events[start:]:
                edge = filt_next(event.props, now)
                if edge is not None and (best is None or edge < best):
                    best = edge
        return best

    return next_change


def _reducer(cond: EventCondition, filt: PropPredicate | None) -> _Reducer:
    matches = _comparator(cond.op, cond.value)
    agg = cond.agg
    if agg == "count":
        if filt is None:
            return lambda events, now: matches(len(events))
        test = filt
        return lambda events, now: matches(sum(1 for e in events if test(e.props, now)))
    prop = cond.prop
    assert prop is not None

    def numbers(events: Sequence[EventRecord], now: int) -> list[float]:
        out: list[float] = []
        for event in events:
            if filt is not None and not filt(event.props, now):
                continue
            value = event.props.get(prop)
            if is_number(value):
                out.append(value)  # type: ignore[arg-type]
        return out

    if agg == "sum":
        return lambda events, now: matches(_exact_sum(numbers(events, now)))
    if agg == "min":
        return lambda events, now: bool(found := numbers(events, now)) and matches(min(found))
    if agg == "max":
        return lambda events, now: bool(found := numbers(events, now)) and matches(max(found))
    if agg == "avg":

        def average(events: Sequence[EventRecord], now: int) -> bool:
            found = numbers(events, now)
            if not found:
                return False
            total = _exact_sum(found)
            try:
                mean: float | Fraction = total / len(found)
            except OverflowError:  # integers beyond the float range
                mean = Fraction(total) / len(found)
            return matches(mean)

        return average

    def distinct(events: Sequence[EventRecord], now: int) -> bool:
        seen: set[tuple[str, object]] = set()
        for event in events:
            if filt is not None and not filt(event.props, now):
                continue
            value = event.props.get(prop)
            kind = scalar_kind(value)
            if kind is not None:
                seen.add((kind, value))
        return matches(len(seen))

    return distinct
