"""Unit tests of every operator, aggregate, rule combination and next_change."""

from __future__ import annotations

from typing import Any

import pytest

from segment_rules import CompiledSegment, DictProfile, compile_segment

NOW = 1_700_000_000_000
DAY = 86_400_000


def segment(where: dict[str, Any], *more: dict[str, Any]) -> CompiledSegment:
    return compile_segment({"id": "t", "name": "t", "rules": [{"where": where}, *more]})


def attr_test(op: str, value: Any, attribute: Any) -> bool:
    cond: dict[str, Any] = {"attr": "x", "op": op}
    if op not in ("exists", "not_exists"):
        cond["value"] = value
    attrs = {} if attribute is _MISSING else {"x": attribute}
    return segment(cond).evaluate(DictProfile(attrs), NOW)


_MISSING = object()
ISO_NOW = "2023-11-14T22:13:20Z"  # == NOW

CASES = [
    # op, value, attribute, expected
    ("eq", "DE", "DE", True),
    ("eq", "DE", "de", False),
    ("eq", 1, 1.0, True),
    ("eq", 1, True, False),
    ("eq", True, 1, False),
    ("eq", True, True, True),
    ("eq", "1", 1, False),
    ("eq", 1, [1], False),
    ("eq", 1, {"a": 1}, False),
    ("ne", "DE", "FR", True),
    ("ne", "DE", "DE", False),
    ("ne", "DE", 3, False),
    ("ne", 1, True, False),
    ("ne", 1, [2], False),
    ("lt", 5, 4, True),
    ("lt", 5, 5, False),
    ("lte", 5, 5, True),
    ("gt", 5, 5.5, True),
    ("gt", 5, "6", False),
    ("gt", 0, True, False),
    ("gte", 5, 5, True),
    ("gte", 5, 4.99, False),
    ("between", [1, 3], 1, True),
    ("between", [1, 3], 3, True),
    ("between", [1, 3], 3.01, False),
    ("between", [1, 3], True, False),
    ("between", [1, 3], "2", False),
    ("in", ["DE", "AT"], "AT", True),
    ("in", ["DE", "AT"], "FR", False),
    ("in", [1, 2], 2.0, True),
    ("in", [1, 2], True, False),
    ("in", [True], 1, False),
    ("in", ["1"], 1, False),
    ("not_in", ["DE", "AT"], "FR", True),
    ("not_in", ["DE", "AT"], "DE", False),
    ("not_in", ["DE"], 5, False),
    ("not_in", [1], [2], False),
    ("contains", "gold", "gold-member", True),
    ("contains", "gold", "silver", False),
    ("contains", 1, "a1", False),
    ("contains", "a", ["a", "b"], True),
    ("contains", 1, [1.0, 2], True),
    ("contains", 1, [True], False),
    ("contains", True, [1], False),
    ("contains", "a", 5, False),
    ("not_contains", "gold", "silver", True),
    ("not_contains", "gold", "gold", False),
    ("not_contains", "a", ["b"], True),
    ("not_contains", "a", ["a"], False),
    ("not_contains", 1, "abc", False),
    ("not_contains", "a", 5, False),
    ("starts_with", "ab", "abc", True),
    ("starts_with", "ab", "cab", False),
    ("starts_with", "1", 12, False),
    ("ends_with", "bc", "abc", True),
    ("ends_with", "bc", ["abc"], False),
    ("exists", None, "", True),
    ("exists", None, 0, True),
    ("exists", None, None, False),
    ("not_exists", None, None, True),
    ("not_exists", None, False, False),
    ("before", "2024-01-01", "2023-12-31T23:59:59Z", True),
    ("before", "2024-01-01", "2024-01-01T00:00:00+00:00", False),
    ("before", "2024-01-01T01:00:00+01:00", "2023-12-31T23:59:00", True),
    ("before", 1000, 999, True),
    ("before", 1000, 1000, False),
    ("before", "2024-01-01", "not a date", False),
    ("before", "2024-01-01", 999.0, False),
    ("before", "2024-01-01", True, False),
    ("after", "2024-01-01", "2024-01-02", True),
    ("after", "2024-01-01", "2023-01-02", False),
    ("after", 0, NOW, True),
    ("within_last", "1d", NOW - DAY + 1, True),
    ("within_last", "1d", NOW - DAY, False),
    ("within_last", "1d", ISO_NOW, True),
    ("within_last", "1d", "yesterday", False),
    ("not_within_last", "1d", NOW - DAY, True),
    ("not_within_last", "1d", NOW - DAY + 1, False),
    ("not_within_last", "1d", [NOW], False),
]


@pytest.mark.parametrize(("op", "value", "attribute", "expected"), CASES)
def test_operator(op: str, value: Any, attribute: Any, expected: bool) -> None:
    assert attr_test(op, value, attribute) is expected


OPS = {case[0] for case in CASES}


@pytest.mark.parametrize("op", sorted(OPS))
def test_missing_and_null_make_every_operator_false_but_not_exists(op: str) -> None:
    value = next(case[1] for case in CASES if case[0] == op)
    expected = op == "not_exists"
    assert attr_test(op, value, _MISSING) is expected
    assert attr_test(op, value, None) is expected


