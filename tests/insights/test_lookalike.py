from __future__ import annotations

import random

import pytest
from sklearn.metrics import roc_auc_score

from insights import InsightError
from insights.lookalike import find_lookalikes

from .fixtures import NOW, planted_population


def test_planted_lookalikes_rank_above_random_non_members() -> None:
    customers = planted_population(1500, seed=9)
    pattern = sorted(
        c.customer_id for c in customers if c.attrs["country"] == "DE" and c.attrs["age"] < 30
    )
    rng = random.Random(1)
    members = set(rng.sample(pattern, len(pattern) * 6 // 10))
    held_out = [c for c in pattern if c not in members]  # planted lookalikes, not members
    result = find_lookalikes(customers, members, NOW, attributes=["country", "age", "tier"])
    scores = result["scores"]
    others = [c.customer_id for c in customers if c.customer_id not in members]
    randoms = [c for c in rng.sample(others, 200) if c not in set(pattern)]
    labels = [1] * len(held_out) + [0] * len(randoms)
    auc = roc_auc_score(labels, [scores[c] for c in held_out] + [scores[c] for c in randoms])
    assert auc >= 0.8
    assert result["auc"] >= 0.8 and result["grade"] in ("good", "excellent")
    assert result["size"] <= result["requested_size"] == round(0.2 * len(members))
    assert all(row["score"] >= 0.4 for row in result["customers"])
    assert sum(b["customers"] for b in result["bands"]) == result["size"]
    assert not set(row["customer_id"] for row in result["customers"]) & members


def test_left_out_attributes_say_why() -> None:
    customers = planted_population(300)
    members = {c.customer_id for c in customers[:60]}
    result = find_lookalikes(customers, members, NOW, size=10, min_score=0.0)
    assert result["size"] == 10
    assert any(f.startswith("purchase count") for f in result["features"])
    assert result["left_out"] == []


def test_empty_source_and_unknown_attribute_are_refused() -> None:
    customers = planted_population(100)
    with pytest.raises(InsightError) as caught:
        find_lookalikes(customers, set(), NOW)
    assert (caught.value.code, caught.value.path) == ("empty_segment", "source")
    with pytest.raises(InsightError) as caught:
        find_lookalikes(customers, {"c00001", "c00002"} | {f"c0000{i}" for i in range(9)}, NOW,
                        attributes=["age", "contry"])  # fmt: skip
    assert (caught.value.code, caught.value.path) == ("unknown_attribute", "attributes[1]")
