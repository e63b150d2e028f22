from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from insights import InsightError
from insights.overlap import Overlap, check_segment_ids, count_regions

ids = st.sets(st.integers(0, 40).map(lambda i: f"c{i}"), max_size=30)


@given(st.lists(ids, min_size=2, max_size=4), st.integers(0, 3))
def test_region_counts_equal_set_arithmetic(sets: list[set[str]], split: int) -> None:
    names = tuple(f"s{i}" for i in range(len(sets)))
    named = dict(zip(names, sets, strict=True))
    # computed on two disjoint "partitions" and added, as the wiring does
    low = {n: {c for c in s if int(c[1:]) % 4 <= split} for n, s in named.items()}
    high = {n: s - low[n] for n, s in named.items()}
    overlap = Overlap(names, {}).add(count_regions(low)).add(count_regions(high))
    body = overlap.to_dict()
    assert body["union"] == len(set().union(*sets))
    assert len(body["regions"]) == 2 ** len(sets) - 1
    for region in body["regions"]:
        inside = set.intersection(*(named[n] for n in region["in"]))
        outside = set().union(*(named[n] for n in region["not_in"]))
        assert region["customers"] == len(inside - outside)
    for name in names:
        assert body["sizes"][name] == len(named[name])


def test_two_segments_read_as_only_a_both_only_b() -> None:
    body = Overlap(("a", "b"), count_regions({"a": {"1", "2", "3"}, "b": {"3", "4"}})).to_dict()
    rows = {r["label"]: (r["customers"], r["percent_of_union"]) for r in body["regions"]}
    assert rows == {"only a": (2, 50.0), "only b": (1, 25.0), "a and b": (1, 25.0)}


@pytest.mark.parametrize(
    ("given_ids", "path"), [(["a"], "segment_ids"), (["a", "b", "a"], "segment_ids[2]")]
)
def test_bad_segment_lists_are_refused(given_ids: list[str], path: str) -> None:
    with pytest.raises(InsightError) as caught:
        check_segment_ids(given_ids)
    assert caught.value.path == path
