"""`segments overlap / differentiators / suggest / suggestion / accept / similar` end to end."""

from __future__ import annotations

import json
import random
import time

import pytest

from streams.operator.insights import condition_text

from ..web.fixtures import ApiHarness
from .fixtures import Run

pytestmark = pytest.mark.integration

DAY = 86_400_000


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    """120 customers; `country = DE and age < 30` spend much more (ltv); some purchases."""
    h = api_harness
    for sid, where in (
        ("all", {"attr": "age", "op": "exists"}),
        ("buyers", {"event": "purchase", "agg": "count", "op": "gte", "value": 1}),
        ("de", {"attr": "country", "op": "eq", "value": "DE"}),
        ("young", {"attr": "age", "op": "lt", "value": 30}),
    ):
        segment = {"id": sid, "name": sid.title(), "rules": [{"where": where}]}
        h.api.ok("POST", "/segments", {"segment": segment, "activate": True}, status=201)
    rng = random.Random(2)
    profiles = {}
    for i in range(120):
        country, age = rng.choice(("DE", "FR")), rng.randint(18, 45)
        ltv = (1000 if country == "DE" and age < 30 else 150) + rng.randint(-40, 40)
        profiles[f"k{i:03d}"] = {"country": country, "age": age, "ltv": ltv}
    h.populate("all", profiles)
    now = int(time.time() * 1000)
    buyers = set()
    for customer_id in profiles:
        for _ in range(rng.randint(0, 4)):
            ts = now - rng.randint(1, 60) * DAY
            h.client.send_event(customer_id, "purchase", {"amount": rng.randint(5, 100)}, ts=ts)
            buyers.add(customer_id)
    h.client.flush()
    h.wait_members("buyers", buyers, timeout=60)
    return h


def test_overlap_and_differentiators(run: Run, world: ApiHarness) -> None:
    code, out, err = run("overlap", "de", "young")
    assert code == 0, err
    both = len(world.members("de") & world.members("young"))
    assert f"de and young {both} " in " ".join(out.split())
    code, out, err = run("differentiators", "de", "--vs", "young")
    assert code == 0, err
    assert "country = DE: 100 % vs" in out
    code, _out, err = run("overlap", "de")
    assert code == 1 and "overlap needs 2 to 6 segments" in err


def test_suggest_preview_and_accept(run: Run, world: ApiHarness) -> None:
    code, out, err = run("--json", "suggest", "measure", "ltv", "--using", "country,age")
    assert code == 0, err
    best = json.loads(out)["suggestions"][0]
    code, out, err = run("suggest", "measure", "ltv", "--using", "country,age")
    assert code == 0 and best["suggestion_id"] in out and "Welch" in out
    code, out, err = run("suggestion", best["suggestion_id"], "--limit", "1000")
    assert code == 0 and f"estimate: {best['size']} customers" in out
    code, out, err = run("accept", best["suggestion_id"], "--activate", "--id", "cli-high-ltv")
    assert code == 0, err
    assert f"created dynamic segment 'cli-high-ltv' (active, {best['size']} members)" in out
    code, out, err = run(
        "suggest", "activity", "purchase", "--value", "amount", "--lookback", "90d"
    )
    assert code == 0 and "Champions" in out and "Hibernating" in out
    code, _out, err = run("suggest", "measure", "ltv", "--using", "country,agee")
    assert code == 1 and "unknown_attribute at using[1]" in err


def test_similar(run: Run) -> None:
    code, out, err = run("similar", "young", "--size", "5", "--min-score", "0")
    assert code == 0, err
    assert "ROC AUC" in out and "very similar" in out and "5 customers chosen" in out
    assert "saved as expansion segment 'young-similar'" in out
    # the job's progress goes to stderr, up to its end (a fast job may skip a stage's line)
    assert "(similar): Successful" in err and "(similar): Successful" not in out
    code, out, err = run(
        "--json", "similar", "young", "--no-wait", "--segment-id", "young-like", "--size", "3"
    )
    assert code == 0, err
    job = json.loads(out)
    assert (job["status"], job["command"], job["params"]["segment_id"]) == (
        "Queued",
        "similar",
        "young-like",
    )
    code, out, err = run("job", job["job_id"], "--watch")
    assert code == 0 and "(similar): Successful" in out, err
    code, _out, err = run("similar", "young", "--min-score", "2")
    assert code == 2 and "expected 0..1" in err


def test_condition_text_reads_like_the_rule() -> None:
    where = {
        "all": [
            {"attr": "country", "op": "eq", "value": "DE"},
            {"not": {"attr": "age", "op": "gte", "value": 30}},
            {"event": "purchase", "agg": "sum", "prop": "amount", "within": "90d", "op": "gte",
             "value": 120},
        ]
    }  # fmt: skip
    assert condition_text(where) == (
        'country eq "DE" and not age gte 30 and sum(purchase, amount, 90d) gte 120'
    )
