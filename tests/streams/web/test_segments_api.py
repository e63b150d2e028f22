"""The HTTP API end to end on the real broker and Redis: one worker for the module."""

from __future__ import annotations

import csv
import io
import time

import pytest

from streams.csv_safe import UTF8_BOM

from .fixtures import ApiHarness, definition

TIERS = ("gold", "silver", "bronze")


@pytest.fixture(scope="module")
def people(api_harness: ApiHarness) -> ApiHarness:
    """30 customers with tier/age, and an active 'known' segment holding all of them."""
    h = api_harness
    h.api.ok(
        "POST",
        "/segments",
        {"segment": definition("known", {"attr": "age", "op": "exists"}), "activate": True},
        status=201,
    )
    h.populate("known", {f"p{i}": {"tier": TIERS[i % 3], "age": 20 + i} for i in range(30)})
    return h


def test_create_activate_list_and_show(people: ApiHarness) -> None:
    api = people.api
    created = api.ok(
        "POST",
        "/segments",
        {
            "segment": definition(
                "gold", {"attr": "tier", "op": "eq", "value": "gold"}, tags=["vip"]
            ),
            "activate": True,
        },
        status=201,
    )
    assert created["segment"]["active"] is True
    assert created["members"] == {"gold": 10}
    rows = {r["id"]: r for r in api.ok("GET", "/segments")["segments"]}
    assert rows["gold"]["members"] == 10
    assert rows["gold"]["state"] == "active"
    assert rows["gold"]["type"] == "dynamic"
    assert rows["gold"]["tags"] == ["vip"]
    assert rows["gold"]["last_refresh"] >= rows["gold"]["created_at"]
    assert [r["id"] for r in api.ok("GET", "/segments?tag=vip")["segments"]] == ["gold"]
    assert [r["id"] for r in api.ok("GET", "/segments?name=GOL")["segments"]] == ["gold"]
    assert api.ok("GET", "/segments?tag=nope")["segments"] == []
    shown = api.ok("GET", "/segments/gold")
    assert shown["version"] == 1
    assert shown["members"] == 10
    assert shown["definition"]["rules"][0]["where"]["value"] == "gold"
    assert shown["jobs"][0]["command"] == "activate"
    assert shown["jobs"][0]["entered"] == 10
    assert shown["jobs"][0]["partitions_done"] == shown["jobs"][0]["partitions"]


def test_errors_carry_status_code_and_path(people: ApiHarness) -> None:
    api = people.api
    status, body = api.call("GET", "/segments/nope")
    assert (status, body["error"]["code"]) == (404, "not_found")
    for path in ("/segments/nope/members", "/segments/nope/trend", "/segments/nope/members.csv"):
        assert api.call("GET", path)[0] == 404, path
    assert api.call("POST", "/segments/nope/activate")[0] == 404
    assert api.call("DELETE", "/segments/nope")[0] == 404
    bad = definition("bad", {"attr": "tier", "op": "equals", "value": "x"})
    status, body = api.call("POST", "/segments", {"segment": bad})
    assert status == 400
    assert body["error"]["code"] == "unknown_op"
    assert body["error"]["path"] == "segment.rules[0].where.op"
    assert "did you mean 'eq'" in body["error"]["message"]
    status, body = api.call("POST", "/segments", {"segment": definition("known", {"attr": "a"})})
    assert status == 400  # parse errors come before the clash check
    clash = definition("known", {"attr": "age", "op": "exists"})
    status, body = api.call("POST", "/segments", {"segment": clash})
    assert (status, body["error"]["code"], body["error"]["path"]) == (
        409,
        "already_exists",
        "segment.id",
    )
    status, body = api.call("POST", "/segments", {"segment": clash}, token=None)
    assert (status, body["error"]["code"]) == (401, "missing_token")
    status, body = api.call("POST", "/segments", {"segment": clash}, token="wrong")
    assert (status, body["error"]["code"]) == (401, "wrong_token")
    status, body = api.call("GET", "/segments", token=None)  # reads need it too, by default
    assert (status, body["error"]["code"]) == (401, "missing_token")
    status, body = api.call("GET", "/segments/known/members?limit=5000")
    assert (status, body["error"]["path"]) == (400, "limit")
    status, _raw, _ = api.raw("POST", "/segments", None)
    assert status == 400
    status, body = api.call("GET", "/segments/known/trend?from=yesterday")
    assert (status, body["error"]["path"]) == (400, "from")


