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
from collections.abc import Callable, Hashable, Mapping, Sequence
from fractions import Fraction
from functools import partial
from operator import attrgetter
from typing import Any, Final

from ._values import duration_to_ms, is_number, scalar_kind
from .history import CountIndex, DistinctIndex, EventSeries, EventSlice, ExtremeIndex, SumIndex
from .model import EventCondition
from .profile import EventRecord, ProfileView

PropPredicate = Callable[[Mapping[str, object], int], bool]
PropNextChange = Callable[[Mapping[str, object], int], "int | None"]
_Evaluate = Callable[[ProfileView, int], bool]
_NextChange = Callable[[ProfileView, int], "int | None"]
_Scan = Callable[[Sequence[EventRecord], int], object]
"""A measure of the window's events by a scan (see `_decider`)."""
_Indexed = Callable[[EventSeries, int], object]
"""A measure of the series from an absolute position on; `_SCAN`: scan instead."""
_Matches = Callable[[float | Fraction], bool]
_RatioMatches = Callable[[int, int], bool]
"""Compares ``numerator / denominator`` (denominator > 0) exactly."""

_TS: Final = attrgetter("ts")

SCAN_AT_MOST = 8
"""Windows of at most this many events are scanned: cheaper than building an index. (Not
`Final`: the compiled build would inline it, and tests patch it to force either path.)"""


def _float_sum(found: Sequence[int | float]) -> float:
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


_SCAN: Final = object()
"""An indexed measure that cannot answer (an infinite or NaN value): scan the window."""
_MISSING: Final = object()

_TOKENS: dict[tuple[object, ...], int] = {}
"""What a measure is (event type, aggregate, property, the filter's text) -> a small number:
structurally equal aggregates of different segments share their measures and indexes."""


def _token(*what: object) -> int:
    """Below 2**32: memo keys are ``start << 32 | token``."""
    token = _TOKENS.setdefault(what, len(_TOKENS))
    if token >= 1 << 32:  # pragma: no cover - billions of distinct aggregates
        raise OverflowError("too many distinct aggregates for the measure memo")
    return token


def compile_aggregate(
    cond: EventCondition, filt: PropPredicate | None, filt_next: PropNextChange | None
) -> tuple[_Evaluate, _NextChange | None]:
    """The evaluator of ``cond`` and, when it depends on time, its next-change function.

    ``filt``/``filt_next`` are the compiled ``filter`` (``None`` when absent or, for
    ``filt_next``, when the filter does not depend on time). Each evaluation measures the
    window (a count, an exact sum, an extreme...) and compares the measure; on a series, a
    measure that does not depend on time is kept in the series' memo
    (:meth:`~segment_rules.history.EventSeries.memo`) for every aggregate of the same
    events, property and filter, whatever its comparison or window.
    """
    etype = cond.event
    window = duration_to_ms(cond.within) if cond.within is not None else None
    # repr, not the filter itself: 1 == 1.0 == True, yet their predicates differ
    filter_token = _token("filter", etype, repr(cond.filter))
    scan = _scan_measure(cond, filt)
    indexed = _indexed(cond, filt, filter_token) if filt_next is None else None
    decide = _decider(cond)
    memo_token = _token("measure", cond.agg, cond.prop, filter_token)
    shared = filt_next is None and not (cond.agg == "count" and filt is None)
    span = window

    def evaluate(profile: ProfileView, now: int) -> bool:
        events = profile.events(etype)
        kind = type(events)
        if kind is EventSeries:
            series: EventSeries = events  # type: ignore[assignment]
            start = series.head
        elif kind is tuple and not events:  # no events of the type
            return decide(scan(events, now))
        else:
            found = _series(events)
            if found is None:  # another ProfileView: scan its sequence
                if span is not None:
                    start = bisect_right(events, now - span, key=_TS)
                    events = events[start:] if start else events
                return decide(scan(events, now))
            series, start = found
        if span is not None:
            start = max(start, series.after(now - span))
        memo: dict[Hashable, Any] | None = None
        key = 0
        if shared:
            memo = series.memo()
            key = start << 32 | memo_token  # an int: nothing for the collector to track
            value = memo.get(key, _MISSING)
            if value is not _MISSING:
                return decide(value)
        # the measure, inlined (one call less per evaluation): the index, else a scan
        value = _SCAN
        if indexed is not None and series.end - start > SCAN_AT_MOST:
            value = indexed(series, start)
        if value is _SCAN:
            value = scan(series.records(start), now)
        if memo is not None:
            memo[key] = value
        return decide(value)

    if window is None and filt_next is None:
        return evaluate, None
    return evaluate, _next_change(etype, window, filt, filt_next, filter_token)


def _never(props: Mapping[str, object], now: int) -> bool:  # pragma: no cover - never built
    return False