def test_not_negates_a_missing_attribute() -> None:
    where = {"not": {"attr": "x", "op": "eq", "value": 1}}
    assert segment(where).evaluate(DictProfile(), NOW) is True


def buys(*events: tuple[int, dict[str, Any]]) -> DictProfile:
    return DictProfile.build({}, [("buy", ts, props) for ts, props in events])


PROFILE = buys(
    (NOW - 10 * DAY, {"amount": 100, "sku": "a", "cur": "EUR"}),
    (NOW - 2 * DAY, {"amount": 20, "sku": "b", "cur": "USD"}),
    (NOW - DAY // 2, {"amount": 30.5, "sku": "a", "cur": "EUR"}),
    (NOW - DAY // 4, {"amount": "40", "sku": 1, "cur": "EUR"}),
    (NOW - DAY // 8, {"amount": True, "sku": 1.0}),
    (NOW - DAY // 16, {"sku": None}),
)


def aggregate(agg: str, op: str, value: Any, **extra: Any) -> bool:
    cond: dict[str, Any] = {"event": "buy", "agg": agg, "op": op, "value": value, **extra}
    if agg != "count" and "prop" not in extra:
        cond["prop"] = "amount"
    return segment(cond).evaluate(PROFILE, NOW)


@pytest.mark.parametrize(
    ("agg", "op", "value", "extra", "expected"),
    [
        ("count", "eq", 6, {}, True),
        ("count", "eq", 4, {"within": "1d"}, True),
        ("count", "eq", 3, {"filter": {"prop": "cur", "op": "eq", "value": "EUR"}}, True),
        ("count", "eq", 0, {"event": "view"}, True),
        ("sum", "eq", 150.5, {}, True),  # "40" and True are not numbers
        ("sum", "eq", 30.5, {"within": "1d"}, True),
        ("sum", "eq", 0, {"event": "view"}, True),
        ("avg", "between", [50.16, 50.17], {}, True),  # (100 + 20 + 30.5) / 3
        ("avg", "between", [0, 1000], {"event": "view"}, False),
        ("min", "eq", 20, {}, True),
        ("min", "lt", 10**9, {"event": "view"}, False),
        ("max", "eq", 100, {}, True),
        ("max", "gt", -1, {"prop": "nothing"}, False),
        ("distinct_count", "eq", 3, {"prop": "sku"}, True),  # a, b, 1 (== 1.0); not None
        ("distinct_count", "eq", 0, {"prop": "nothing"}, True),
        ("count", "ne", 6, {}, False),
        ("count", "lte", 6, {}, True),
        ("count", "gte", 7, {}, False),
        ("count", "between", [6, 6], {}, True),
    ],
)
def test_aggregate(agg: str, op: str, value: Any, extra: dict[str, Any], expected: bool) -> None:
    assert aggregate(agg, op, value, **extra) is expected


def test_distinct_count_keeps_bool_apart_from_numbers() -> None:
    profile = buys((1, {"v": 1}), (2, {"v": True}), (3, {"v": 1.0}), (4, {"v": "1"}))
    cond = {"event": "buy", "agg": "distinct_count", "prop": "v", "op": "eq", "value": 3}
    assert segment(cond).evaluate(profile, NOW)


def test_window_excludes_the_event_exactly_at_its_edge() -> None:
    profile = buys((NOW - DAY, {}))
    compiled = segment({"event": "buy", "agg": "count", "within": "1d", "op": "eq", "value": 1})
    assert compiled.evaluate(profile, NOW - 1)
    assert not compiled.evaluate(profile, NOW)
    assert compiled.next_change(profile, NOW - 1) == NOW


@pytest.mark.parametrize(
    ("op", "expected"),
    [("union", [True, True, True, False]), ("intersect", [True, False, False, False]),
     ("except", [False, True, False, False])],
)  # fmt: skip
def test_rule_combination(op: str, expected: list[bool]) -> None:
    compiled = segment(
        {"attr": "a", "op": "eq", "value": True},
        {"op": op, "where": {"attr": "b", "op": "eq", "value": True}},
    )
    grid = [(True, True), (True, False), (False, True), (False, False)]
    got = [compiled.evaluate(DictProfile({"a": a, "b": b}), NOW) for a, b in grid]
    assert got == expected


def test_rules_combine_left_to_right() -> None:
    compiled = segment(
        {"attr": "a", "op": "exists"},
        {"op": "union", "where": {"attr": "b", "op": "exists"}},
        {"op": "except", "where": {"attr": "c", "op": "exists"}},
    )
    assert compiled.evaluate(DictProfile({"b": 1}), NOW)
    assert not compiled.evaluate(DictProfile({"b": 1, "c": 1}), NOW)


def test_in_segment_reads_current_memberships() -> None:
    compiled = segment({"in_segment": "vip"})
    assert compiled.evaluate(DictProfile(memberships=frozenset({"vip"})), NOW)
    assert not compiled.evaluate(DictProfile(), NOW)


def test_dependencies_and_flags() -> None:
    compiled = compile_segment(
        {
            "id": "s",
            "name": "s",
            "type": "static",
            "rules": [
                {"where": {"all": [{"attr": "country", "op": "eq", "value": "DE"},
                                   {"in_segment": "vip"}]}},
                {"op": "union", "where": {"event": "buy", "agg": "count", "op": "gt", "value": 0,
                                          "filter": {"prop": "sku", "op": "exists"}}},
            ],
        }
    )  # fmt: skip
    assert compiled.segment_id == "s"
    assert compiled.is_static
    assert compiled.attributes == {"country"}
    assert compiled.event_types == {"buy"}
    assert compiled.segments == {"vip"}
    assert not compiled.time_dependent
    assert compiled.next_change(DictProfile(), NOW) is None


def test_next_change_of_recency_and_windows() -> None:
    compiled = segment(
        {
            "any": [
                {"attr": "last_seen", "op": "within_last", "value": "1h"},
                {"event": "buy", "agg": "count", "within": "1d", "op": "gt", "value": 0},
            ]
        }
    )
    profile = DictProfile.build({"last_seen": NOW - 1000}, [("buy", NOW - 5000, {})])
    assert compiled.time_dependent
    assert compiled.next_change(profile, NOW) == NOW - 1000 + 3_600_000
    later = NOW + 3_600_000
    assert compiled.next_change(profile, later) == NOW - 5000 + DAY
    assert compiled.next_change(profile, NOW + DAY) is None


def test_next_change_of_a_time_dependent_filter() -> None:
    cond = {
        "event": "buy",
        "agg": "count",
        "filter": {"prop": "shipped", "op": "not_within_last", "value": "2d"},
        "op": "gt",
        "value": 0,
    }
    compiled = segment(cond)
    profile = buys((NOW, {"shipped": NOW - DAY}))
    assert not compiled.evaluate(profile, NOW)
    edge = compiled.next_change(profile, NOW)
    assert edge == NOW + DAY
    assert compiled.evaluate(profile, edge)


def test_compile_accepts_a_parsed_definition_and_repr() -> None:
    compiled = segment({"attr": "a", "op": "exists"})
    assert compile_segment(compiled.definition).definition == compiled.definition
    assert repr(compiled) == "CompiledSegment('t')"


def test_within_last_on_an_integer_near_2_to_64_never_schedules_past_the_latest_change() -> None:
    """Regression: a date attribute of 2**64 - 1 ms plus the window overflowed the wake time
    that the partition stores (msgpack), and the commit failed on every retry."""
    from segment_rules._predicates import LATEST_CHANGE_MS, value_next_change

    next_change = value_next_change("within_last", "7d")
    assert next_change is not None
    for huge in (2**64 - 1, 2**63, LATEST_CHANGE_MS):
        assert next_change(huge, NOW) is None
    assert next_change(NOW, NOW) == NOW + 7 * DAY


HUGE = 10**400  # JSON may carry it; beyond the float range


@pytest.mark.parametrize("agg", ["sum", "avg"])
def test_an_integer_beyond_float_range_beside_a_float_is_summed_exactly(agg: str) -> None:
    """Found by the property tests: ``sum`` raised OverflowError, so the segment failed."""
    assert aggregate_on(buys((1, {"amount": HUGE}), (2, {"amount": 0.5})), agg, "gt", 0)
    assert not aggregate_on(buys((1, {"amount": -HUGE}), (2, {"amount": 0.5})), agg, "gt", 0)


def test_a_sum_beyond_float_range_can_come_back_into_it() -> None:
    profile = buys((1, {"amount": HUGE}), (2, {"amount": 0.5}), (3, {"amount": -HUGE}))
    assert aggregate_on(profile, "sum", "eq", 0.5)


@pytest.mark.parametrize("agg", ["sum", "avg"])
def test_an_integer_beyond_float_range_beside_an_infinity_or_nan(agg: str) -> None:
    """Found by ``test_history.test_infinite_and_nan_values_give_the_scan_results``: the
    exact fallback built ``Fraction(inf)`` and raised, so the segment failed. Float
    arithmetic decides, as it does without the huge integer."""
    inf, nan = float("inf"), float("nan")
    assert aggregate_on(buys((1, {"amount": HUGE}), (2, {"amount": inf})), agg, "gt", 0)
    assert not aggregate_on(buys((1, {"amount": HUGE}), (2, {"amount": -inf})), agg, "gt", 0)
    assert aggregate_on(buys((1, {"amount": -HUGE}), (2, {"amount": -inf})), agg, "lt", 0)
    for other in (nan, -inf):  # NaN, and inf + -inf, compare false, even with ne
        profile = buys((1, {"amount": HUGE}), (2, {"amount": inf}), (3, {"amount": other}))
        assert not aggregate_on(profile, agg, "gt", 0)
        assert not aggregate_on(profile, agg, "lte", 0)


def aggregate_on(profile: DictProfile, agg: str, op: str, value: float) -> bool:
    cond = {"event": "buy", "agg": agg, "prop": "amount", "op": op, "value": value}
    return segment(cond).evaluate(profile, NOW)
