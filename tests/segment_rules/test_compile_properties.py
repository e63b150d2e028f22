"""Property tests: the compiled evaluator and its timers against the reference interpreter.

The reference (``reference.py``) works on the raw JSON, knows nothing of the compiler, and
computes on its own every instant at which membership changes with no new input. The
generators (``strategies.py``) put values of every kind in every position, shuffle event
histories and build times exactly on window edges. ``docs/testing.md`` says what each
property is for and what mutation testing measured.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import given
from hypothesis import strategies as st

from segment_rules import ProfileView, compile_segment, definition_to_json, parse_definition
from segment_rules._predicates import LATEST_CHANGE_MS

from .reference import (
    DAY,
    Raw,
    instants,
    ref_aggregate_value,
    ref_next_change,
    ref_segment,
    ref_timeline,
    walk,
)
from .strategies import (
    AGGS,
    NOW,
    OPS,
    PROFILE_VIEWS,
    _iso,
    aggregate_cases,
    budget,
    cases,
    definitions,
    leaf_cases,
    nows,
    raw_profiles,
    recency_filter_cases,
    timed_definitions,
    to_profile,
)

Case = tuple[dict[str, Any], Raw, int]
# a next_change far beyond any generated date may be clamped to a storable wake time
_CLAMPED = 2**62


@budget(150)
@given(cases(), st.sampled_from(PROFILE_VIEWS))
def test_compiled_matches_reference(case: Case, view: Callable[[Raw], ProfileView]) -> None:
    defn, raw, now = case
    compiled = compile_segment(parse_definition(defn))
    assert compiled.evaluate(view(raw), now) == ref_segment(defn, raw, now)


@budget(100)
@given(leaf_cases())
def test_one_operator_matches_reference(case: Case) -> None:
    """Each operator on values built from its constant (equal, of another kind, inside), and
    dates on the edge of a time test; evaluated at ``now`` and one ms either side."""
    defn, raw, now = case
    compiled = compile_segment(parse_definition(defn))
    for t in (now - 1, now, now + 1):
        assert compiled.evaluate(to_profile(raw), t) == ref_segment(defn, raw, t)


@budget(100)
@given(aggregate_cases())
def test_every_aggregate_has_the_reference_value(case: Case) -> None:
    """Every aggregate of one dense history, whose values are equal across kinds (``1``,
    ``1.0``, ``True``, ``"1"``), compared to probes at and around its exact value."""
    defn, raw, now = case
    where = defn["rules"][0]["where"]
    every_aggregate_agrees(defn, where, raw, now)
    # and, for sure, every value that collides across kinds, inside the window, unfiltered
    bare = {k: v for k, v in where.items() if k != "filter"}
    twins = [(now, {bare.get("prop", "p"): v}) for v in (1, True, 1.0, 0, False, -0.0, "1")]
    history = [*raw["events"][where["event"]], *twins]
    every_aggregate_agrees(defn, bare, {**raw, "events": {where["event"]: history}}, now)


def every_aggregate_agrees(defn: dict[str, Any], where: dict[str, Any], raw: Raw, now: int) -> None:
    """Every aggregate of ``where``'s events, compared with ``eq``, ``lt``, ``gt`` and
    ``between`` to probes at and around the reference's exact value."""
    profile = to_profile(raw)
    for agg in AGGS:
        node = {**where, "agg": agg, "prop": where.get("prop", "p")}
        if agg == "count":
            del node["prop"]
        exact = ref_aggregate_value(node, raw, now)
        probes: list[float] = [0, 0.5]
        if exact is not None and abs(exact) < 2**60 and Fraction(float(exact)) == exact:
            probes += [float(exact) + d for d in (-1, -0.5, 0, 0.5, 1)]
        for op in ("eq", "lt", "gt", "between"):
            for probe in probes:
                value = [probe, probe + 1] if op == "between" else probe
                probe_defn = {**defn, "rules": [{"where": {**node, "op": op, "value": value}}]}
                expected = ref_segment(probe_defn, raw, now)
                got = compile_segment(probe_defn).evaluate(profile, now)
                assert got == expected, (agg, op, value, exact)


