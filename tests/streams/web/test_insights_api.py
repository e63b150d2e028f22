"""AI-found segments and insights through the HTTP API, on the real broker and Redis."""

from __future__ import annotations

import random
import time

import pytest

from .fixtures import ApiHarness, definition

pytestmark = pytest.mark.integration

DAY = 86_400_000
COUNTRIES = ("DE", "FR")


@pytest.fixture(scope="module")
def shop(api_harness: ApiHarness) -> ApiHarness:
    """150 customers: `country = DE and age < 30` have a high ltv; 0..5 purchases each."""
    h = api_harness
    for sid, where in (
        ("known", {"attr": "age", "op": "exists"}),
        ("buyers", {"event": "purchase", "agg": "count", "op": "gte", "value": 1}),
        ("de", {"attr": "country", "op": "eq", "value": "DE"}),
        ("young", {"attr": "age", "op": "lt", "value": 30}),
        ("nobody", {"attr": "age", "op": "lt", "value": 0}),
    ):
        h.api.ok("POST", "/segments", {"segment": definition(sid, where), "activate": True}, 201)
    rng = random.Random(4)
    now = int(time.time() * 1000)
    profiles = {}
    buyers = set()
    for i in range(150):
        country, age = rng.choice(COUNTRIES), rng.randint(18, 45)
        ltv = (1000 if country == "DE" and age < 30 else 150) + rng.randint(-50, 50)
        profiles[f"s{i:03d}"] = {"country": country, "age": age, "ltv": ltv}
    h.populate("known", profiles)
    for customer_id in profiles:
        for _ in range(rng.randint(0, 5)):
            ts = now - rng.randint(1, 80) * DAY
            h.client.send_event(customer_id, "purchase", {"amount": rng.randint(5, 200)}, ts=ts)
            buyers.add(customer_id)
    h.client.flush()
    h.wait_members("buyers", buyers, timeout=60)
    return h


def test_overlap_counts_equal_set_arithmetic(shop: ApiHarness) -> None:
    body = shop.api.ok("POST", "/insights/overlap", {"segment_ids": ["de", "young"]})
    de, young = shop.members("de"), shop.members("young")
    regions = {r["label"]: r["customers"] for r in body["regions"]}
    assert regions == {
        "only de": len(de - young),
        "only young": len(young - de),
        "de and young": len(de & young),
    }
    assert body["union"] == len(de | young)
    status, error = shop.api.call("POST", "/insights/overlap", {"segment_ids": ["de", "nope"]})
    assert status == 404 and error["error"]["path"] == "segment_ids[1]"


def test_differentiators_rank_the_defining_attribute_first(shop: ApiHarness) -> None:
    body = shop.api.ok("GET", "/segments/de/differentiators")
    top = body["differentiators"][0]
    assert top["feature"] == "country"
    assert top["values"][0]["text"].startswith("country = DE: 100 % vs ")
    vs = shop.api.ok("GET", "/segments/de/differentiators?vs=young")
    assert vs["vs"] == "young"


def test_accepted_measure_suggestion_equals_its_preview_then_follows_events(
    shop: ApiHarness,
) -> None:
    api = shop.api
    body = api.ok("POST", "/suggestions/measure", {"primary": "ltv", "using": ["country", "age"]})
    best = body["suggestions"][0]
    assert best["lift"] > 2.0 and best["significant"] is True
    preview = api.ok("GET", f"/suggestions/{best['suggestion_id']}?limit=1000")
    assert preview["estimate"] == best["size"]
    accepted = api.ok(
        "POST",
        f"/suggestions/{best['suggestion_id']}/accept",
        {"activate": True, "id": "high-ltv"},
        status=201,
    )
    assert accepted["segment"]["active"] is True
    assert shop.members("high-ltv") == set(preview["members"])
    shown = api.ok("GET", "/segments/high-ltv")
    assert shown["type"] == "dynamic"
    # a new customer that fits the rule enters at once; a member that stops fitting exits
    newcomer = {"country": "DE", "age": 21, "ltv": 10}
    shop.client.send_event("s-new", "profile", newcomer)
    leaver = sorted(preview["members"])[0]
    shop.client.send_event(leaver, "profile", {"country": "FR"})
    shop.client.flush()
    shop.wait_members("high-ltv", (set(preview["members"]) - {leaver}) | {"s-new"}, timeout=30)


def test_rfm_groups_partition_the_buyers_and_accept(shop: ApiHarness) -> None:
    api = shop.api
    body = api.ok(
        "POST", "/suggestions/activity", {"event": "purchase", "value": "amount", "lookback": "90d"}
    )
    assert body["active_customers"] == len(shop.members("buyers"))
    assert sum(s["size"] for s in body["suggestions"]) == body["active_customers"]
    group = max(body["suggestions"], key=lambda s: s["size"])
    preview = api.ok("GET", f"/suggestions/{group['suggestion_id']}?limit=1000")
    api.ok("POST", f"/suggestions/{group['suggestion_id']}/accept", {"activate": True}, 201)
    assert shop.members(group["definition"]["id"]) == set(preview["members"])


def test_similar_customers_report_quality_and_bands(shop: ApiHarness) -> None:
    body = shop.api.ok("POST", "/segments/young/similar", {"size": 10, "min_score": 0.0})
    assert 0 <= body["auc"] <= 1 and body["grade"]
    assert body["size"] == 10
    assert not {c["customer_id"] for c in body["customers"]} & shop.members("young")
    assert [b["band"] for b in body["bands"]] == [
        "very similar",
        "similar",
        "somewhat similar",
        "less similar",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "where"),
    [
        ("POST", "/suggestions/measure", {"primary": "ltv", "using": ["country", "agee"]},
         "unknown_attribute", "using[1]"),
        ("POST", "/suggestions/measure", {"primary": "country", "using": ["ltv"], "target": "XX"},
         "invalid_value", "target"),
        ("POST", "/suggestions/activity", {"event": "purchase", "lookback": "90 days"},
         "bad_duration", "lookback"),
        ("POST", "/segments/nobody/similar", {}, "empty_segment", "source"),
        ("GET", "/suggestions/measure-00000000", None, "not_found", "suggestion_id"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_with_the_path(
    shop: ApiHarness, method: str, path: str, body: object, code: str, where: str
) -> None:
    status, answer = shop.api.call(method, path, body)
    assert status in (400, 404), answer
    assert answer["error"]["code"] == code
    assert answer["error"]["path"] == where
