"""`expansion` segments: an explicit scored list of customers instead of rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from segment_rules import DefinitionError, DictProfile, compile_segment, parse_definition
from segment_rules.model import MAX_EXPANSION_MEMBERS, Expansion


def _expansion(**changes: Any) -> dict[str, Any]:
    return {
        "id": "vip-similar",
        "name": "Similar to VIP",
        "type": "expansion",
        "expansion": {"source": "vip", "size": 3, "min_score": 0.4, "attributes": None,
                      "auc": 0.91, "grade": "excellent"},
        "members": {"c1": 0.93, "c2": 0.71, "c3": 0.4},
        **changes,
    }  # fmt: skip


@dataclass(frozen=True)
class _Customer:
    customer_id: str

    def attribute(self, name: str) -> object | None:
        return None

    def events(self, event_type: str) -> tuple[()]:
        return ()

    def in_segment(self, segment_id: str) -> bool:
        return False


def test_an_expansion_segment_holds_exactly_its_listed_customers() -> None:
    defn = parse_definition(_expansion())
    assert defn.expansion == Expansion("vip", 3, 0.4, None)
    assert defn.members == frozenset({"c1", "c2", "c3"}) and defn.rules == ()
    compiled = compile_segment(defn)
    assert compiled.is_static  # evaluated by jobs only: no event changes its list
    assert not compiled.time_dependent and not compiled.attributes and not compiled.segments
    assert [compiled.evaluate(_Customer(c), 0) for c in ("c1", "c3", "c4")] == [True, True, False]
    assert not compiled.evaluate(DictProfile(), 0)  # a view without an id holds nobody


@pytest.mark.parametrize(
    ("changes", "code", "path"),
    [
        ({"rules": [{"where": {"attr": "a", "op": "exists"}}]}, "invalid_value", "rules"),
        ({"members": None}, "missing_field", "members"),
        ({"members": ["c1"]}, "wrong_type", "members"),
        ({"members": {"c1": 1.5}}, "invalid_value", "members.c1"),
        ({"members": {"c1": "high"}}, "wrong_type", "members.c1"),
        ({"expansion": None}, "missing_field", "expansion"),
        ({"expansion": {"source": "vip", "size": 0, "min_score": 0.4}}, "invalid_value",
         "expansion.size"),
        ({"expansion": {"source": "vip", "size": 3, "min_score": 2}}, "invalid_value",
         "expansion.min_score"),
        ({"expansion": {"source": "Not A Slug", "size": 3, "min_score": 0.4}}, "invalid_value",
         "expansion.source"),
        ({"expansion": {"source": "vip", "size": 3, "min_score": 0.4, "model": 1}},
         "unknown_field", "expansion.model"),
        ({"expansion": {"source": "vip", "size": 3, "min_score": 0.4, "attributes": [1]}},
         "wrong_type", "expansion.attributes[0]"),
    ],
)  # fmt: skip
def test_a_malformed_expansion_segment_is_refused_with_the_path(
    changes: dict[str, Any], code: str, path: str
) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(_expansion(**changes))
    assert (caught.value.code, caught.value.path) == (code, path)


def test_a_list_longer_than_the_limit_is_refused() -> None:
    members = {f"c{i}": 0.5 for i in range(MAX_EXPANSION_MEMBERS + 1)}
    with pytest.raises(DefinitionError) as caught:
        parse_definition(_expansion(members=members))
    assert (caught.value.code, caught.value.path) == ("limit_exceeded", "members")


@pytest.mark.parametrize("field", ["members", "expansion"])
def test_only_expansion_segments_take_a_list(field: str) -> None:
    rules = [{"where": {"attr": "a", "op": "exists"}}]
    raw = {"id": "x", "name": "X", "rules": rules, field: {}}
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw)
    assert (caught.value.code, caught.value.path) == ("unknown_field", field)
