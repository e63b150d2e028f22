"""Hypothesis generators of definitions and profiles for the property tests.

Every kind of value goes in every position the grammar allows: constants of every kind
(strings, ints, floats, bools, dates as ISO text or epoch ms), and profile values of every
kind (also ``None``, lists with anything inside, nested maps, huge ints). Small shared pools
make collisions likely (``1``, ``1.0``, ``True`` and ``"1"`` side by side; substrings of one
another). Event histories come unsorted, with ties.

Times are *constructed* on the edges that matter, never found by rejection sampling:
:func:`cases` draws the definition and ``now`` first, then builds the profile's event times
and dates from ``now - span + {-1, 0, +1}`` for every duration of the definition and
``constant + {-1, 0, +1}`` for every ``before``/``after`` date, besides free times.

The number of examples is each test's budget scaled by the hypothesis profile (``LS_HYPOTHESIS``:
``fast`` by default, ``ci`` for the whole budget) and ``LS_PROPERTY_SCALE`` (the mutation run
uses a smaller one, a thorough run a larger one): see :func:`budget`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from segment_rules import DictProfile, EventRecord, ProfileView

from ..hypothesis_profiles import examples as scaled
from .reference import DAY, Raw, ref_aggregate_value, ref_date, ref_dur, walk

NOW = 1_700_000_000_000
ATTRS = ["a", "b", "c"]
EVENTS = ["view", "buy"]
PROPS = ["p", "q", "r"]
SEGMENTS = ["s1", "s2", "s3"]
DURATIONS = ["1s", "90s", "30m", "2h", "1d", "3d", "1w"]
OPS = [
    "eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "contains",
    "not_contains", "starts_with", "ends_with", "exists", "not_exists", "before", "after",
    "within_last", "not_within_last",
]  # fmt: skip
AGGS = ["count", "sum", "avg", "min", "max", "distinct_count"]
AGG_OPS = ["eq", "ne", "lt", "lte", "gt", "gte", "between"]
HUGE = 10**400  # beyond the float range, as JSON may carry it

_DERANDOMIZE = os.environ.get("LS_PROPERTY_DERANDOMIZE") == "1"


def budget(examples: int) -> settings:
    """Settings for a property test: ``examples`` (its ``ci`` budget) scaled by the profile
    and ``LS_PROPERTY_SCALE`` (``tests.hypothesis_profiles``)."""
    return settings(
        max_examples=scaled(examples),
        deadline=None,
        derandomize=_DERANDOMIZE,
        database=None if _DERANDOMIZE else settings.default.database,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---------------------------------------------------------------- constants of the grammar

# substrings of one another, look-alikes of numbers, booleans and dates
strings = st.sampled_from(["", "a", "ab", "abc", "b", "bc", "A", "1", "true", "2023-11-14", "é"])
ints = st.one_of(st.integers(-3, 5), st.sampled_from([2**63, -(2**53) - 1]))
floats = st.sampled_from([0.5, 1.0, -1.5, 2.5, -0.0, 1e3])
numbers = st.one_of(ints, floats)
scalars = st.one_of(strings, numbers, st.booleans())
# in profiles, integers stay where floats are exact (sums mix them), or go far beyond (HUGE)
small_numbers = st.one_of(st.integers(-3, 5), floats)
small_scalars = st.one_of(strings, small_numbers, st.booleans())


_PLUS2 = timezone(timedelta(hours=2))


def _iso(ms: int, style: str, micros: int) -> str | int:
    """``ms`` as a date value of the language, in one of its spellings (same instant)."""
    if style == "ms":
        return ms
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms, microseconds=micros)
    if style == "naive":
        return d.replace(tzinfo=None).isoformat(timespec="microseconds")
    if style == "space":
        return d.replace(tzinfo=None).isoformat(sep=" ", timespec="milliseconds")
    if style == "z":
        return d.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    shifted = d.astimezone(UTC if style == "utc" else _PLUS2)
    return shifted.isoformat(timespec="microseconds")


@st.composite
def date_of(draw: st.DrawFn, times: st.SearchStrategy[int]) -> str | int:
    """A date value (epoch ms or ISO text, sub-millisecond digits included) at a drawn time."""
    ms = draw(times)
    style = draw(st.sampled_from(["ms", "ms", "naive", "space", "z", "utc", "plus2"]))
    micros = draw(st.sampled_from([0, 0, 1, 999])) if style in ("naive", "utc", "plus2") else 0
    return _iso(ms, style, micros)


free_times = st.integers(NOW - 10 * DAY, NOW + DAY)
constant_dates = st.one_of(date_of(free_times), st.just("2023-11-14"))


@st.composite
def leaf_value(draw: st.DrawFn, op: str) -> Any:
    if op in ("eq", "ne", "contains", "not_contains"):
        return draw(scalars)
    if op in ("lt", "lte", "gt", "gte"):
        return draw(numbers)
    if op == "between":
        lo, hi = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        return [lo, hi]
    if op in ("in", "not_in"):
        kind = draw(st.sampled_from([strings, numbers, st.booleans()]))
        return draw(st.lists(kind, min_size=1, max_size=3))
    if op in ("starts_with", "ends_with"):
        return draw(strings)
    if op in ("before", "after"):
        return draw(constant_dates)
    return draw(st.sampled_from(DURATIONS))


@st.composite
def leaf(draw: st.DrawFn, key: str, names: list[str], ops: list[str] = OPS) -> dict[str, Any]:
    op = draw(st.sampled_from(ops))
    out: dict[str, Any] = {key: draw(st.sampled_from(names)), "op": op}
    if op not in ("exists", "not_exists"):
        out["value"] = draw(leaf_value(op))
    return out


def nested(base: st.SearchStrategy[dict[str, Any]], depth: int) -> Any:
    """``base`` or ``all``/``any``/``not`` of such trees, at most ``depth`` levels deep."""
    if depth == 0:
        return base
    inner = nested(base, depth - 1)
    return st.one_of(
        base,
        base,
        st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    )


filters = nested(leaf("prop", PROPS), 2)


@st.composite
def aggregate(draw: st.DrawFn, windowed: bool | None = None) -> dict[str, Any]:
    agg = draw(st.sampled_from(AGGS))
    out: dict[str, Any] = {"event": draw(st.sampled_from(EVENTS)), "agg": agg}
    if agg != "count":
        out["prop"] = draw(st.sampled_from(PROPS))
    if draw(st.booleans()):
        out["filter"] = draw(filters)
    if windowed if windowed is not None else draw(st.booleans()):
        out["within"] = draw(st.sampled_from(DURATIONS))
    op = draw(st.sampled_from(AGG_OPS))
    out["op"] = op
    small = st.one_of(st.integers(0, 4), st.sampled_from([0.5, 1.0, 2.5, -1.5]))
    if op == "between":
        out["value"] = sorted(draw(st.lists(small, min_size=2, max_size=2)))
    else:
        out["value"] = draw(small)
    return out


conditions = nested(
    st.one_of(
        leaf("attr", ATTRS),
        aggregate(),
        st.builds(lambda s: {"in_segment": s}, st.sampled_from(SEGMENTS)),
    ),
    2,
)


@st.composite
def definitions(draw: st.DrawFn, where: st.SearchStrategy[Any] = conditions) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"where": draw(where)}]
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["union", "intersect", "except"]))
        rules.append({"op": op, "where": draw(where)})
    defn: dict[str, Any] = {"id": "seg", "name": "Generated", "rules": rules}
    if draw(st.booleans()):
        defn["type"] = draw(st.sampled_from(["dynamic", "static"]))
    if draw(st.booleans()):
        defn["tags"] = draw(st.lists(strings, max_size=2))
    return defn


def _grouped(test: dict[str, Any], group: str, other: dict[str, Any]) -> dict[str, Any]:
    """``test`` alone, negated, or beside another filter in ``all``/``any``."""
    if group == "not":
        return {"not": test}
    return {group: [other, test]} if group else test


@st.composite
def timed_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """Definitions that always hold a window or a recency test (maybe inside a filter)."""
    timed_leaf = st.one_of(
        aggregate(windowed=True),
        st.builds(
            lambda name, op, span: {"attr": name, "op": op, "value": span},
            st.sampled_from(ATTRS),
            st.sampled_from(["within_last", "not_within_last"]),
            st.sampled_from(DURATIONS),
        ),
        st.builds(
            lambda agg, span, op, group, other: {
                **agg,
                "filter": _grouped({"prop": "p", "op": op, "value": span}, group, other),
            },
            aggregate(windowed=False),
            st.sampled_from(DURATIONS),
            st.sampled_from(["within_last", "not_within_last"]),
            st.sampled_from(["", "all", "any", "not"]),
            filters,
        ),
    )
    first = draw(timed_leaf)
    if draw(st.booleans()):
        first = {"not": first}
    if draw(st.booleans()):
        first = {draw(st.sampled_from(["all", "any"])): [first, draw(conditions)]}
    defn = draw(definitions(st.just(first)))
    defn["rules"] = defn["rules"][:1] + [
        {"op": r["op"], "where": draw(conditions)} for r in defn["rules"][1:]
    ]
    return defn


# ---------------------------------------------------------------- profiles


def edge_times(defn: dict[str, Any], now: int) -> list[int]:
    """The instants where a time test of ``defn`` flips at ``now``, and their neighbours."""
    anchors = [now - ref_dur(n["within"]) for n in walk(defn) if "within" in n]
    for node in walk(defn):
        if node.get("op") in ("within_last", "not_within_last"):
            anchors.append(now - ref_dur(node["value"]))
        if node.get("op") in ("before", "after"):
            anchors.append(ref_date(node["value"]))  # type: ignore[arg-type]
    return sorted({a + d for a in anchors for d in (-1, 0, 1)})


def _twins(v: Any) -> list[Any]:
    """``v`` and the values of other kinds that Python finds equal or alike."""
    out = [v]
    if isinstance(v, bool):
        out += [int(v), float(v), str(v).lower()]
    elif isinstance(v, int | float):
        out += [float(v), str(v)] + ([bool(v)] if v in (0, 1) else [])
        if isinstance(v, float) and v.is_integer():
            out.append(int(v))
    elif isinstance(v, str):
        out += [v.upper(), "x" + v, v + "y", "x" + v + "y", v[1:], v[:-1]]
        out += [1] if v == "1" else [True] if v == "true" else []
    return out


def related_values(defn: dict[str, Any]) -> list[Any]:
    """Values built from the constants of ``defn``: equal, of another kind, inside a string or
    a list, cut short. So that ``eq``, ``in``, ``contains``, ``starts_with``... really meet."""
    constants: list[Any] = []
    for node in walk(defn):
        if "op" in node and ("attr" in node or "prop" in node) and "value" in node:
            value = node["value"]
            constants += value if isinstance(value, list) else [value]
    out: list[Any] = []
    for c in constants:
        if isinstance(c, int) and abs(c) > 2**53:
            continue  # not where float sums are exact
        twins = _twins(c)
        out += [*twins, [c], [twins[-1], c], ["z", twins[-1]]]
    return out


# values that distinct_count and eq must tell apart, or not
COLLIDE = st.sampled_from([1, True, 0, False, 1.0, "1", -0.0])


@st.composite
def profile_values(draw: st.DrawFn, times: st.SearchStrategy[int], related: list[Any]) -> Any:
    """What an attribute or an event property may hold: anything JSON can carry."""
    lists = st.lists(small_scalars, max_size=2)
    items = st.one_of(small_scalars, st.none(), lists, st.just({"k": 1}))
    kind = draw(st.integers(0, 11))
    if kind <= 2 and related:
        return draw(st.sampled_from(related))
    if kind <= 4:
        return draw(COLLIDE) if kind % 2 else draw(small_scalars)
    if kind <= 7:
        return draw(date_of(times))
    if kind == 8:
        return draw(st.lists(items, max_size=3))
    if kind == 9:
        return draw(st.dictionaries(st.sampled_from(["k", "p"]), items, max_size=2))
    if kind == 10:
        return draw(st.sampled_from([None, HUGE, -HUGE, "not a date", 1.5]))
    return draw(small_numbers)


@st.composite
def raw_profiles(
    draw: st.DrawFn, times: st.SearchStrategy[int] = free_times, related: list[Any] | None = None
) -> Raw:
    values = profile_values(times, related or [])
    attrs = {name: draw(values) for name in ATTRS if draw(st.booleans())}
    events: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for etype in EVENTS:
        events[etype] = draw(
            st.lists(
                st.tuples(times, st.dictionaries(st.sampled_from(PROPS), values, max_size=3)),
                max_size=6,
            )
        )  # in the order drawn: unsorted, with ties
    segments = draw(st.frozensets(st.sampled_from(SEGMENTS)))
    return {"attrs": attrs, "events": events, "segments": segments}


nows = st.integers(NOW - 2 * DAY, NOW + 12 * DAY)
busy_nows = st.integers(NOW - 3 * DAY, NOW + DAY)


@st.composite
def cases(
    draw: st.DrawFn, defs: st.SearchStrategy[dict[str, Any]] | None = None
) -> tuple[dict[str, Any], Raw, int]:
    """A definition, ``now``, and a profile whose times sit on the definition's edges."""
    defn = draw(definitions() if defs is None else defs)
    now = draw(busy_nows)
    edges = edge_times(defn, now)
    times = st.one_of(free_times, st.sampled_from(edges)) if edges else free_times
    # dates on the edges also among the values of attributes and properties (filters)
    return defn, draw(raw_profiles(times, related_values(defn) + edges)), now


