from __future__ import annotations

import math

import numpy as np
import pytest

from insights import InsightError
from insights.data import evaluate_definition
from insights.rfm import GROUPS, rfm_scores, suggest_by_activity

from .fixtures import DAY, NOW, planted_population

LOOKBACK = 90 * DAY


def _direct(customers, with_value: bool):  # type: ignore[no-untyped-def]
    """Recency, frequency, monetary and their quintile edges computed straight from events."""
    raw = {}
    for c in customers:
        recent = [r for r in c.events.get("purchase", ()) if r.ts > NOW - LOOKBACK]
        if recent:
            raw[c.customer_id] = (
                NOW - max(r.ts for r in recent),
                len(recent),
                float(sum(r.props["amount"] for r in recent)),
            )
    ages, counts, values = (np.asarray([v[i] for v in raw.values()]) for i in range(3))
    qs = (0.2, 0.4, 0.6, 0.8)
    recency = [math.ceil(np.quantile(ages, 1 - q) / 3_600_000) * 3_600_000 for q in qs]
    frequency = [max(2, math.ceil(np.quantile(counts, q))) for q in qs]
    monetary = [float(np.quantile(values, q)) for q in qs] if with_value else None
    return raw, recency, frequency, monetary


@pytest.mark.parametrize("prop", ["amount", None])
def test_groups_match_a_direct_quantile_computation(prop: str | None) -> None:
    customers = planted_population(1200, seed=21)
    raw, recency, frequency, monetary = _direct(customers, prop is not None)
    edges, scores = rfm_scores(customers, "purchase", prop, LOOKBACK, NOW)
    assert list(edges.recency_ms) == recency
    assert list(edges.frequency) == frequency
    if monetary is None:
        assert edges.monetary is None
    else:
        assert edges.monetary == pytest.approx(monetary, rel=1e-5)
    assert set(scores) == set(raw)
    for cid, (age, count, _value) in raw.items():
        assert scores[cid].r == 1 + sum(age < w for w in recency)
        assert scores[cid].f == 1 + sum(count >= f for f in frequency)

    result = suggest_by_activity(customers, "purchase", prop, LOOKBACK, NOW)
    assert [s["group"] for s in result["suggestions"]] == [g[0] for g in GROUPS]
    assert sum(s["size"] for s in result["suggestions"]) == len(raw)  # a partition
    by_id = {c.customer_id: c for c in customers}
    for s, (_name, _meaning, rule) in zip(result["suggestions"], GROUPS, strict=True):
        direct = sorted(cid for cid, sc in scores.items() if rule(sc))
        inside = evaluate_definition(s["definition"], list(by_id.values()), NOW)
        evaluated = sorted(c for c, hit in zip(by_id, inside, strict=True) if hit)
        assert evaluated == direct, s["group"]
        assert s["size"] == len(direct)
        assert s["preview"] == direct[:20]
        assert s["thresholds"]
    assert any(s["size"] > 0 for s in result["suggestions"][:2])


def test_definitions_are_windowed_aggregates() -> None:
    result = suggest_by_activity(planted_population(300), "purchase", "amount", LOOKBACK, NOW)
    champions = result["suggestions"][0]["definition"]["rules"][0]["where"]
    leaves = champions["all"]
    assert all("event" in leaf and "within" in leaf for leaf in leaves)
    assert {"sum", "count"} == {leaf["agg"] for leaf in leaves}


def test_unknown_event_and_property_are_refused_with_the_path() -> None:
    customers = planted_population(100)
    with pytest.raises(InsightError) as caught:
        suggest_by_activity(customers, "purchse", None, LOOKBACK, NOW)
    assert (caught.value.code, caught.value.path) == ("empty_population", "event")
    with pytest.raises(InsightError) as caught:
        suggest_by_activity(customers, "purchase", "amout", LOOKBACK, NOW)
    assert (caught.value.code, caught.value.path) == ("unknown_property", "value")
