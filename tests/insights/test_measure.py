from __future__ import annotations

import pytest

from insights import InsightError
from insights.data import Customer, evaluate_definition
from insights.measure import suggest_for_measure

from .fixtures import NOW, planted_population

LIFT_BOUND = 3.0
"""The planted group's ltv is about 4x the rest's (800 vs 200; overall ~ 240)."""


def test_planted_rule_is_recovered_with_lift_above_the_bound() -> None:
    customers = planted_population()
    result = suggest_for_measure(customers, "ltv", ["country", "age", "tier"], NOW)
    best = result["suggestions"][0]
    assert best["lift"] > LIFT_BOUND
    assert best["significant"] is True
    assert "vs" in best["text"] and "x" in best["text"]
    assert "Welch" in result["test"]
    planted = {
        c.customer_id for c in customers if c.attrs["country"] == "DE" and c.attrs["age"] < 30
    }
    # the tree may cut the planted group in two; the groups above the bound are exactly it
    chosen: set[str] = set()
    for s in result["suggestions"]:
        if s["lift"] > LIFT_BOUND:
            assert s["significant"] is True
            inside = evaluate_definition(s["definition"], customers, NOW)
            chosen |= {c.customer_id for c, hit in zip(customers, inside, strict=True) if hit}
    assert chosen == planted


def test_every_suggestion_is_a_valid_definition_whose_preview_matches_its_members() -> None:
    customers = planted_population(600, seed=3)
    result = suggest_for_measure(customers, "ltv", [], NOW)
    assert result["suggestions"]
    total = 0
    for s in result["suggestions"]:
        inside = evaluate_definition(s["definition"], customers, NOW)
        members = sorted(c.customer_id for c, hit in zip(customers, inside, strict=True) if hit)
        assert s["preview"] == members[:20]
        assert s["size"] == len(members)
        total += s["size"]
    assert total == len(customers)  # the leaves partition the population


def test_categorical_primary_uses_the_z_test_and_finds_the_planted_share() -> None:
    customers = [
        Customer(c.customer_id, {**c.attrs, "churned": c.attrs["ltv"] > 500}, c.events)
        for c in planted_population(1500, seed=11)
    ]
    result = suggest_for_measure(customers, "churned", ["country", "age"], NOW)
    assert "z-test" in result["test"]
    assert result["target"] is True
    best = result["suggestions"][0]
    assert best["value_in_group"] > 0.9 and best["lift"] > LIFT_BOUND


def test_activity_features_become_windowed_aggregates() -> None:
    customers = planted_population(800, seed=5)
    result = suggest_for_measure(customers, "ltv", ["event:purchase:count:30d"], NOW)
    text = str([s["definition"] for s in result["suggestions"]])
    assert "'within': '30d'" in text and "'agg': 'count'" in text


@pytest.mark.parametrize(
    ("primary", "using", "code", "path"),
    [
        ("nope", ["country"], "unknown_attribute", "primary"),
        ("ltv", ["country", "agee"], "unknown_attribute", "using[1]"),
        ("ltv", ["ltv"], "invalid_value", "using[0]"),
        ("ltv", ["event:purchase:median:3d"], "invalid_value", "using[0]"),
        ("email", ["country"], "too_many_categories", "primary"),
        ("ltv", ["email"], "too_many_categories", "using[0]"),
        ("tags", ["country"], "wrong_kind", "primary"),
    ],
)
def test_bad_input_names_the_path(primary: str, using: list[str], code: str, path: str) -> None:
    customers = [
        Customer(c.customer_id, {**c.attrs, "email": f"{c.customer_id}@x", "tags": ["a"]})
        for c in planted_population(300)
    ]
    with pytest.raises(InsightError) as caught:
        suggest_for_measure(customers, primary, using, NOW)
    assert caught.value.code == code
    assert caught.value.path == path
    assert repr(primary if path == "primary" else using[int(path[6])]) in caught.value.message
