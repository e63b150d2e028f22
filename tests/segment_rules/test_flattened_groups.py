"""Nested `all`/`any` groups compile flattened (a group of the same kind inside another is
spliced into it) and still mean what the reference says, for every mix of kinds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_rules import DictProfile, compile_segment

from .reference import ref_segment
from .strategies import NOW, budget

_LEAVES = st.sampled_from(["a", "b", "c", "d"]).map(lambda n: {"attr": n, "op": "exists"})
_TREES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs})
        | st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs})
        | inner.map(lambda x: {"not": x})
    ),
    max_leaves=10,
)


@budget(300)
@given(_TREES, st.sets(st.sampled_from(["a", "b", "c", "d"])))
def test_nested_groups_match_the_reference(where: dict[str, Any], present: set[str]) -> None:
    definition = {"id": "s", "name": "Nested", "rules": [{"where": where}]}
    attrs = {name: 1 for name in present}
    raw = {"attrs": attrs, "events": {}, "segments": []}
    expected = ref_segment(definition, raw, NOW)
    assert compile_segment(definition).evaluate(DictProfile(attrs), NOW) == expected, where


@pytest.mark.parametrize("kind", ["all", "any"])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_every_group_size_against_every_assignment(kind: str, size: int) -> None:
    """Exhaustive, not sampled: the compiled groups have special cases by size (one, two, more),
    so each size meets every truth assignment of its items."""
    names = ["a", "b", "c", "d"][:size]
    where = {kind: [{"attr": n, "op": "exists"} for n in names]}
    segment = compile_segment({"id": "s", "name": "Group", "rules": [{"where": where}]})
    combine = all if kind == "all" else any
    for mask in range(2**size):
        present = [n for i, n in enumerate(names) if mask >> i & 1]
        got = segment.evaluate(DictProfile({n: 1 for n in present}), NOW)
        assert got == combine(n in present for n in names), (kind, present)