def test_update_delete_deactivate_refresh(people: ApiHarness) -> None:
    api = people.api
    api.ok(
        "POST",
        "/segments",
        {"segment": definition("older", {"attr": "age", "op": "gt", "value": 45})},
        status=201,
    )
    assert api.ok("GET", "/segments/older")["state"] == "inactive"
    result = api.ok("POST", "/segments/older/activate")
    assert result["members"] == {"older": 4}
    changed = definition("older", {"attr": "age", "op": "gt", "value": 40})
    result = api.ok("PUT", "/segments/older", changed)
    assert result["segment"]["version"] == 2
    assert result["members"] == {"older": 9}
    status, body = api.call("PUT", "/segments/older", {**changed, "id": "other"})
    assert (status, body["error"]["code"], body["error"]["path"]) == (
        400,
        "id_mismatch",
        "segment.id",
    )
    status, body = api.call("PUT", "/segments/ghost", definition("ghost", {"attr": "x"}))
    assert status == 400  # invalid before unknown
    ghost = definition("ghost", {"attr": "x", "op": "exists"})
    assert api.call("PUT", "/segments/ghost", ghost)[0] == 404
    user = definition("older-gold", {"in_segment": "older"})
    api.ok("POST", "/segments", {"segment": user, "activate": True}, status=201)
    status, body = api.call("DELETE", "/segments/older")
    assert (status, body["error"]["code"]) == (409, "in_use")
    result = api.ok("POST", "/segments/refresh", {"segment_ids": ["older", "older-gold"]})
    assert result["members"] == {"older": 9, "older-gold": 9}
    status, body = api.call("POST", "/segments/refresh", {"segment_ids": ["older", "nope"]})
    assert (status, body["error"]["path"]) == (404, "segment_ids[1]")
    assert api.call("POST", "/segments/refresh", {})[0] == 400
    assert "older" in api.ok("POST", "/segments/refresh", {"all": True})["segment_ids"]
    api.ok("DELETE", "/segments/older-gold")
    assert api.ok("POST", "/segments/older/deactivate")["changed"] is True
    assert people.members("older") == set()
    assert api.ok("GET", "/segments/older")["members"] == 0
    assert api.ok("DELETE", "/segments/older") == {"segment_id": "older", "deleted": True}
    assert api.call("GET", "/segments/older")[0] == 404


def test_members_list_profiles_and_fields(people: ApiHarness) -> None:
    api = people.api
    body = api.ok("GET", "/segments/known/members?limit=7")
    assert len(body["members"]) == 7
    assert body["total"] == 30
    assert body["fields"] == ["age", "tier"]
    member = body["members"][0]
    assert set(member["attributes"]) == {"age", "tier"}
    body = api.ok("GET", "/segments/known/members")
    assert {m["customer_id"] for m in body["members"]} == {f"p{i}" for i in range(30)}


def test_estimate_matches_members_after_activation(people: ApiHarness) -> None:
    api = people.api
    silver = {"attr": "tier", "op": "eq", "value": "silver"}
    candidate = definition(
        "young-silver", {"all": [silver, {"attr": "age", "op": "lt", "value": 40}]}
    )
    estimate = api.ok("POST", "/segments/estimate", {"segment": candidate})
    assert estimate["customers"] >= 30
    assert api.call("GET", "/segments/young-silver")[0] == 404  # nothing saved
    created = api.ok("POST", "/segments", {"segment": candidate, "activate": True}, status=201)
    assert created["members"]["young-silver"] == estimate["estimate"] == 7
    # in_segment sees the profiles' current memberships
    nested = definition("in-young-silver", {"in_segment": "young-silver"})
    assert api.ok("POST", "/segments/estimate", {"segment": nested})["estimate"] == 7
    status, body = api.call(
        "POST", "/segments/estimate", {"segment": definition("x", {"attr": "a", "op": "gt"})}
    )
    assert status == 400
    assert body["error"]["path"].startswith("segment.rules[0].where")
    status, body = api.call(
        "POST", "/segments/estimate", {"segment": definition("x", {"in_segment": "nope"})}
    )
    assert (status, body["error"]["code"]) == (400, "missing_segment")