@budget(100)
@given(cases(timed_definitions()), st.data())
def test_compiled_matches_reference_on_the_edges(case: Case, data: st.DataObject) -> None:
    """At, just before and just after an instant where a time test flips (no rejection)."""
    defn, raw, now = case
    edges = sorted(instants(defn, raw))
    if edges:
        now = data.draw(st.sampled_from(edges), label="edge")
        now += data.draw(st.sampled_from([-1, 0, 1]), label="offset")
    compiled = compile_segment(parse_definition(defn))
    assert compiled.evaluate(to_profile(raw), now) == ref_segment(defn, raw, now)


def follow_timers(
    defn: dict[str, Any], raw: Raw, now: int, view: Callable[[Raw], ProfileView] = to_profile
) -> None:
    """Wake only when ``next_change`` says, as the engine does, and check every wake-up.

    Each timer is a real edge of the profile, never later than the reference's next change,
    nothing changes before it, the evaluator agrees with the reference when it fires, and
    following the timers sees every change of the reference's timeline at its exact instant.
    ``view`` builds the profile: an ``EventSeries`` per type, or plain tuples (scanned).
    """
    compiled = compile_segment(parse_definition(defn))
    profile = view(raw)
    edges = instants(defn, raw)
    # past year 9999 a change is "never" (segment_rules._predicates.LATEST_CHANGE_MS): no wake
    # time can overflow the 64-bit integers that timers are stored as
    changes = [c for c in ref_timeline(defn, raw, now) if c[0] <= LATEST_CHANGE_MS]
    member = compiled.evaluate(profile, now)
    assert member == ref_segment(defn, raw, now)
    seen: list[tuple[int, bool]] = []
    t = now
    for _ in range(len(edges) + 1):
        wake = compiled.next_change(profile, t)
        due = next((c for c in changes if c[0] > t), None)
        if wake is None:
            assert due is None, f"no timer after {t}, but membership changes at {due}"
            break
        assert wake > t
        assert compiled.time_dependent
        if wake >= _CLAMPED:
            break
        assert wake in edges, f"timer at {wake}, where nothing can change"
        assert due is None or wake <= due[0], f"timer at {wake} is later than the change {due}"
        assert compiled.evaluate(profile, wake - 1) == member
        at = compiled.evaluate(profile, wake)
        assert at == ref_segment(defn, raw, wake)
        if at != member:
            seen.append((wake, at))
        t, member = wake, at
    else:
        raise AssertionError("next_change did not move forward")
    assert seen == [c for c in changes if c[0] <= t]


@budget(100)
@given(cases(timed_definitions()), st.sampled_from(PROFILE_VIEWS))
def test_timers_see_every_change_of_a_timed_definition(
    case: Case, view: Callable[[Raw], ProfileView]
) -> None:
    follow_timers(*case, view)


@budget(60)
@given(recency_filter_cases())
def test_timers_follow_a_recency_filter(case: Case) -> None:
    """A recency test inside an event filter flips after ``now``: the reference's own
    ``next_change`` says when, and the engine's timers must get there, not later, on a
    series and on a plain sequence alike (half the cases put the first flip on the oldest
    event, the one a scan reaches first)."""
    defn, raw, now = case
    due = ref_next_change(defn, raw, now)
    assert due is not None, "the generator must build a change after now"
    compiled = compile_segment(parse_definition(defn))
    for view in PROFILE_VIEWS:
        wake = compiled.next_change(view(raw), now)
        assert wake is not None and wake <= due, (
            f"{view.__name__}: timer at {wake}, membership changes at {due}"
        )
        follow_timers(defn, raw, now, view)
    # every aggregate of the filtered events, before and at the flip
    where = defn["rules"][0]["where"]
    where = where.get("not", where)
    recency = [
        n for n in walk(where["filter"]) if n.get("op") in ("within_last", "not_within_last")
    ]
    for t in (now, due):
        every_aggregate_agrees(defn, {**where, "prop": recency[0]["prop"]}, raw, t)