def to_profile(raw: Raw) -> DictProfile:
    return DictProfile(
        raw["attrs"],
        {t: [EventRecord(ts, props) for ts, props in recs] for t, recs in raw["events"].items()},
        raw["segments"],
    )


@dataclass(frozen=True)
class PlainProfile:
    """A ProfileView whose events are plain sorted tuples, not ``EventSeries`` (as
    ``insights.data`` hands its customers out): the evaluator scans them, with no index."""

    raw: Raw

    def attribute(self, name: str) -> object | None:
        return self.raw["attrs"].get(name)

    def events(self, event_type: str) -> Sequence[EventRecord]:
        recs = self.raw["events"].get(event_type, ())
        return tuple(sorted((EventRecord(ts, props) for ts, props in recs), key=_ts))

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self.raw["segments"]


def _ts(record: EventRecord) -> int:
    return record.ts


PROFILE_VIEWS: tuple[Callable[[Raw], ProfileView], ...] = (to_profile, PlainProfile)
"""Both kinds of sequence the evaluator takes: a series with indexes, a plain tuple."""


_DATE_OPS = ["before", "after", "within_last", "not_within_last"]


@st.composite
def leaf_cases(draw: st.DrawFn) -> tuple[dict[str, Any], Raw, int]:
    """One attribute test of any operator, on a value built from its constant half the time."""
    where = draw(leaf("attr", ["a"], OPS + 3 * _DATE_OPS))
    defn = {"id": "seg", "name": "Leaf", "rules": [{"where": where}]}
    now = draw(busy_nows)
    edges = edge_times(defn, now)
    times = st.one_of(free_times, st.sampled_from(edges)) if edges else free_times
    related = related_values(defn)
    if where["op"] in _DATE_OPS and draw(st.booleans()):
        value = draw(date_of(st.sampled_from(edges)))  # on the edge, or one ms off
    elif related and draw(st.booleans()):
        value = draw(st.sampled_from(related))
    else:
        value = draw(profile_values(times, []))
    raw = {"attrs": {"a": value}, "events": {}, "segments": frozenset()}
    return defn, raw, now


