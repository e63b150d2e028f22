"""Rename, duplicate, schedules and refresh schedules through the HTTP API, end to end."""

from __future__ import annotations

import time

import pytest

from .fixtures import ApiHarness, definition


def _now() -> int:
    return int(time.time() * 1000)


@pytest.fixture(scope="module")
def made(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    for sid in ("api-a", "api-b"):
        body = {"segment": definition(sid, {"attr": "lvl", "op": "gte", "value": 2})}
        h.api.ok("POST", "/segments", body, status=201)
    return h


def test_mutations_need_the_token(made: ApiHarness) -> None:
    api = made.api
    calls = [
        ("POST", "/segments/api-a/rename", {"name": "X"}),
        ("POST", "/segments/api-a/duplicate", {"new_id": "api-x"}),
        ("POST", "/segments/api-a/schedules", {"action": "activate", "at": _now() + 60_000}),
        ("DELETE", "/schedules/whatever", None),
        ("POST", "/refresh-schedules", {"all": True, "cron": "0 6 * * *", "timezone": "UTC"}),
        ("DELETE", "/refresh-schedules/whatever", None),
    ]
    for method, path, body in calls:
        status, answer = api.call(method, path, body, token=None)
        assert (status, answer["error"]["code"]) == (401, "missing_token"), (path, answer)
    status, answer = api.call("GET", "/refresh-schedules", token=None)  # reads too, by default
    assert (status, answer["error"]["code"]) == (401, "missing_token")
    assert api.call("GET", "/refresh-schedules")[0] == 200


def test_rename_and_duplicate(made: ApiHarness) -> None:
    api = made.api
    renamed = api.ok("POST", "/segments/api-a/rename", {"name": "Level two"})
    assert renamed["segment"]["definition"]["name"] == "Level two"
    assert api.ok("GET", "/segments/api-a")["name"] == "Level two"
    status, clash = api.call("POST", "/segments/api-b/rename", {"name": "level TWO"})
    assert (status, clash["error"]["code"], clash["error"]["path"]) == (409, "name_clash", "name")
    status, missing = api.call("POST", "/segments/api-zz/rename", {"name": "Q"})
    assert (status, missing["error"]["code"]) == (404, "not_found")
    status, empty = api.call("POST", "/segments/api-b/rename", {})
    assert (status, empty["error"]["code"]) == (400, "missing_field")
    copy = api.ok(
        "POST",
        "/segments/api-a/duplicate",
        {"new_id": "api-c", "segment": {"tags": ["copy"]}},
        status=201,
    )
    assert copy["segment"]["active"] is False
    shown = api.ok("GET", "/segments/api-c")
    assert (shown["name"], shown["tags"], shown["state"]) == (
        "Level two (copy)",
        ["copy"],
        "inactive",
    )
    status, exists = api.call("POST", "/segments/api-a/duplicate", {"new_id": "api-b"})
    assert (status, exists["error"]["code"]) == (409, "already_exists")


def test_one_shot_schedules_listed_cancelled_and_carried_out(made: ApiHarness) -> None:
    api = made.api
    far = api.ok(
        "POST",
        "/segments/api-b/schedules",
        {"action": "deactivate", "at": "2099-06-01T12:00:00+02:00"},
        status=201,
    )["schedule"]
    soon_at = _now() + 1500
    soon = api.ok(
        "POST", "/segments/api-b/schedules", {"action": "activate", "at": soon_at}, status=201
    )["schedule"]
    listed = api.ok("GET", "/segments/api-b")["schedules"]
    assert [s["schedule_id"] for s in listed] == [soon["schedule_id"], far["schedule_id"]]
    assert api.ok("GET", "/segments/api-b/schedules")["schedules"] == listed
    status, past = api.call("POST", "/segments/api-b/schedules", {"action": "activate", "at": 5})
    assert (status, past["error"]["code"], past["error"]["path"]) == (400, "in_past", "at")
    status, unknown = api.call(
        "POST", "/segments/api-q/schedules", {"action": "activate", "at": _now() + 60_000}
    )
    assert (status, unknown["error"]["code"]) == (404, "not_found")
    removed = api.ok("DELETE", f"/schedules/{far['schedule_id']}")
    assert removed["removed"] is True
    status, gone = api.call("DELETE", f"/schedules/{far['schedule_id']}")
    assert (status, gone["error"]["code"]) == (404, "not_found")
    deadline = time.monotonic() + 20
    while api.ok("GET", "/segments/api-b")["state"] != "active":
        assert time.monotonic() < deadline, "scheduled activation did not happen"
        time.sleep(0.1)
    assert api.ok("GET", "/segments/api-b")["schedules"] == []


def test_refresh_schedules(made: ApiHarness) -> None:
    api = made.api
    body = {"segment_ids": ["api-a"], "cron": "0 6,12,18 * * *", "timezone": "Europe/Berlin"}
    created = api.ok("POST", "/refresh-schedules", body, status=201)["refresh_schedule"]
    assert created["next_at"] > _now()
    every = api.ok(
        "POST",
        "/refresh-schedules",
        {"all": True, "cron": "*/15 * * * *", "timezone": "UTC"},
        status=201,
    )["refresh_schedule"]
    listed = api.ok("GET", "/refresh-schedules")["refresh_schedules"]
    assert {r["schedule_id"] for r in listed} == {created["schedule_id"], every["schedule_id"]}
    shown = api.ok("GET", "/segments/api-a")["refresh_schedules"]
    assert {r["schedule_id"] for r in shown} == {created["schedule_id"], every["schedule_id"]}
    assert [r["schedule_id"] for r in api.ok("GET", "/segments/api-b")["refresh_schedules"]] == [
        every["schedule_id"]
    ]
    for bad, code, path in (
        ({**body, "cron": "0 6 * *"}, "bad_cron", "cron"),
        ({**body, "cron": "0 6 * * mon-fry"}, "bad_cron", "cron"),
        ({**body, "timezone": "Europe/Berlim"}, "bad_timezone", "timezone"),
        ({**body, "segment_ids": ["nope"]}, "not_found", "segment_ids[0]"),
        ({"cron": "0 6 * * *", "timezone": "UTC"}, "missing_field", "segment_ids"),
    ):
        status, answer = api.call("POST", "/refresh-schedules", bad)
        assert (answer["error"]["code"], answer["error"]["path"]) == (code, path), answer
        assert status == (404 if code == "not_found" else 400)
    api.ok("DELETE", f"/refresh-schedules/{every['schedule_id']}")
    status, gone = api.call("DELETE", f"/refresh-schedules/{every['schedule_id']}")
    assert (status, gone["error"]["code"]) == (404, "not_found")
    listed = api.ok("GET", "/refresh-schedules")["refresh_schedules"]
    assert [r["schedule_id"] for r in listed] == [created["schedule_id"]]
