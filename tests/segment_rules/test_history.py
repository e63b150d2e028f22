"""EventSeries: indexes kept up to date through appends, insertions and drops agree with the
reference interpreter, and with a plain scan of the same events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any
from unittest.mock import patch

from hypothesis import given
from hypothesis import strategies as st

from segment_rules import EventRecord, EventSeries, _aggregate, compile_segment
from segment_rules.history import event_record

from .reference import DAY, ref_aggregate_value, ref_dur, ref_segment
from .strategies import COLLIDE, HUGE, NOW, budget, small_numbers
from .test_compile_properties import follow_timers

_ETYPE = "buy"
_PROPS = st.fixed_dictionaries(
    {},
    optional={
        "p": st.one_of(small_numbers, st.sampled_from(["a", "b", "1"]), st.booleans()),
        "k": st.sampled_from(["x", "y"]),
    },
)
_TIMES = st.integers(NOW - 40 * DAY, NOW + DAY)
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _TIMES, _PROPS),
        st.tuples(st.just("add"), _TIMES, _PROPS),  # appends are the common case
        st.tuples(st.just("drop_through"), _TIMES, st.none()),
        st.tuples(st.just("drop_oldest"), st.none(), st.none()),
    ),
    min_size=1,
    max_size=40,
)


def _conditions() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    filters: list[dict[str, Any] | None] = [None, {"prop": "k", "op": "eq", "value": "x"}]
    for within in (None, "3d", "30d"):
        for flt in filters:
            extra: dict[str, Any] = {}
            if within:
                extra["within"] = within
            if flt:
                extra["filter"] = flt
            out.append({"event": _ETYPE, "agg": "count", "op": "gte", "value": 2, **extra})
            for agg, op, value in (
                ("sum", "gt", 1.5),
                ("sum", "eq", 0),
                ("avg", "lte", 1),
                ("avg", "between", [0.5, 2.5]),
                ("min", "lt", 0),
                ("max", "gte", 2.5),
                ("distinct_count", "gte", 3),
            ):
                out.append(
                    {"event": _ETYPE, "agg": agg, "op": op, "value": value, "prop": "p", **extra}
                )
    return out


_DEFINITIONS = [
    {"id": f"s{i}", "name": "History", "rules": [{"where": where}]}
    for i, where in enumerate(_conditions())
]


def _compiled() -> list[Any]:
    """Compiled in the test, not at import: a mutation run swaps functions per test."""
    return [compile_segment(d) for d in _DEFINITIONS]


@dataclass
class _View:
    """A ProfileView over one series (the engine's profiles hand theirs out the same way)."""

    events_of: Sequence[EventRecord]

    def attribute(self, name: str) -> object | None:
        return None

    def events(self, event_type: str) -> Sequence[EventRecord]:
        return self.events_of if event_type == _ETYPE else ()

    def in_segment(self, segment_id: str) -> bool:
        return False


def _apply(series: EventSeries, op: tuple[str, Any, Any]) -> None:
    name, ts, props = op
    if name == "add":
        series.add(EventRecord(ts, props))
    elif name == "drop_through":
        series.drop_through(ts)
    elif len(series):
        series.drop_oldest()


@budget(100)
@given(_OPS, st.sampled_from([NOW - DAY, NOW, NOW + 1]))
def test_indexes_follow_every_change_of_the_series(ops: list[Any], now: int) -> None:
    """Evaluated after every change, so each index is extended, rebuilt or cut in turn
    (indexes even for the short windows that the evaluator scans otherwise)."""
    with patch.object(_aggregate, "SCAN_AT_MOST", 0):
        _follow(ops, now)


@budget(50)
@given(_OPS, st.sampled_from([NOW - DAY, NOW]))
def test_short_windows_are_scanned_with_the_same_results(ops: list[Any], now: int) -> None:
    _follow(ops, now)


def _follow(ops: list[Any], now: int) -> None:
    compiled_all = _compiled()
    series = EventSeries()
    incremental = _View(series)
    for op in ops:
        _apply(series, op)
        records = list(series)
        assert [r.ts for r in records] == sorted(r.ts for r in records)
        raw = {
            "attrs": {},
            "events": {_ETYPE: [(r.ts, r.props) for r in records]},
            "segments": [],
        }
        scanned = _View(records)  # a plain list: the scanning path
        for definition, compiled in zip(_DEFINITIONS, compiled_all, strict=True):
            expected = ref_segment(definition, raw, now)
            assert compiled.evaluate(incremental, now) == expected, (definition, records)
            assert compiled.evaluate(scanned, now) == expected, (definition, records)


@budget(50)
@given(_OPS)
def test_a_window_of_a_series_reads_from_its_start(ops: list[Any]) -> None:
    with patch.object(_aggregate, "SCAN_AT_MOST", 0):
        _windows(ops)


def _windows(ops: list[Any]) -> None:
    compiled_all = _compiled()
    series = EventSeries()
    for op in ops:
        _apply(series, op)
    records = list(series)
    for cutoff in {NOW - 20 * DAY, NOW - DAY, *(r.ts for r in records)}:
        window = series.window(series.after(cutoff))
        kept = [r for r in records if r.ts > cutoff]
        assert list(window) == kept
        assert len(window) == len(kept)
        assert [window[i] for i in range(len(kept))] == kept
        for definition, compiled in zip(_DEFINITIONS, compiled_all, strict=True):
            raw = {"attrs": {}, "events": {_ETYPE: [(r.ts, r.props) for r in kept]}, "segments": []}
            assert compiled.evaluate(_View(window), NOW) == ref_segment(definition, raw, NOW)


def _sum_is(value: int) -> Any:
    where = {"event": _ETYPE, "agg": "sum", "prop": "p", "op": "eq", "value": value}
    return compile_segment({"id": "t", "name": "T", "rules": [{"where": where}]})


def test_compaction_keeps_the_newest_events_and_their_aggregates() -> None:
    """Dropping the oldest event again and again compacts the series (its positions move):
    the indexes must follow."""
    series = EventSeries()
    view = _View(series)
    for i in range(1000):
        series.add(EventRecord(NOW - 1000 + i, {"p": i}))
        if i >= 10:
            series.drop_oldest()
        if i % 7 == 0:
            assert _sum_is(sum(r.props["p"] for r in series)).evaluate(view, NOW)
    assert len(series) == 10
    assert [r.ts for r in series] == list(range(NOW - 10, NOW))


# ------------------------------------------------- every kind of value, short and long series

_EXACT_VALUES = st.one_of(
    COLLIDE,  # 1, True, 1.0, "1", 0, False, -0.0: equal in Python, distinct by kind or not
    st.integers(-3, 5),
    st.sampled_from([0.5, -1.5, 0.1, 1e-30, 2.0**-70, 5e-324, -0.0, 1e3, 2**63, HUGE, -HUGE]),
    st.booleans(),
    st.sampled_from(["1", "a", "", None, [1], {"k": 1}]),
)
"""Property values of every kind the reference sums exactly: fractions finer than the
series' first scale (``2**-64``), integers beyond the float range, and non-numbers."""
_NON_FINITE = st.sampled_from([math.inf, -math.inf, math.nan])
_FILTERS: list[dict[str, Any] | None] = [
    None,
    {"prop": "k", "op": "eq", "value": "x"},  # does not depend on time: indexed
    {"prop": "d", "op": "within_last", "value": "1d"},  # depends on time: scanned
]


@st.composite
def _series_cases(
    draw: st.DrawFn, sizes: st.SearchStrategy[int], values: st.SearchStrategy[Any]
) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], int]:
    """One aggregate of ``p`` and an unsorted history of ``sizes`` events whose times sit on
    the window's edges (``now - span + {-1, 0, 1}``) or anywhere around."""
    agg = draw(st.sampled_from(["count", "sum", "avg", "min", "max", "distinct_count"]))
    op = draw(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "between"]))
    constants = st.sampled_from([0, 1, 2, 3, -1, 0.5, 1.5, -1.5, 1e-30, 2**63])
    value: Any = sorted(draw(st.lists(constants, min_size=2, max_size=2)))
    where: dict[str, Any] = {"event": _ETYPE, "agg": agg, "op": op}
    where["value"] = value if op == "between" else value[draw(st.integers(0, 1))]
    if agg != "count":
        where["prop"] = "p"
    filt = draw(st.sampled_from(_FILTERS))
    if filt is not None:
        where["filter"] = filt
    now = draw(st.sampled_from([NOW - DAY, NOW, NOW + 1]))
    edges = [now - 40 * DAY, now]
    if draw(st.booleans()):
        within = draw(st.sampled_from(["1s", "90s", "1d", "3d"]))
        where["within"] = within
        edges = [now - ref_dur(within) + k for k in (-1, 0, 1)]
    times = st.one_of(st.sampled_from(edges), st.integers(now - 5 * DAY, now + DAY))
    dates = st.one_of(st.integers(now - 2 * DAY, now), st.sampled_from([now - DAY, now - DAY + 1]))
    props = st.fixed_dictionaries(
        {"p": values},
        optional={"k": st.sampled_from(["x", "y"]), "d": dates},
    )
    size = draw(sizes)
    records = draw(st.lists(st.tuples(times, props), min_size=size, max_size=size))
    if size >= 2 and draw(st.booleans()):
        # two values that Python finds equal, of two kinds or one, inside every window and
        # passing every filter: what distinct_count, min and max must tell apart, or not
        pair = draw(st.sampled_from([(1, True), (0, False), (1, 1.0), (0, -0.0), (1, "1")]))
        at = draw(st.lists(st.integers(0, size - 1), min_size=2, max_size=2, unique=True))
        for where_at, twin in zip(at, pair, strict=True):
            records[where_at] = (now - 1, {"p": twin, "k": "x", "d": now})
    try:
        exact = ref_aggregate_value(where, {"events": {_ETYPE: records}}, now)
    except (ValueError, OverflowError):  # inf or NaN: the reference's fractions hold neither
        exact = None
    if exact is not None and op != "between" and draw(st.booleans()):
        # the constant on the aggregate's exact value at now: eq/lte/gte... on the edge
        if exact.denominator == 1:
            where["value"] = int(exact)
        elif abs(exact) < 2**64 and Fraction(float(exact)) == exact:
            where["value"] = float(exact)
    return {"id": "seg", "name": "Series", "rules": [{"where": where}]}, records, now


