"""Compile an aggregate condition over a customer's events.

On an :class:`~segment_rules.history.EventSeries` (what the engine's profiles and
:class:`DictProfile` hold) an aggregate over more than ``SCAN_AT_MOST`` events reads the
series' incremental indexes: its cost does not grow with the length of the history. A
filter that depends on time (``within_last`` on a property), an infinite or NaN value, or a
plain sequence from another :class:`ProfileView` falls back to a scan of the window. Sums
and averages are exact on both paths (integers scaled by a power of two), as the reference
interpreter's fractions are.
"""

from __future__ import annotations

__all__ = ["PropNextChange", "PropPredicate", "compile_aggregate"]

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from operator import attrgetter
from typing import Final

from ._values import duration_to_ms, is_number, scalar_kind
from .history import CountIndex, DistinctIndex, EventSeries, EventSlice, ExtremeIndex, SumIndex
from .model import EventCondition
from .profile import EventRecord, ProfileView

PropPredicate = Callable[[Mapping[str, object], int], bool]
PropNextChange = Callable[[Mapping[str, object], int], "int | None"]
_Evaluate = Callable[[ProfileView, int], bool]
_NextChange = Callable[[ProfileView, int], "int | None"]
_Reducer = Callable[[Sequence[EventRecord], int], bool]
_Indexed = Callable[[EventSeries, int], "bool | None"]
"""An aggregate over the series from an absolute position on; None: scan instead."""
_Matches = Callable[[float | Fraction], bool]
_RatioMatches = Callable[[int, int], bool]
"""Compares ``numerator / denominator`` (denominator > 0) exactly."""

_TS: Final = attrgetter("ts")

SCAN_AT_MOST: Final = 8
"""Windows of at most this many events are scanned: cheaper than building an index."""


def _float_sum(found: Sequence[float]) -> float:
    """The float sum of values among which an infinity or NaN is: float arithmetic decides,
    and an integer beyond the float range (which cannot meet a float in ``sum``) cannot
    change an infinite or NaN total."""
    try:
        return sum(found)
    except OverflowError:  # inf, -inf or NaN (a NaN, or inf + -inf)
        return sum(v for v in found if isinstance(v, float) and not math.isfinite(v))


def _comparator(op: str, value: int | float | tuple[int | float, int | float]) -> _Matches:
    if op == "between":
        assert isinstance(value, tuple)
        lo, hi = value
        return lambda x: lo <= x <= hi
    assert not isinstance(value, tuple)
    v = value
    table: dict[str, _Matches] = {
        "eq": lambda x: x == v,
        "ne": lambda x: x != v,
        "lt": lambda x: x < v,
        "lte": lambda x: x <= v,
        "gt": lambda x: x > v,
        "gte": lambda x: x >= v,
    }
    return table[op]


def _ratio_comparator(
    op: str, value: int | float | tuple[int | float, int | float], matches: _Matches
) -> _RatioMatches:
    """``matches`` on an exact ratio, without building a fraction."""
    bounds = value if isinstance(value, tuple) else (value,)
    if not all(isinstance(b, int) or math.isfinite(b) for b in bounds):
        # every finite total compares to an infinite or NaN constant as zero does
        return lambda n, d: matches(0)
    if op == "between":
        assert isinstance(value, tuple)
        ln, ld = value[0].as_integer_ratio()
        hn, hd = value[1].as_integer_ratio()
        return lambda n, d: ln * d <= n * ld and n * hd <= hn * d
    assert not isinstance(value, tuple)
    vn, vd = value.as_integer_ratio()
    table: dict[str, _RatioMatches] = {
        "eq": lambda n, d: n * vd == vn * d,
        "ne": lambda n, d: n * vd != vn * d,
        "lt": lambda n, d: n * vd < vn * d,
        "lte": lambda n, d: n * vd <= vn * d,
        "gt": lambda n, d: n * vd > vn * d,
        "gte": lambda n, d: n * vd >= vn * d,
    }
    return table[op]


def _exact_total(found: Sequence[int | float]) -> tuple[int, int] | None:
    """The exact sum as ``(numerator, shift)`` (value = numerator / 2**shift); None when a
    value is infinite or NaN."""
    parts: list[tuple[int, int]] = []
    shift = 0
    for value in found:
        if isinstance(value, float):
            if not math.isfinite(value):
                return None
            n, d = value.as_integer_ratio()
            bits = d.bit_length() - 1
            shift = max(shift, bits)
            parts.append((n, bits))
        else:
            parts.append((value, 0))
    return sum(n << (shift - bits) for n, bits in parts), shift


def _series(events: Sequence[EventRecord]) -> tuple[EventSeries, int] | None:
    kind = type(events)
    if kind is EventSeries:
        series: EventSeries = events  # type: ignore[assignment]
        return series, series.head
    if kind is EventSlice:
        window: EventSlice = events  # type: ignore[assignment]
        return window.series, window.start
    return None


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
    indexed = _indexed(cond, filt) if filt_next is None else None
    span = window

    def evaluate(profile: ProfileView, now: int) -> bool:
        events = profile.events(etype)
        kind = type(events)
        if kind is EventSeries:
            series: EventSeries = events  # type: ignore[assignment]
            start = series.head
        elif kind is tuple and not events:  # no events of the type
            return reduce(events, now)
        else:
            found = _series(events)
            if found is None:  # another ProfileView: scan its sequence
                if span is not None:
                    start = bisect_right(events, now - span, key=_TS)
                    events = events[start:] if start else events
                return reduce(events, now)
            series, start = found
        if span is not None:
            start = max(start, series.after(now - span))
        if indexed is not None and series.end - start > SCAN_AT_MOST:
            result = indexed(series, start)
            if result is not None:
                return result
        return reduce(series.records(start), now)

    if window is None and filt_next is None:
        return evaluate, None
    return evaluate, _next_change(etype, window, filt, filt_next)