@st.composite
def aggregate_cases(draw: st.DrawFn) -> tuple[dict[str, Any], Raw, int]:
    """One aggregate over a dense history: many events, values that collide across kinds."""
    where = draw(aggregate())
    defn = {"id": "seg", "name": "Aggregate", "rules": [{"where": where}]}
    now = draw(busy_nows)
    edges = edge_times(defn, now)
    times = st.one_of(free_times, st.sampled_from(edges)) if edges else free_times
    prop = where.get("prop", "p")
    twins = _twins(draw(st.one_of(COLLIDE, small_scalars)))  # 1, 1.0, "1", True
    family = st.sampled_from(twins)
    values = st.one_of(family, family, small_numbers, profile_values(times, related_values(defn)))
    aggregated = st.fixed_dictionaries({prop: values})
    others = st.fixed_dictionaries({}, optional=dict.fromkeys(PROPS, values))
    props = st.builds(lambda a, b: {**b, **a}, aggregated, others)
    history = st.lists(st.tuples(times, st.one_of(props, props, others)), min_size=2, max_size=10)
    # two values of the family for sure, at a drawn place in the history: equal or of two kinds
    records = draw(history)
    for twin in draw(st.lists(family, min_size=2, max_size=2, unique_by=repr)):
        records.insert(draw(st.integers(0, len(records))), (draw(times), {prop: twin}))
    raw = {"attrs": {}, "events": {where["event"]: records}, "segments": frozenset()}
    return defn, raw, now


