"""Catalog helpers: references, cycles, order and dependents."""

from __future__ import annotations

from typing import Any

import pytest

from segment_rules import (
    DefinitionError,
    SegmentDefinition,
    check_references,
    dependents,
    parse_definition,
    topological_order,
)
from segment_rules.catalog import dependencies


def seg(sid: str, *refs: str) -> SegmentDefinition:
    where: Any = {"attr": "a", "op": "exists"}
    if refs:
        where = {"all": [where, *({"in_segment": r} for r in refs)]}
    return parse_definition({"id": sid, "name": sid, "rules": [{"where": where}]})


CATALOG = {d.id: d for d in [seg("base"), seg("vip", "base"), seg("vip-de", "vip"), seg("solo")]}


def test_check_references_accepts_a_sound_definition() -> None:
    check_references(CATALOG, seg("top", "vip-de", "base"))


def test_missing_segment_names_the_node_and_suggests() -> None:
    with pytest.raises(DefinitionError) as info:
        check_references(CATALOG, seg("top", "base", "vipde"))
    err = info.value
    assert err.code == "missing_segment"
    assert err.path == "rules[0].where.all[2].in_segment"
    assert str(err) == (
        "unknown segment 'vipde' at rules[0].where.all[2].in_segment; did you mean 'vip-de'?"
    )
    assert err.suggestion == "vip-de"


def test_missing_segment_with_nothing_close_says_to_create_it() -> None:
    with pytest.raises(DefinitionError) as info:
        check_references(CATALOG, seg("top", "zzzzzz"))
    assert str(info.value) == (
        "unknown segment 'zzzzzz' at rules[0].where.all[1].in_segment; create that segment first"
    )
    assert info.value.suggestion is None


def test_cycle_lists_the_loop() -> None:
    with pytest.raises(DefinitionError) as info:
        check_references(CATALOG, seg("base", "vip-de"))
    err = info.value
    assert err.code == "cycle"
    assert str(err) == (
        "segment membership would depend on itself: base -> vip-de -> vip -> base "
        "(via rules[0].where.all[1].in_segment); remove one of these in_segment conditions"
    )
    assert err.path == "rules[0].where.all[1].in_segment"
    assert err.suggestion is None


def test_replacing_a_definition_uses_the_new_version() -> None:
    # the stored 'vip' refers to 'base', which this catalog lacks: only the new version counts
    without_base = {sid: d for sid, d in CATALOG.items() if sid != "base"}
    check_references(without_base, seg("vip", "solo"))
    # the stored 'vip' closes no loop; the new one, through vip-de, does
    looping = seg("vip", "vip-de")
    with pytest.raises(DefinitionError) as info:
        check_references(CATALOG, looping)
    assert info.value.code == "cycle"
    assert "vip -> vip-de -> vip" in str(info.value)


def test_topological_order_puts_dependencies_first() -> None:
    assert topological_order(CATALOG) == ["base", "solo", "vip", "vip-de"]


def test_topological_order_reports_a_cycle() -> None:
    looped = {**CATALOG, "base": seg("base", "vip-de")}
    with pytest.raises(DefinitionError) as info:
        topological_order(looped)
    err = info.value
    assert (err.code, err.path, err.suggestion) == ("cycle", "base", None)
    assert str(err) == (
        "segment membership depends on itself: base -> vip-de -> vip -> base; "
        "remove one of these in_segment conditions"
    )


def test_dependents_are_transitive() -> None:
    assert dependents(CATALOG, "base") == {"vip", "vip-de"}
    assert dependents(CATALOG, "vip-de") == set()
    assert dependents(CATALOG, "unknown") == set()


def test_dependencies_are_direct() -> None:
    assert dependencies(CATALOG["vip-de"]) == {"vip"}


@pytest.mark.parametrize(
    ("where", "path"),
    [
        ({"any": [{"attr": "a", "op": "exists"}, {"in_segment": "gone"}]}, "where.any[1]"),
        ({"not": {"in_segment": "gone"}}, "where.not"),
        ({"all": [{"not": {"any": [{"in_segment": "gone"}]}}]}, "where.all[0].not.any[0]"),
        (
            {
                "any": [
                    {
                        "event": "buy",
                        "agg": "count",
                        "op": "gt",
                        "value": 0,
                        "filter": {"not": {"prop": "p", "op": "exists"}},
                    },
                    {"in_segment": "gone"},
                ]
            },
            "where.any[1]",
        ),
    ],
)
def test_missing_segment_path_through_any_not_and_filters(where: Any, path: str) -> None:
    """The path of an unknown ``in_segment`` names every group on the way, in any rule."""
    defn = {
        "id": "top",
        "name": "top",
        "rules": [{"where": {"attr": "a", "op": "exists"}}, {"op": "union", "where": where}],
    }
    with pytest.raises(DefinitionError) as info:
        check_references(CATALOG, parse_definition(defn))
    assert info.value.code == "missing_segment"
    assert info.value.path == f"rules[1].{path}.in_segment"
