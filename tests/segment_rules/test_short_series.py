"""Property tests: short windows are scanned, long ones read the series' indexes; both agree.

`SCAN_AT_MOST` decides which path an aggregate (and its next-change function) takes. Each
case is evaluated with the threshold forced low (every window through the indexes) and high
(every window scanned, with the one-value shortcut of ``sum``/``avg`` and the scan of the
first passing event for timers), and both are compared with the reference interpreter.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import given

from segment_rules import _aggregate, compile_segment, parse_definition

from .reference import Raw, ref_next_change, ref_segment
from .strategies import AGGS, aggregate_cases, budget, to_profile

Case = tuple[dict[str, Any], Raw, int]
_INDEXED = -1
_SCANNED = 10**9


def _both_paths(defn: dict[str, Any], raw: Raw, now: int) -> None:
    results = []
    for threshold in (_INDEXED, _SCANNED):
        with mock.patch.object(_aggregate, "SCAN_AT_MOST", threshold):
            compiled = compile_segment(parse_definition(defn))
            profile = to_profile(raw)  # fresh indexes for each path
            results.append((compiled.evaluate(profile, now), compiled.next_change(profile, now)))
    indexed, scanned = results
    assert indexed == scanned, (defn, raw, now)
    assert scanned[0] == ref_segment(defn, raw, now), (defn, raw, now)
    expected = ref_next_change(defn, raw, now)
    if expected is not None:  # never late (it may be early: the expiry re-evaluates)
        assert scanned[1] is not None and scanned[1] <= expected, (defn, raw, now)


@budget(150)
@given(aggregate_cases())
def test_scanned_and_indexed_windows_agree(case: Case) -> None:
    """Every aggregate kind over the same history, on both paths."""
    defn, raw, now = case
    where = defn["rules"][0]["where"]
    for agg in AGGS:
        node = {**where, "agg": agg, "prop": where.get("prop", "p")}
        if agg == "count":
            del node["prop"]
        _both_paths({**defn, "rules": [{"where": node}]}, raw, now)


@budget(150)
@given(aggregate_cases())
def test_one_event_windows_agree(case: Case) -> None:
    """The same with one event of the history (the one-value shortcut of sum and avg)."""
    defn, raw, now = case
    where = defn["rules"][0]["where"]
    records = raw["events"][where["event"]]
    for record in records[:4]:
        one = {**raw, "events": {where["event"]: [record]}}
        for agg in ("sum", "avg"):
            node = {**where, "agg": agg, "prop": where.get("prop", "p")}
            _both_paths({**defn, "rules": [{"where": node}]}, one, now)