_SHORT = st.integers(1, _aggregate.SCAN_AT_MOST)
_LONG = st.integers(_aggregate.SCAN_AT_MOST + 1, 40)


def _grow(records: list[tuple[int, dict[str, Any]]], check: Any) -> EventSeries:
    """Add the events one by one in the order drawn (so often in the middle), and ``check``
    the series after each addition: indexes extended, or rebuilt after an insertion."""
    series = EventSeries()
    for ts, props in records:
        series.add(EventRecord(ts, props))
        check(series)
    return series


def _raw(series: EventSeries) -> dict[str, Any]:
    events = [(r.ts, r.props) for r in series]
    return {"attrs": {}, "events": {_ETYPE: events}, "segments": frozenset()}


def _matches_reference(defn: dict[str, Any], records: list[Any], now: int) -> None:
    compiled = compile_segment(defn)

    def check(series: EventSeries) -> None:
        assert compiled.evaluate(_View(series), now) == ref_segment(defn, _raw(series), now)

    series = _grow(records, check)
    for cutoff in (now - 3 * DAY, now - DAY, now - 1):  # retention drops the oldest
        series.drop_through(cutoff)
        check(series)
    raw = {"attrs": {}, "events": {_ETYPE: records}, "segments": frozenset()}
    follow_timers(defn, raw, now)  # every timer against the reference's timeline


