"""AI-found segments and insights through the HTTP API, on the real broker and Redis.

Similar customers and the suggestions are jobs: 202 with the job, then `GET /jobs/{id}`."""

from __future__ import annotations

import csv
import io
import random
import time
from typing import Any

import pytest

from ..fixtures import read_until
from .fixtures import Api, ApiHarness, definition

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


def finished(api: Api, job: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
    """The analysis job once it ended (its last `GET /jobs/{id}`)."""
    assert job["status"] in ("Queued", "Processing"), job
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = api.ok("GET", f"/jobs/{job['job_id']}")
        if body["finished_at"] is not None:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def analysis(api: Api, path: str, body: Any) -> dict[str, Any]:
    """Start an analysis job and return its result (it must succeed)."""
    done = finished(api, api.ok("POST", path, body, status=202))
    assert done["status"] == "Successful", done
    result: dict[str, Any] = done["result"]
    return result


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
    body = analysis(api, "/suggestions/measure", {"primary": "ltv", "using": ["country", "age"]})
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
    body = analysis(
        api, "/suggestions/activity", {"event": "purchase", "value": "amount", "lookback": "90d"}
    )
    assert body["active_customers"] == len(shop.members("buyers"))
    assert sum(s["size"] for s in body["suggestions"]) == body["active_customers"]
    group = max(body["suggestions"], key=lambda s: s["size"])
    preview = api.ok("GET", f"/suggestions/{group['suggestion_id']}?limit=1000")
    api.ok("POST", f"/suggestions/{group['suggestion_id']}/accept", {"activate": True}, 201)
    assert shop.members(group["definition"]["id"]) == set(preview["members"])


def test_similar_customers_make_an_expansion_segment(shop: ApiHarness) -> None:
    api = shop.api
    job = api.ok("POST", "/segments/young/similar", {"size": 10, "min_score": 0.0}, status=202)
    done = finished(api, job)
    assert done["status"] == "Successful" and done["command"] == "similar", done
    body = done["result"]
    assert 0 <= body["auc"] <= 1 and body["grade"]
    assert body["size"] == 10 and body["segment_id"] == "young-similar"
    assert [b["band"] for b in body["bands"]] == [
        "very similar",
        "similar",
        "somewhat similar",
        "less similar",
    ]
    chosen = {c["customer_id"]: c["score"] for c in body["top"]}
    assert len(chosen) == 10 and not set(chosen) & shop.members("young")
    # the expansion segment holds exactly the chosen customers, with their scores
    shop.wait_members("young-similar", set(chosen), timeout=60)
    shown = api.ok("GET", "/segments/young-similar")
    assert shown["type"] == "expansion" and shown["state"] == "active"
    spec = shown["definition"]["expansion"]
    assert (spec["source"], spec["size"], spec["min_score"]) == ("young", 10, 0.0)
    assert shown["definition"]["members"] == chosen
    members = api.ok("GET", "/segments/young-similar/members")["members"]
    assert {m["customer_id"]: m["score"] for m in members} == chosen
    assert all(m["band"] in (None, *[b["band"] for b in body["bands"]]) for m in members)
    status, raw, _h = api.raw("GET", "/segments/young-similar/members.csv")
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert status == 200 and {r["customer_id"]: float(r["score"]) for r in rows} == chosen
    assert "band" in rows[0]
    # the entries reached the membership topic like any segment's
    changes = read_until(
        shop.settings.kafka_bootstrap,
        shop.settings.membership_topic,
        lambda got: (
            {c["customer_id"] for c in got if c["segment_id"] == "young-similar"} >= set(chosen)
        ),
    )
    mine = [c for c in changes if c["segment_id"] == "young-similar"]
    assert {(c["change"], c["cause"]) for c in mine} == {("entered", "activate")}


def test_refreshing_an_expansion_segment_retrains_on_the_source_now(shop: ApiHarness) -> None:
    api = shop.api
    finished(api, api.ok("POST", "/segments/de/similar", {"size": 8, "min_score": 0.0}, 202))
    shop.wait_members("de-similar", set(api.ok("GET", "/segments/de-similar")["definition"]
                                        ["members"]), timeout=60)  # fmt: skip
    before = api.ok("GET", "/segments/de-similar")
    # a dynamic segment may use it (in_segment): its list changes only in jobs, which
    # re-evaluate the dependents of every membership they change
    uses = {"all": [{"in_segment": "de-similar"}, {"attr": "age", "op": "lt", "value": 30}]}
    api.ok("POST", "/segments", {"segment": definition("young-like-de", uses), "activate": True},
           201)  # fmt: skip
    young = shop.members("young")
    shop.wait_members("young-like-de", set(before["definition"]["members"]) & young)
    # a chosen customer joins the source: re-trained on the source now, the list drops it
    mover = sorted(before["definition"]["members"])[0]
    shop.client.send_event(mover, "profile", {"country": "DE"})
    shop.client.flush()
    shop.wait_members("de", shop.members("de") | {mover}, timeout=30)
    answer = api.ok("POST", "/segments/refresh", {"all": True})  # "refresh all" re-trains it
    job_id = answer["retraining"]["de-similar"]
    done = finished(api, api.ok("GET", f"/jobs/{job_id}"))
    assert done["status"] == "Successful", done
    after = api.ok("GET", "/segments/de-similar")
    assert after["version"] == before["version"] + 1
    assert after["definition"]["expansion"]["trained_at"] > before["definition"]["expansion"][
        "trained_at"]  # fmt: skip
    listed = set(after["definition"]["members"])
    assert mover not in listed and not listed & shop.members("de")
    shop.wait_members("de-similar", listed, timeout=60)
    shop.wait_members("young-like-de", listed & shop.members("young"), timeout=30)
    gone = set(before["definition"]["members"]) - listed
    assert mover in gone

    def exited(got: list[dict[str, Any]]) -> dict[str, str]:
        return {c["customer_id"]: c["cause"] for c in got
                if c["segment_id"] == "de-similar" and c["change"] == "exited"}  # fmt: skip

    exits = read_until(
        shop.settings.kafka_bootstrap,
        shop.settings.membership_topic,
        lambda got: set(exited(got)) >= gone,
    )
    assert exited(exits) == dict.fromkeys(gone, "refresh")
    # rename, duplicate, deactivate and delete work like for any segment
    api.ok("POST", "/segments/de-similar/rename", {"name": "Like Germany"})
    assert api.ok("GET", "/segments/de-similar")["name"] == "Like Germany"
    api.ok("POST", "/segments/de-similar/duplicate", {"new_id": "de-similar-copy"}, 201)
    copy = api.ok("GET", "/segments/de-similar-copy")
    assert copy["type"] == "expansion" and copy["state"] == "inactive"
    api.ok("DELETE", "/segments/young-like-de")
    api.ok("POST", "/segments/de-similar/deactivate")
    assert shop.members("de-similar") == set()
    api.ok("DELETE", "/segments/de-similar")
    api.ok("DELETE", "/segments/de-similar-copy")


@pytest.mark.parametrize(
    ("method", "path", "body", "code", "where"),
    [
        ("POST", "/suggestions/activity", {"event": "purchase", "lookback": "90 days"},
         "bad_duration", "lookback"),
        ("POST", "/suggestions/measure", {"primary": "ltv", "max_depth": 9},
         "invalid_value", "max_depth"),
        ("POST", "/segments/nobody/similar", {}, "empty_segment", "source"),
        ("POST", "/segments/nope/similar", {}, "not_found", "source"),
        ("POST", "/segments/young/similar", {"size": 0}, "invalid_value", "size"),
        ("POST", "/segments/young/similar", {"min_score": 2}, "invalid_value", "min_score"),
        ("POST", "/segments/young/similar", {"segment_id": "de"}, "already_exists",
         "segment_id"),
        ("GET", "/suggestions/measure-00000000", None, "not_found", "suggestion_id"),
        ("POST", "/suggestions/measure-00000000/accept", {}, "not_found", "suggestion_id"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_error_with_the_path(
    shop: ApiHarness, method: str, path: str, body: object, code: str, where: str
) -> None:
    status, answer = shop.api.call(method, path, body)
    assert status in (400, 404, 409), answer
    assert answer["error"]["code"] == code
    assert answer["error"]["path"] == where


@pytest.mark.parametrize(
    ("path", "body", "code", "where"),
    [
        ("/suggestions/measure", {"primary": "ltv", "using": ["country", "agee"]},
         "unknown_attribute", "using[1]"),
        ("/suggestions/measure", {"primary": "country", "using": ["ltv"], "target": "XX"},
         "invalid_value", "target"),
        ("/segments/young/similar", {"attributes": ["country", "agee"], "segment_id": "x"},
         "unknown_attribute",
         "attributes[1]"),
    ],
)  # fmt: skip
def test_input_refused_by_the_analysis_fails_its_job_with_the_path(
    shop: ApiHarness, path: str, body: object, code: str, where: str
) -> None:
    done = finished(shop.api, shop.api.ok("POST", path, body, status=202))
    assert done["status"] == "Failure", done
    assert (done["error"]["code"], done["error"]["path"]) == (code, where)
    assert done["tasks"][0]["errors"] == [done["error"]["message"]]
