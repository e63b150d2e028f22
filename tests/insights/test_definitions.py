from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from insights.definitions import Step, conjunction
from insights.features import NumericFeature, OneHot, duration

_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


@given(st.integers(1, 10**12))
def test_duration_is_the_whole_seconds_in_the_largest_unit(ms: int) -> None:
    text = duration(ms)
    value = int(text[:-1]) * _MS[text[-1]]
    assert value == max(1, round(ms / 1000)) * 1000
    assert text[-1] == "s" or value % 1000 == 0


AGE = NumericFeature("age", attr="age")


def test_a_path_keeps_the_tightest_bounds_per_feature() -> None:
    steps = [
        Step(AGE, 20, True),
        Step(OneHot("country", "DE"), 0.5, False),
        Step(AGE, 40, False),
        Step(AGE, 25, True),
        Step(OneHot("country", "FR"), 0.5, False),
        Step(AGE, 35, False),
    ]
    assert conjunction(steps) == {
        "all": [
            {"attr": "age", "op": "gte", "value": 25},
            {"attr": "age", "op": "lt", "value": 35},
            {"not": {"attr": "country", "op": "in", "value": ["DE", "FR"]}},
        ]
    }


def test_an_upper_bound_alone_keeps_customers_without_the_value() -> None:
    assert conjunction([Step(AGE, 30, False)]) == {"not": {"attr": "age", "op": "gte", "value": 30}}


def test_days_since_becomes_a_window() -> None:
    feature = NumericFeature("days since last purchase", event="purchase", agg="days_since")
    assert feature.below(14) == {
        "event": "purchase", "agg": "count", "within": "2w", "op": "gte", "value": 1
    }  # fmt: skip
