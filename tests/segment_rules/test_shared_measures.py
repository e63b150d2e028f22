"""Measures shared through a series' memo (`EventSeries.memo`) give what a fresh series gives.

Many segments aggregate the same events; `_aggregate` keeps each measure (count, exact sum,
extreme, distinct count, the first passing event of a window) in the series' memo, keyed by
what is measured and from which position, and any change of the series empties it. Here
every definition of `test_history` (aggregates sharing events, property and filter, with
different comparisons and windows) is evaluated in a random order after each change, at
two instants and through a window of the series, and each result and next change is
compared with the same segment on a fresh copy of the series (an empty memo).
"""

from __future__ import annotations

import random
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segment_rules import EventRecord, EventSeries, _aggregate, compile_segment

from .reference import DAY
from .strategies import NOW, budget
from .test_history import _OPS, _apply, _compiled, _View


def _fresh(view_of: Any) -> _View:
    if isinstance(view_of, EventSeries):
        return _View(EventSeries(list(view_of), ordered=True))
    return _View(EventSeries(list(view_of), ordered=True).window(0))


def _check(compiled_all: list[Any], series: EventSeries, now: int, rnd: random.Random) -> None:
    order = list(range(len(compiled_all)))
    rnd.shuffle(order)
    windows: list[Any] = [series, series.window(series.after(now - 2 * DAY))]
    for at in order:
        compiled = compiled_all[at]
        for view_of in windows:
            shared = _View(view_of)
            fresh = _fresh(view_of)
            assert compiled.evaluate(shared, now) == compiled.evaluate(fresh, now), (
                compiled.definition,
                list(view_of),
                now,
            )
            assert compiled.next_change(shared, now) == compiled.next_change(fresh, now), (
                compiled.definition,
                list(view_of),
                now,
            )


@budget(40)
@given(_OPS, st.sampled_from([0, _aggregate.SCAN_AT_MOST]), st.randoms(use_true_random=False))
def test_shared_measures_agree_with_a_fresh_series(
    ops: list[Any], scan_at_most: int, rnd: random.Random
) -> None:
    """After each change of the series, at two instants (the memo outlives a move of time
    that leaves the series as it was), indexed (threshold 0) or scanned."""
    compiled_all = _compiled()
    series = EventSeries()
    with patch.object(_aggregate, "SCAN_AT_MOST", scan_at_most):
        for op in ops:
            _apply(series, op)
            for now in (NOW, NOW + 2 * DAY, NOW):
                _check(compiled_all, series, now, rnd)


@pytest.mark.parametrize("first", ["x", "y"])
def test_timers_of_different_filters_do_not_share_a_measure(first: str) -> None:
    """Two windowed counts over the same events whose (time-independent) filters differ: each
    timer is the oldest event passing its own filter + the window, whichever asks first."""

    def segment(value: str) -> Any:
        where = {
            "event": "buy",
            "agg": "count",
            "op": "gte",
            "value": 1,
            "within": "3d",
            "filter": {"prop": "k", "op": "eq", "value": value},
        }
        return compile_segment({"id": f"s{value}", "name": "Timer", "rules": [{"where": where}]})

    oldest = {"y": NOW - 2 * DAY, "x": NOW - DAY}
    series = EventSeries(
        [EventRecord(oldest["y"], {"k": "y"}), EventRecord(oldest["x"], {"k": "x"})],
        ordered=True,
    )
    with patch.object(_aggregate, "SCAN_AT_MOST", 0):  # the indexed path, which memoises
        for value in (first, "y" if first == "x" else "x"):
            assert segment(value).next_change(_View(series), NOW) == oldest[value] + 3 * DAY