@budget(150)
@given(_series_cases(_SHORT, _EXACT_VALUES))
def test_a_short_series_matches_the_reference(case: Any) -> None:
    """At most ``SCAN_AT_MOST`` events (and any fast path for short histories)."""
    _matches_reference(*case)


@budget(150)
@given(_series_cases(_LONG, _EXACT_VALUES))
def test_a_long_series_matches_the_reference(case: Any) -> None:
    """More events than ``SCAN_AT_MOST``: the indexes answer."""
    _matches_reference(*case)


@budget(100)
@given(_series_cases(_LONG, st.one_of(_EXACT_VALUES, _NON_FINITE)), st.integers(0, 39))
def test_infinite_and_nan_values_give_the_scan_results(case: Any, at: int) -> None:
    """An infinite or NaN value (which the reference's fractions cannot hold): the indexed
    answer equals a scan of the same events, before and after it arrives."""
    defn, records, now = case
    records.insert(at % (len(records) + 1), (now - 1, {"p": math.nan, "k": "x"}))
    compiled = compile_segment(defn)

    def check(series: EventSeries) -> None:
        scanned = _View(list(series))
        with patch.object(_aggregate, "SCAN_AT_MOST", 0):
            assert compiled.evaluate(_View(series), now) == compiled.evaluate(scanned, now)
            indexed_next = compiled.next_change(_View(series), now)
        assert indexed_next == compiled.next_change(scanned, now)

    _grow(records, check)


