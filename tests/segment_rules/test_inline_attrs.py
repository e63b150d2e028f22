"""The inlined attribute tests of `compile` (string `eq`/`in`, number comparisons) give what
the general predicates of `_predicates` give, on values of every kind."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from segment_rules import DictProfile
from segment_rules._predicates import value_predicate
from segment_rules.compile import _inline_attr

from .strategies import HUGE, NOW, budget

_SCALARS = (
    st.sampled_from(["DE", "de", "1", "", "gold", 1, 1.0, True, False, 0, -0.0, HUGE, None])
    | st.integers()
    | st.floats()
    | st.text(max_size=3)
)
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=2) | st.dictionaries(st.text(max_size=2), _SCALARS)
_NUMBERS = (
    st.sampled_from([1, 1.5, 0, -0.0, 30, 10**20])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_CONDITIONS = (
    st.tuples(st.just("eq"), st.sampled_from(["DE", "de", "1", ""]) | st.text(max_size=3))
    | st.tuples(
        st.just("in"),
        st.lists(st.sampled_from(["DE", "FR", "1", ""]) | st.text(max_size=3), min_size=1).map(
            tuple
        ),
    )
    | st.tuples(st.sampled_from(["lt", "lte", "gt", "gte"]), _NUMBERS)
    | st.tuples(st.just("between"), st.tuples(_NUMBERS, _NUMBERS).map(lambda t: tuple(sorted(t))))
)


@budget(300)
@given(_CONDITIONS, _VALUES)
def test_inlined_attribute_tests_agree_with_the_predicates(
    condition: tuple[str, Any], value: object
) -> None:
    op, constant = condition
    inlined = _inline_attr("a", op, constant)
    assert inlined is not None, condition
    expected = value_predicate(op, constant)(value, NOW)
    profile = DictProfile({"a": value} if value is not None else {})
    assert inlined(profile, NOW) == expected, (condition, value)


def test_other_operators_are_not_inlined() -> None:
    assert _inline_attr("a", "eq", 1) is None
    assert _inline_attr("a", "in", (1, 2)) is None
    assert _inline_attr("a", "within_last", "7d") is None
