from __future__ import annotations

import pytest

from insights import InsightError
from insights.data import Customer
from insights.differentiators import differentiators

from .fixtures import NOW, planted_population


def test_the_planted_attributes_rank_first_with_their_values() -> None:
    customers = planted_population(2000)
    segment = [c for c in customers if c.attrs["ltv"] > 500]  # about DE and age < 30
    result = differentiators(segment, customers, NOW)
    top = [d["feature"] for d in result["differentiators"][:3]]
    assert {"country", "age", "ltv"} == set(top)
    country = next(d for d in result["differentiators"] if d["feature"] == "country")
    de = country["values"][0]
    assert de["value"] == "DE" and de["segment_percent"] > 90 and de["baseline_percent"] < 30
    assert de["text"].startswith("country = DE: ")
    noise = {d["feature"]: abs(d["effect_size"]) for d in result["differentiators"]}
    assert noise.get("newsletter", 0) < 0.3


def test_vs_another_segment_and_left_out_attributes() -> None:
    customers = [
        Customer(c.customer_id, {**c.attrs, "email": f"{c.customer_id}@x", "tags": [1]})
        for c in planted_population(400)
    ]
    a = [c for c in customers if c.attrs["country"] == "FR"]
    b = [c for c in customers if c.attrs["country"] == "IT"]
    result = differentiators(a, b, NOW)
    assert result["differentiators"][0]["feature"] == "country"
    reasons = {x["attribute"]: x["reason"] for x in result["left_out"]}
    assert "distinct values" in reasons["email"] and "other" in reasons["tags"]


def test_empty_segment_is_refused() -> None:
    with pytest.raises(InsightError) as caught:
        differentiators([], planted_population(10), NOW)
    assert (caught.value.code, caught.value.path) == ("empty_segment", "segment_id")
