"""Parsing: accepted shapes, and every error code with its path and message."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_rules import DefinitionError, Limits, parse_definition
from segment_rules.model import AllOf, AttrCondition, EventCondition, InSegment, Not, PropCondition


def defn(where: Any, **top: Any) -> dict[str, Any]:
    return {"id": "vip-de", "name": "VIP", "rules": [{"where": where}], **top}


LEAF = {"attr": "country", "op": "eq", "value": "DE"}
# the whole message and suggestion of each case of test_error, as users see them
MESSAGES = json.loads((Path(__file__).parent / "parse_messages.json").read_text())


def error(obj: Any, limits: Limits | None = None) -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        parse_definition(obj) if limits is None else parse_definition(obj, limits)
    return info.value


def test_parses_the_full_tree() -> None:
    parsed = parse_definition(
        {
            "id": "vip-de",
            "name": "VIP Germany",
            "description": "big spenders",
            "tags": ["vip"],
            "type": "static",
            "rules": [
                {"where": {"all": [LEAF, {"not": {"in_segment": "churned"}}]}},
                {
                    "op": "union",
                    "where": {
                        "event": "buy",
                        "agg": "sum",
                        "prop": "amount",
                        "filter": {"prop": "cur", "op": "in", "value": ["EUR"]},
                        "within": "30d",
                        "op": "between",
                        "value": [1, 2],
                    },
                },
            ],
        }
    )
    assert parsed.is_static and parsed.tags == ("vip",) and parsed.description == "big spenders"
    first, second = parsed.rules
    assert first.op is None and second.op == "union"
    assert first.where == AllOf((AttrCondition("country", "eq", "DE"), Not(InSegment("churned"))))
    assert second.where == EventCondition(
        "buy", "sum", "between", (1, 2), "amount", PropCondition("cur", "in", ("EUR",)), "30d"
    )


def test_defaults() -> None:
    parsed = parse_definition(defn(LEAF))
    assert parsed.type == "dynamic" and not parsed.is_static
    assert parsed.tags == () and parsed.description is None


@pytest.mark.parametrize(
    ("obj", "code", "path", "fragment"),
    [
        ([], "invalid_definition", "", "must be a JSON object"),
        (defn({"all": [LEAF], "attr": "x"}), "invalid_definition", "rules[0].where", "mixes"),
        ({"name": "x", "rules": []}, "missing_field", "id", "missing field 'id'"),
        ({"id": "x", "rules": []}, "missing_field", "name", "missing field 'name'"),
        ({"id": "x", "name": "x"}, "missing_field", "rules", "'rules'"),
        (defn({"attr": "a", "value": 1}), "missing_field", "rules[0].where.op", "'op'"),
        (defn({"attr": "a", "op": "eq"}), "missing_field", "rules[0].where.value", "'value'"),
        (defn({"op": "eq", "value": 1}), "missing_field", "rules[0].where", "has none of"),
        (defn({"event": "buy", "agg": "sum", "op": "gt", "value": 1}), "missing_field",
         "rules[0].where.prop", "'prop'"),
        (defn({"event": "buy", "op": "gt", "value": 1}), "missing_field", "rules[0].where.agg",
         "'agg'"),
        ({**defn(LEAF), "rules": [{"where": LEAF}, {"where": LEAF}]}, "missing_field",
         "rules[1].op", "'op'"),
        ({**defn(LEAF), "nmae": "x"}, "unknown_field", "nmae", "did you mean 'name'?"),
        (defn({"atr": "a", "op": "eq", "value": 1}), "unknown_field", "rules[0].where.atr",
         "did you mean 'attr'?"),
        (defn({**LEAF, "vaule": 1}), "unknown_field", "rules[0].where.vaule",
         "did you mean 'value'?"),
        (defn({"attr": "a", "op": "exists", "value": 1}), "unknown_field",
         "rules[0].where.value", "takes no value"),
        (defn({"event": "buy", "agg": "count", "prop": "x", "op": "gt", "value": 1}),
         "unknown_field", "rules[0].where.prop", "remove 'prop'"),
        (defn({"event": "e", "agg": "count", "op": "gt", "value": 1,
               "filter": {"attr": "a", "op": "exists"}}),
         "unknown_field", "rules[0].where.filter.attr", "did you mean 'prop'?"),
        (defn({"prop": "a", "op": "exists"}), "unknown_field", "rules[0].where.prop",
         "did you mean 'attr'?"),
        (defn({"all": LEAF}), "wrong_type", "rules[0].where.all", "expected a list"),
        (defn("country = DE"), "wrong_type", "rules[0].where", "expected a condition object"),
        (defn({"attr": 5, "op": "eq", "value": 1}), "wrong_type", "rules[0].where.attr",
         "attribute name"),
        (defn({"attr": "a", "op": "gt", "value": "5"}), "wrong_type", "rules[0].where.value",
         "got string '5'"),
        (defn({"attr": "a", "op": "gt", "value": True}), "wrong_type", "rules[0].where.value",
         "got boolean True"),
        (defn({"attr": "a", "op": "eq", "value": None}), "wrong_type", "rules[0].where.value",
         "not_exists"),
        (defn({"attr": "a", "op": "eq", "value": [1]}), "wrong_type", "rules[0].where.value",
         "string, number or boolean"),
        (defn({"attr": "a", "op": "starts_with", "value": 1}), "wrong_type",
         "rules[0].where.value", "needs a string"),
        (defn({"attr": "a", "op": "between", "value": [1, "2"]}), "wrong_type",
         "rules[0].where.value[1]", "expected a number"),
        (defn({"attr": "a", "op": "between", "value": 1}), "wrong_type", "rules[0].where.value",
         "[lo, hi]"),
        (defn({"attr": "a", "op": "before", "value": 1.5}), "wrong_type", "rules[0].where.value",
         "date"),
        (defn({"attr": "a", "op": "within_last", "value": 7}), "wrong_type",
         "rules[0].where.value", "duration"),
        (defn(LEAF, tags=["a", 1]), "wrong_type", "tags[1]", "expected a string"),
        (defn(LEAF, tags="vip"), "wrong_type", "tags", "expected a list of strings"),
        (defn({"attr": "a", "op": "qqqqqq", "value": 1}), "unknown_op", "rules[0].where.op",
         "expected one of"),
        (defn(LEAF, type="qqqqqq"), "invalid_value", "type", "expected one of"),
        (defn(LEAF, id=5), "wrong_type", "id", "segment id"),
        ({**defn(LEAF), "rules": ["x"]}, "wrong_type", "rules[0]", "rule"),
        (defn({"attr": "a", "op": 5, "value": 1}), "wrong_type", "rules[0].where.op",
         "operator"),
        (defn(LEAF, description=3), "wrong_type", "description", "expected a string"),
        ({**defn(LEAF), "rules": {"where": LEAF}}, "wrong_type", "rules", "list of rules"),
        (defn({"event": "buy", "agg": "count", "op": "gt", "value": "1"}), "wrong_type",
         "rules[0].where.value", "number"),
        (defn({"attr": "a", "op": "equals", "value": 1}), "unknown_op", "rules[0].where.op",
         "unknown operator 'equals' at rules[0].where.op; did you mean 'eq'?"),
        (defn({"attr": "a", "op": "startswith", "value": "x"}), "unknown_op",
         "rules[0].where.op", "did you mean 'starts_with'?"),
        (defn({"event": "e", "agg": "total", "prop": "p", "op": "gt", "value": 1}), "unknown_op",
         "rules[0].where.agg", "did you mean 'sum'?"),
        (defn({"event": "e", "agg": "count", "op": "contains", "value": 1}), "unknown_op",
         "rules[0].where.op", "cannot compare an aggregate"),
        ({**defn(LEAF), "rules": [{"where": LEAF}, {"op": "minus", "where": LEAF}]},
         "unknown_op", "rules[1].op", "did you mean 'except'?"),
        (defn(LEAF, id="VIP DE"), "invalid_value", "id", "invalid segment id 'VIP DE'"),
        (defn(LEAF, name="  "), "invalid_value", "name", "must not be empty"),
        (defn(LEAF, name="x" * 201), "invalid_value", "name", "keep it to 200"),
        (defn(LEAF, type="dynamc"), "invalid_value", "type", "did you mean 'dynamic'?"),
        ({**defn(LEAF), "rules": []}, "invalid_value", "rules", "empty rules"),
        ({**defn(LEAF), "rules": [{"op": "union", "where": LEAF}]}, "invalid_value",
         "rules[0].op", "first rule cannot have an 'op'"),
        (defn({"any": []}), "invalid_value", "rules[0].where.any", "empty 'any' list"),
        (defn({"attr": "a", "op": "between", "value": [3, 1]}), "invalid_value",
         "rules[0].where.value", "reversed: 3 > 1"),
        (defn({"attr": "a", "op": "in", "value": []}), "invalid_value", "rules[0].where.value",
         "empty list"),
        (defn({"attr": "a", "op": "in", "value": [1, "1"]}), "invalid_value",
         "rules[0].where.value", "mixed value types at rules[0].where.value: [1, '1']"),
        (defn({"attr": "a", "op": "in", "value": [1, True]}), "invalid_value",
         "rules[0].where.value", "mixed value types at rules[0].where.value: [1, True]"),
        (defn({"attr": "a", "op": "after", "value": "2024-13-01"}), "invalid_value",
         "rules[0].where.value", "invalid date '2024-13-01'"),
        (defn({"attr": "a", "op": "gt", "value": float("nan")}), "invalid_value",
         "rules[0].where.value", "finite"),
        (defn({"in_segment": "Bad Id"}), "invalid_value", "rules[0].where.in_segment",
         "invalid segment id"),
        (defn({"attr": "a", "op": "within_last", "value": "7 days"}), "bad_duration",
         "rules[0].where.value", "invalid duration '7 days'"),
        (defn({"attr": "a", "op": "within_last", "value": " 7 D"}), "bad_duration",
         "rules[0].where.value", "did you mean '7d'?"),
        (defn({"attr": "a", "op": "in", "value": "x"}), "wrong_type", "rules[0].where.value",
         "expected a list of strings"),
        (defn({"event": "e", "agg": "count", "op": "gt"}), "missing_field",
         "rules[0].where.value", "numeric"),
        (defn({"event": "e", "agg": "count", "within": "0d", "op": "gt", "value": 1}),
         "bad_duration", "rules[0].where.within", "positive whole number"),
        (defn({"event": "e", "agg": "count", "within": 7, "op": "gt", "value": 1}),
         "wrong_type", "rules[0].where.within", "duration"),
        (defn({"not": {"in_segment": "vip-de"}}), "cycle", "rules[0].where.not.in_segment",
         "vip-de -> vip-de"),
        (defn({"event": "e", "agg": "count", "within": "53w", "op": "gt", "value": 1}),
         "limit_exceeded", "rules[0].where.within", "retention"),
        (defn({"attr": "a", "op": "within_last", "value": "366d"}), "limit_exceeded",
         "rules[0].where.value", "retention"),
        ({**defn(LEAF), "rules": [{"where": LEAF}] + [{"op": "union", "where": LEAF}] * 20},
         "limit_exceeded", "rules", "at most 20"),
    ],
)  # fmt: skip
def test_error(obj: Any, code: str, path: str, fragment: str) -> None:
    """The code, the path, and the whole message and suggestion users see (``MESSAGES``,
    keyed by the case: update it there when a message changes on purpose)."""
    err = error(obj)
    assert (err.code, err.path) == (code, path)
    assert fragment in str(err)
    assert [str(err), err.suggestion] == MESSAGES[f"{code} {path} | {fragment}"]


def test_unknown_op_message_matches_the_house_example() -> None:
    where = {"all": [LEAF, LEAF, {"attr": "a", "op": "equals", "value": 1}]}
    err = error(defn(where))
    assert str(err) == "unknown operator 'equals' at rules[0].where.all[2].op; did you mean 'eq'?"
    assert err.suggestion == "eq"


def test_too_many_conditions_counts_filter_leaves() -> None:
    event = {"event": "e", "agg": "count", "op": "gt", "value": 0,
             "filter": {"all": [{"prop": "p", "op": "exists"}] * 3}}  # fmt: skip
    where = {"all": [LEAF, event]}  # 1 + 1 + 3 = 5 leaves
    parse_definition(defn(where), Limits(max_conditions=5))
    err = error(defn(where), Limits(max_conditions=4))
    assert (err.code, err.path) == ("limit_exceeded", "rules[0].where.all[1].filter.all[2]")
    assert str(err) == (
        "too many conditions: the one at rules[0].where.all[1].filter.all[2] is number 5, at "
        "most 4 are allowed (filters included); split the segment or use 'in' lists"
    )


def test_a_window_as_long_as_the_retention_is_allowed() -> None:
    for span in ("365d", "52w"):  # the retention exactly, and just under it
        parse_definition(defn({"attr": "a", "op": "within_last", "value": span}))
        parse_definition(
            defn({"event": "e", "agg": "count", "within": span, "op": "gt", "value": 1})
        )


def test_too_deep_nesting() -> None:
    where: Any = LEAF
    for _ in range(3):
        where = {"not": where}
    parse_definition(defn(where), Limits(max_depth=3))
    err = error(defn({"any": [where]}), Limits(max_depth=3))
    assert err.code == "limit_exceeded"
    assert err.path == "rules[0].where.any[0].not.not"  # the fourth level
    err = error(defn({"all": [{"any": [{"not": {"any": [LEAF]}}]}]}), Limits(max_depth=3))
    assert err.path == "rules[0].where.all[0].any[0].not"  # the fourth level, an any group
    assert str(err) == (
        "conditions nested too deep at rules[0].where.all[0].any[0].not: level 4, at most 3"
        " levels of all/any/not are allowed; flatten the condition"
    )


def test_filter_nesting_counts_toward_depth() -> None:
    event = {"event": "e", "agg": "count", "op": "gt", "value": 0,
             "filter": {"not": {"prop": "p", "op": "exists"}}}  # fmt: skip
    err = error(defn({"not": event}), Limits(max_depth=1))
    assert (err.code, err.path) == ("limit_exceeded", "rules[0].where.not.filter")


def test_window_limit_is_configurable() -> None:
    where = {"attr": "a", "op": "within_last", "value": "2d"}
    err = error(defn(where), Limits(max_window_ms=86_400_000))
    assert err.code == "limit_exceeded"


@pytest.mark.parametrize(
    ("op", "value"),
    [("before", "2024-05-01"), ("after", "2024-05-01T12:00:00Z"), ("before", 1_700_000_000_000),
     ("within_last", "90s"), ("not_within_last", "2w"), ("in", [True, False]),
     ("contains", 3), ("ne", False), ("between", [1.5, 1.5])],
)  # fmt: skip
def test_accepted_values(op: str, value: Any) -> None:
    parse_definition(defn({"attr": "a", "op": op, "value": value}))


def test_parsing_does_not_mutate_its_input() -> None:
    obj = defn({"attr": "a", "op": "in", "value": [1, 2]})
    before = copy.deepcopy(obj)
    parse_definition(obj)
    assert obj == before


@given(
    number=st.integers(min_value=1, max_value=10**6),
    unit=st.sampled_from("smhdw"),
    tail=st.sampled_from(["\n", "\r\n", " ", "\t", "\n\n"]),
)
def test_duration_or_id_with_a_trailing_newline_is_refused(
    number: int, unit: str, tail: str
) -> None:
    """`$` matched before a final newline: "7d\\n" parsed as a duration, then crashed."""
    where = {
        "event": "buy",
        "agg": "count",
        "within": f"{number}{unit}{tail}",
        "op": "gte",
        "value": 1,
    }
    with pytest.raises(DefinitionError) as caught:
        parse_definition({"id": "s", "name": "S", "rules": [{"where": where}]}, Limits())
    assert caught.value.code == "bad_duration"
    with pytest.raises(DefinitionError) as caught:
        parse_definition(
            {"id": f"s{tail}", "name": "S", "rules": [{"where": {**where, "within": "7d"}}]},
            Limits(),
        )
    assert caught.value.code == "invalid_value" and caught.value.path == "id"