def test_a_series_is_a_sequence_of_its_kept_events() -> None:
    """Indexing (negative too), slices, equality and the out-of-range error, before and after
    the oldest events are dropped, on the series and on a window of it."""
    records = [EventRecord(NOW + i, {"n": i}) for i in (3, 0, 2, 1, 4)]
    series = EventSeries(records)
    ordered = sorted(records, key=lambda r: r.ts)
    assert series == ordered and series == tuple(ordered) and series != ordered[1:]
    assert series != records  # unsorted: not the same sequence
    assert (series == {"n": 0}) is False
    assert [series[i] for i in range(-5, 5)] == ordered + ordered
    assert list(series[1:3]) == ordered[1:3] and list(series[::-1]) == ordered[::-1]
    assert series.drop_through(NOW - 1) == 0
    assert series.drop_through(NOW + 1) == 2
    kept = ordered[2:]
    assert series == kept and len(series) == 3 and list(series) == kept
    assert [series[i] for i in (0, 1, 2, -1, -2, -3)] == [*kept, *kept[::-1]]
    assert list(series[:2]) == kept[:2]
    window = series.window(series.after(NOW + 2))
    assert [window[0], window[-1]] == [kept[1], kept[2]] and list(window[1:]) == kept[2:]
    for sequence, size in ((series, 3), (window, 2)):
        for index in (size, -size - 1):
            try:
                sequence[index]
            except IndexError as exc:
                assert str(exc) == "event index out of range"
            else:
                raise AssertionError(f"index {index} of {size} events did not raise")
    assert repr(EventSeries(kept[:1])) == f"EventSeries([{kept[0]!r}])"


def test_an_event_older_than_the_dropped_ones_is_kept_at_the_front() -> None:
    series = EventSeries([EventRecord(NOW + i, {}) for i in range(4)])
    series.drop_oldest()
    series.drop_oldest()
    older = EventRecord(NOW - 5, {"old": True})
    series.add(older)  # in the middle of the record list, before the kept events
    assert list(series) == [older, EventRecord(NOW + 2, {}), EventRecord(NOW + 3, {})]
    assert series.first_ts() == NOW - 5 and len(series) == 3


def test_sums_stay_exact_as_finer_fractions_arrive() -> None:
    """Each finer float rescales the sums already taken in (twice here: to 2**-64, then past
    it); the indexed sum must still equal the exact one."""
    series = EventSeries()
    view = _View(series)
    values: list[float] = [0.5, 0.25, 1e-30, 2.0**-70, 3, 5e-324]
    for i, value in enumerate(values):
        series.add(EventRecord(NOW - 100 + i, {"p": value}))
    for _ in range(4):  # past SCAN_AT_MOST: the index answers
        series.add(EventRecord(NOW - 50, {"p": 1}))
    for agg, op, bound, expected in (
        ("sum", "gt", 7.75, True),  # 7.75 + 1e-30 + ... > 7.75
        ("sum", "lte", 7.75, False),
        ("sum", "lt", 7.750000000000001, True),
        ("avg", "lt", 0.775, True),  # the float 0.775 is 0.77500000000000002...: above
    ):
        where = {"event": _ETYPE, "agg": agg, "prop": "p", "op": op, "value": bound}
        compiled = compile_segment({"id": "t", "name": "T", "rules": [{"where": where}]})
        assert compiled.evaluate(view, NOW) is expected, (agg, op, bound)


@given(st.integers(-(2**63), 2**63 - 1), _PROPS)
def test_event_record_is_the_named_tuple_a_record_is(ts: int, props: dict[str, object]) -> None:
    """`event_record` (the hot path's constructor, without the named tuple's `__new__`) makes
    the very value `EventRecord(ts, props)` makes: same type, fields, equality and hash."""
    made = event_record(ts, props)
    expected = EventRecord(ts, props)
    assert type(made) is EventRecord
    assert (made.ts, made.props) == (ts, props)
    assert made.props is props
    assert made == expected and made._asdict() == expected._asdict()
    assert repr(made) == repr(expected)