def _next_change(
    etype: str,
    window: int | None,
    filt: PropPredicate | None,
    filt_next: PropNextChange | None,
    filter_token: int,
) -> _NextChange:
    static = filt if filt is not None and filt_next is None else None
    count_key = ("count", filter_token)
    new_count = partial(CountIndex, static or _never)
    first_token = _token("first passing", filter_token)

    def first_passing(events: Sequence[EventRecord], now: int) -> int | None:
        """The time of the oldest passing event of the window."""
        for event in events:
            if filt is None or filt(event.props, now):
                return event.ts
        return None

    def first_static(series: EventSeries, start: int, end: int) -> int | None:
        """`first_passing` for a filter that does not depend on time."""
        if end - start <= SCAN_AT_MOST:
            return first_passing(series.records(start), 0)
        index: CountIndex = series.indexed(count_key, new_count)
        at = index.first_passing(start, end)
        return series.ts_at(at) if at is not None else None

    def next_change(profile: ProfileView, now: int) -> int | None:
        events: Sequence[EventRecord] = profile.events(etype)
        if type(events) is tuple and not events:
            return None
        found = _series(events)
        best: int | None = None
        oldest: Any
        if found is None:
            start = 0 if window is None else bisect_right(events, now - window, key=_TS)
            events = events[start:]
            if window is not None:
                oldest = first_passing(events, now)
                best = None if oldest is None else oldest + window
        else:
            series, start = found
            if window is not None:
                start = max(start, series.after(now - window))
                end = series.end
                if filt is None:
                    oldest = series.ts_at(start) if start < end else None
                elif static is not None:
                    memo = series.memo()
                    key = start << 32 | first_token
                    oldest = memo.get(key, _MISSING)
                    if oldest is _MISSING:
                        oldest = memo[key] = first_static(series, start, end)
                else:
                    oldest = first_passing(series.window(start), now)
                best = None if oldest is None else oldest + window
            if filt_next is not None:
                events = series.window(start)
        if filt_next is not None:
            for event in events:
                edge = filt_next(event.props, now)
                if edge is not None and (best is None or edge < best):
                    best = edge
        return best

    return next_change


def _decider(cond: EventCondition) -> Callable[[object], bool]:
    """Compares a measure of the window (what `_scan_measure` and `_indexed` give)."""
    matches = _comparator(cond.op, cond.value)
    agg = cond.agg
    if agg in ("count", "distinct_count"):
        return matches  # type: ignore[return-value]
    if agg in ("min", "max"):
        return lambda extreme: extreme is not None and matches(extreme)  # type: ignore[arg-type]
    ratio = _ratio_comparator(cond.op, cond.value, matches)
    average = agg == "avg"

    def total(measure: object) -> bool:
        count: int
        numerator: int | None
        x: Any
        count, numerator, x = measure  # type: ignore[misc]
        if numerator is None:  # one value, or an infinite or NaN one: float arithmetic
            if count == 1:
                return matches(x)
            return matches(x / count if average else x)
        if average:
            if not count:
                return False
            return ratio(numerator, (1 << x) * count)
        return ratio(numerator, 1 << x)

    return total


def _indexed(cond: EventCondition, filt: PropPredicate | None, filter_token: int) -> _Indexed:
    """The measure on a series' indexes (``filt`` does not depend on time); `_SCAN` when the
    indexes cannot answer."""
    agg = cond.agg
    if agg == "count":
        if filt is None:
            return lambda series, start: series.end - start
        count_key = ("count", filter_token)
        new_count = partial(CountIndex, filt)

        def count(series: EventSeries, start: int) -> object:
            index: CountIndex = series.indexed(count_key, new_count)
            return index.count(start, series.end)

        return count
    prop = cond.prop
    assert prop is not None
    if agg in ("sum", "avg"):
        sum_key = ("sum", prop, filter_token)
        new_sum = partial(SumIndex, prop, filt)

        def total(series: EventSeries, start: int) -> object:
            index: SumIndex = series.indexed(sum_key, new_sum)
            if not index.finite:
                return _SCAN
            end = series.end
            count = index.counts[end] - index.counts[start]
            return count, index.sums[end] - index.sums[start], index.shift

        return total
    if agg in ("min", "max"):
        largest = agg == "max"
        extreme_key = (agg, prop, filter_token)
        new_extreme = partial(ExtremeIndex, prop, filt, largest)

        def extreme(series: EventSeries, start: int) -> object:
            index: ExtremeIndex = series.indexed(extreme_key, new_extreme)
            if not index.finite:
                return _SCAN
            return index.extreme(start)

        return extreme
    distinct_key = ("distinct", prop, filter_token)
    new_distinct = partial(DistinctIndex, prop, filt)

    def distinct(series: EventSeries, start: int) -> object:
        index: DistinctIndex = series.indexed(distinct_key, new_distinct)
        if not index.finite:
            return _SCAN
        return index.distinct(start)

    return distinct


def _scan_measure(cond: EventCondition, filt: PropPredicate | None) -> _Scan:
    """The measure by a scan of the window's events (`_decider` compares it)."""
    agg = cond.agg
    if agg == "count":
        if filt is None:
            return lambda events, now: len(events)
        test = filt

        def count(events: Sequence[EventRecord], now: int) -> object:
            found = 0
            for event in events:
                if test(event.props, now):
                    found += 1
            return found

        return count
    prop = cond.prop
    assert prop is not None

    def numbers(events: Sequence[EventRecord], now: int) -> list[int | float]:
        out: list[int | float] = []
        for event in events:
            props = event.props
            if filt is not None and not filt(props, now):
                continue
            value = props.get(prop)
            if is_number(value):
                out.append(value)  # type: ignore[arg-type]
        return out

    if agg in ("sum", "avg"):

        def total(events: Sequence[EventRecord], now: int) -> object:
            """(count, numerator, shift): the exact total numerator / 2**shift; (count, None,
            value): one value, or the float total of values among which one is infinite
            or NaN."""
            found = numbers(events, now)
            if len(found) == 1:
                return 1, None, found[0]
            exact = _exact_total(found)
            if exact is None:
                return len(found), None, _float_sum(found)
            return len(found), exact[0], exact[1]

        return total
    if agg == "min":
        return lambda events, now: min(found) if (found := numbers(events, now)) else None
    if agg == "max":
        return lambda events, now: max(found) if (found := numbers(events, now)) else None

    def distinct(events: Sequence[EventRecord], now: int) -> object:
        seen: set[tuple[str, object]] = set()
        for event in events:
            if filt is not None and not filt(event.props, now):
                continue
            value = event.props.get(prop)
            kind = scalar_kind(value)
            if kind is not None:
                seen.add((kind, value))
        return len(seen)

    return distinct