def test_attribute_stats(people: ApiHarness) -> None:
    api = people.api
    tiers = api.ok("GET", "/attributes/tier/stats")
    assert tiers["kind"] == "categorical"
    assert tiers["present"] == 30
    assert sorted((t["value"], t["customers"]) for t in tiers["top"]) == [
        ("bronze", 10),
        ("gold", 10),
        ("silver", 10),
    ]
    ages = api.ok("GET", "/attributes/age/stats")
    assert ages["kind"] == "numeric"
    assert ages["percentiles"]["p0"] == 20
    assert ages["percentiles"]["p100"] == 49
    assert ages["percentiles"]["p50"] == 34.5
    assert api.ok("GET", "/attributes/nothing/stats")["kind"] == "absent"


def test_trend_points_from_snapshots(people: ApiHarness) -> None:
    api = people.api
    deadline = time.monotonic() + 20
    points: list[dict[str, int]] = []
    while time.monotonic() < deadline:
        points = api.ok("GET", "/segments/known/trend")["points"]
        if len(points) >= 2 and points[-1]["members"] == 30:
            break
        time.sleep(0.3)
    assert points[-1]["members"] == 30
    assert [p["at"] for p in points] == sorted(p["at"] for p in points)
    start = points[-1]["at"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start / 1000))
    recent = api.ok("GET", f"/segments/known/trend?from={iso}Z")["points"]
    assert recent and all(p["at"] >= start - 1000 for p in recent)
    assert api.ok("GET", f"/segments/known/trend?from={iso}+00:00")["points"] == recent
    assert api.ok("GET", f"/segments/known/trend?to={points[0]['at'] - 1}")["points"] == []


def test_csv_streams_thousands_and_escapes_formulas(people: ApiHarness) -> None:
    h = people
    bulk = definition("bulk", {"attr": "batch", "op": "eq", "value": 1})
    h.api.ok("POST", "/segments", {"segment": bulk, "activate": True}, status=201)
    profiles = {f"b{i:05d}": {"batch": 1, "note": f"n{i}"} for i in range(3000)}
    profiles["b00000"] = {"batch": 1, "note": '=HYPERLINK("http://x")', "score": -5}
    profiles["b00001"] = {"batch": 1, "note": "+1", "city": "@home"}
    profiles["b00002"] = {"batch": 1, "note": "-2", "city": "\tx", "=cmd|' /C calc'!A0": 1}
    h.populate("bulk", profiles)
    status, raw, headers = h.api.raw("GET", "/segments/bulk/members.csv")
    assert status == 200
    assert headers["Content-Type"].startswith("text/csv")
    assert headers.get("Transfer-Encoding") == "chunked"  # streamed, no Content-Length
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert len(rows) == 3000
    # the header is escaped too: attribute names come from whoever sends events
    assert list(rows[0]) == ["customer_id", "'=cmd|' /C calc'!A0", "batch", "city", "note", "score"]
    assert not raw.startswith(UTF8_BOM)
    by_id = {r["customer_id"]: r for r in rows}
    assert by_id["b00000"]["note"] == '\'=HYPERLINK("http://x")'
    assert by_id["b00000"]["score"] == "-5"  # numbers are data, not formulas
    assert by_id["b00001"]["note"] == "'+1"
    assert by_id["b00001"]["city"] == "'@home"
    assert by_id["b00002"]["note"] == "'-2"
    assert by_id["b00002"]["city"] == "'\tx"
    assert by_id["b02999"]["note"] == "n2999"
    assert by_id["b02999"]["city"] == ""


def test_csv_download_with_a_byte_order_mark_on_request(people: ApiHarness) -> None:
    h = people
    bom = definition("bom", {"attr": "bom", "op": "exists"})
    h.api.ok("POST", "/segments", {"segment": bom, "activate": True}, status=201)
    h.populate("bom", {"bom-1": {"bom": "Köln"}})
    status, raw, _ = h.api.raw("GET", "/segments/bom/members.csv?bom=1")
    assert status == 200
    assert raw.startswith(UTF8_BOM)
    assert raw[len(UTF8_BOM) :].decode() == "customer_id,bom\r\nbom-1,Köln\r\n"
    status, body = h.api.call("GET", "/segments/bom/members.csv?bom=maybe")
    assert (status, body["error"]["code"], body["error"]["path"]) == (400, "invalid_value", "bom")


def test_openapi_served(people: ApiHarness) -> None:
    doc = people.api.ok("GET", "/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert "/segments/{id}/members.csv" in doc["paths"]