_NEUTRAL = {  # a filter test that leaves the recency test in charge: no generated prop is "z"
    "all": {"prop": "z", "op": "not_exists"},
    "any": {"prop": "z", "op": "exists"},
}


@st.composite
def recency_filter_cases(draw: st.DrawFn) -> tuple[dict[str, Any], Raw, int]:
    """A count of events whose filter holds a recency test on a date-valued property, and a
    history in which that test flips for some events *after* ``now``: so membership changes
    at a future instant that only the filter's wake-up can announce.

    The property dates are ``now - span + k``: ``k`` in ``1..span`` flips after ``now`` (at
    ``now + k``), ``k <= 0`` has flipped already (``k = 0`` exactly at ``now``). The test sits
    alone, under ``not``, or beside a neutral test in ``all``/``any``; the count is compared
    with ``eq``/``ne`` to its value at ``now``, so its first flip changes membership.
    """
    span = draw(st.sampled_from(DURATIONS))
    ms = ref_dur(span)
    prop = draw(st.sampled_from(PROPS))
    test = {
        "prop": prop,
        "op": draw(st.sampled_from(["within_last", "not_within_last"])),
        "value": span,
    }
    group = draw(st.sampled_from(["", "all", "any", "not"]))
    if group == "not":
        filt: dict[str, Any] = {"not": test}
    elif group:
        filt = {group: draw(st.permutations([_NEUTRAL[group], test]))}
    else:
        filt = test
    now = draw(busy_nows)
    future = st.one_of(st.sampled_from([1, ms]), st.integers(1, ms))
    past = st.one_of(st.just(0), st.integers(-ms, -1))
    ks = draw(st.lists(future, min_size=1, max_size=3)) + draw(st.lists(past, max_size=2))
    records = [(draw(free_times), {prop: draw(date_of(st.just(now - ms + k)))}) for k in ks]
    # other values (a date among them keeps the count monotone: every flip goes one way)
    noise = st.dictionaries(st.sampled_from(PROPS), small_scalars, max_size=2)
    records += draw(st.lists(st.tuples(free_times, noise), max_size=2))
    if draw(st.booleans()):
        # the oldest event holds the first flip: a scan that skips the first event misses it
        first = ks.index(min(k for k in ks if k > 0))
        records[first] = (min(ts for ts, _ in records) - 1, records[first][1])
    records = draw(st.permutations(records))
    raw = {"attrs": {}, "events": {"view": records}, "segments": frozenset()}
    where: dict[str, Any] = {"event": "view", "agg": "count", "filter": filt}
    where |= {"op": draw(st.sampled_from(["eq", "ne"])), "value": 0}
    where["value"] = int(ref_aggregate_value(where, raw, now))  # type: ignore[arg-type]
    if draw(st.booleans()):
        where = {"not": where}
    defn = {"id": "seg", "name": "Recency filter", "rules": [{"where": where}]}
    return defn, raw, now