@budget(50)
@given(cases(), st.sampled_from(PROFILE_VIEWS))
def test_timers_see_every_change(case: Case, view: Callable[[Raw], ProfileView]) -> None:
    follow_timers(*case, view)


@budget(60)
@given(definitions(), raw_profiles(), nows)
def test_next_change_none_without_time_conditions(defn: dict[str, Any], raw: Raw, now: int) -> None:
    compiled = compile_segment(parse_definition(defn))
    text = json.dumps(defn)
    uses_time = '"within' in text or "within_last" in text
    assert compiled.time_dependent == uses_time
    if not uses_time:
        assert compiled.next_change(to_profile(raw), now) is None


@budget(100)
@given(definitions())
def test_round_trip(defn: dict[str, Any]) -> None:
    parsed = parse_definition(defn)
    encoded = definition_to_json(parsed)
    assert parse_definition(encoded) == parsed
    assert parse_definition(json.loads(json.dumps(encoded))) == parsed


SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "segment_rules" / "segment.schema.json").read_text())
)


@budget(50)
@given(definitions())
def test_schema_accepts_every_valid_definition(defn: dict[str, Any]) -> None:
    SCHEMA.validate(defn)


@budget(40)
@given(cases())
def test_reference_agrees_after_round_trip(case: Case) -> None:
    defn, raw, now = case
    encoded = definition_to_json(parse_definition(defn))
    assert compile_segment(encoded).evaluate(to_profile(raw), now) == ref_segment(encoded, raw, now)


def _table_values() -> list[Any]:
    edge = NOW - DAY  # the edge of "1d" at NOW, and the constant of before/after
    dates = [
        d for t in (edge - 1, edge, edge + 1) for d in (t, _iso(t, "z", 0), _iso(t, "plus2", 0))
    ]
    scalars = [None, 0, 1, 1.0, -0.0, 0.5, 2, 2.5, True, False, "", "a", "ab", "b", "1", "true"]
    return [*scalars, *dates, [1], ["a", "ab"], [True, 1.0], [None], {"k": 1}, "not a date"]


_TABLE_CONSTANTS: dict[str, list[Any]] = {
    "eq": ["a", "1", 1, 1.0, 0, -0.0, 0.5, True, False, ""],
    "lt": [1, 1.0, 0, -0.0, 0.5, 2.5, -1],
    "between": [[0, 1], [0.5, 2.5], [1, 1], [-1, 0]],
    "in": [["a", "ab"], [1, 2.5], [True], [0], [False]],
    "contains": ["a", "ab", "b", "", "1", 1, 1.0, True],
    "starts_with": ["a", "ab", "", "b"],
    "before": [NOW - DAY, _iso(NOW - DAY, "z", 0), _iso(NOW - DAY, "plus2", 0)],
    "within_last": ["1d", "1s"],
}
_SAME = {"ne": "eq", "lte": "lt", "gt": "lt", "gte": "lt", "not_in": "in", "not_contains":
         "contains", "ends_with": "starts_with", "after": "before", "not_within_last":
         "within_last"}  # fmt: skip


def test_every_operator_on_a_table_of_values() -> None:
    """Each operator, on constants of each kind it takes, against values of every kind (dates
    on and next to the edge), at ``now`` and one ms either side: no luck of the draw."""
    values = _table_values()
    for op in OPS:
        constants = (
            [None] if op in ("exists", "not_exists") else _TABLE_CONSTANTS[_SAME.get(op, op)]
        )
        for constant in constants:
            leaf = {"attr": "a", "op": op}
            if constant is not None:
                leaf["value"] = constant
            defn = {"id": "seg", "name": "Table", "rules": [{"where": leaf}]}
            compiled = compile_segment(parse_definition(defn))
            for value in values:
                raw = {"attrs": {"a": value}, "events": {}, "segments": frozenset()}
                for now in (NOW - 1, NOW, NOW + 1):
                    got = compiled.evaluate(to_profile(raw), now)
                    assert got == ref_segment(defn, raw, now), (leaf, value, now)