def _never(props: Mapping[str, object], now: int) -> bool:  # pragma: no cover - never built
    return False


def _next_change(
    etype: str, window: int | None, filt: PropPredicate | None, filt_next: PropNextChange | None
) -> _NextChange:
    static = filt if filt is not None and filt_next is None else None
    count_key = ("count", static)
    new_count = partial(CountIndex, static or _never)

    def first_passing(events: Sequence[EventRecord], now: int) -> int | None:
        """When the oldest passing event of the window leaves it."""
        assert window is not None
        for event in events:
            if filt is None or filt(event.props, now):
                return event.ts + window
        return None

    def next_change(profile: ProfileView, now: int) -> int | None:
        events: Sequence[EventRecord] = profile.events(etype)
        if type(events) is tuple and not events:
            return None
        found = _series(events)
        best: int | None = None
        if found is None:
            start = 0 if window is None else bisect_right(events, now - window, key=_TS)
            events = events[start:]
            if window is not None:
                best = first_passing(events, now)
        else:
            series, start = found
            if window is not None:
                start = max(start, series.after(now - window))
                end = series.end
                if filt is None:
                    best = series.ts_at(start) + window if start < end else None
                elif end - start <= SCAN_AT_MOST:
                    best = first_passing(series.records(start), now)
                elif static is not None:
                    index: CountIndex = series.indexed(count_key, new_count)
                    at = index.first_passing(start, end)
                    best = series.ts_at(at) + window if at is not None else None
                else:
                    best = first_passing(series.window(start), now)
            if filt_next is not None:
                events = series.window(start)
        if filt_next is not None:
            for event in events:
                edge = filt_next(event.props, now)
                if edge is not None and (best is None or edge < best):
                    best = edge
        return best

    return next_change


def _indexed(cond: EventCondition, filt: PropPredicate | None) -> _Indexed:
    """The aggregate on a series' indexes (``filt`` does not depend on time)."""
    matches = _comparator(cond.op, cond.value)
    agg = cond.agg
    if agg == "count":
        if filt is None:
            return lambda series, start: matches(series.end - start)
        passes = filt
        count_key = ("count", filt)
        new_count = partial(CountIndex, passes)

        def count(series: EventSeries, start: int) -> bool:
            index: CountIndex = series.indexed(count_key, new_count)
            return matches(index.count(start, series.end))

        return count
    prop = cond.prop
    assert prop is not None
    if agg in ("sum", "avg"):
        ratio = _ratio_comparator(cond.op, cond.value, matches)
        sum_key = ("sum", prop, filt)
        average = agg == "avg"
        new_sum = partial(SumIndex, prop, filt)

        def total(series: EventSeries, start: int) -> bool | None:
            index: SumIndex = series.indexed(sum_key, new_sum)
            if not index.finite:
                return None
            end = series.end
            numerator = index.sums[end] - index.sums[start]
            denominator = 1 << index.shift
            if average:
                count = index.counts[end] - index.counts[start]
                if not count:
                    return False
                denominator *= count
            return ratio(numerator, denominator)

        return total
    if agg in ("min", "max"):
        largest = agg == "max"
        extreme_key = (agg, prop, filt)
        new_extreme = partial(ExtremeIndex, prop, filt, largest)

        def extreme(series: EventSeries, start: int) -> bool | None:
            index: ExtremeIndex = series.indexed(extreme_key, new_extreme)
            if not index.finite:
                return None
            value = index.extreme(start)
            return value is not None and matches(value)

        return extreme
    distinct_key = ("distinct", prop, filt)
    new_distinct = partial(DistinctIndex, prop, filt)

    def distinct(series: EventSeries, start: int) -> bool | None:
        index: DistinctIndex = series.indexed(distinct_key, new_distinct)
        if not index.finite:
            return None
        return matches(index.distinct(start))

    return distinct


def _reducer(cond: EventCondition, filt: PropPredicate | None) -> _Reducer:
    """The aggregate by a scan of the window's events."""
    matches = _comparator(cond.op, cond.value)
    agg = cond.agg
    if agg == "count":
        if filt is None:
            return lambda events, now: matches(len(events))
        test = filt

        def count(events: Sequence[EventRecord], now: int) -> bool:
            found = 0
            for event in events:
                if test(event.props, now):
                    found += 1
            return matches(found)

        return count
    prop = cond.prop
    assert prop is not None

    def numbers(events: Sequence[EventRecord], now: int) -> list[float]:
        out: list[float] = []
        for event in events:
            props = event.props
            if filt is not None and not filt(props, now):
                continue
            value = props.get(prop)
            if is_number(value):
                out.append(value)  # type: ignore[arg-type]
        return out

    if agg in ("sum", "avg"):
        ratio = _ratio_comparator(cond.op, cond.value, matches)
        average = agg == "avg"

        def total(events: Sequence[EventRecord], now: int) -> bool:
            found = numbers(events, now)
            if len(found) == 1:  # one value: it is the sum and the average, compared exactly
                return matches(found[0])
            if average and not found:
                return False
            exact = _exact_total(found)
            if exact is None:  # infinite or NaN: float arithmetic decides
                value = _float_sum(found)
                return matches(value / len(found) if average else value)
            numerator, shift = exact
            return ratio(numerator, (1 << shift) * (len(found) if average else 1))

        return total
    if agg == "min":
        return lambda events, now: bool(found := numbers(events, now)) and matches(min(found))
    if agg == "max":
        return lambda events, now: bool(found := numbers(events, now)) and matches(max(found))

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
