"""The exports API end to end: manage, run, the exports of a segment; secrets stay masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from state._codec import unpack

from .fixtures import ApiHarness, definition

SECRET = "s3cret-signing-key"


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    for sid in ("api-x", "api-y"):
        body = {"segment": definition(sid, {"attr": "axp", "op": "exists"}), "activate": True}
        h.api.ok("POST", "/segments", body, status=201)
    h.populate("api-x", {"ax1": {"axp": 1}, "ax2": {"axp": 2}})
    return h


def test_manage_exports_with_masked_secrets(world: ApiHarness) -> None:
    api = world.api
    hook = {"id": "api-hook", "name": "Hook", "segments": ["api-x"],
            "destination": {"type": "webhook", "url": "https://crm.example.com/h",
                            "secret": SECRET}}  # fmt: skip
    status, _ = api.call("POST", "/exports", hook, token=None)
    assert status == 401
    created = api.ok("POST", "/exports", hook, status=201)["export"]
    assert created["destination"]["secret"] == "***"
    listed = api.ok("GET", "/exports")
    assert SECRET not in str(listed) and [e["id"] for e in listed["exports"]] == ["api-hook"]
    shown = api.ok("GET", "/exports/api-hook")
    assert shown["destination"]["secret"] == "***" and shown["segments"] == ["api-x"]
    # a PUT sending the mask back keeps the stored secret
    shown["name"] = "Hook 2"
    edited = {k: shown[k] for k in ("id", "name", "segments", "destination")}
    assert api.ok("PUT", "/exports/api-hook", edited)["export"]["name"] == "Hook 2"
    stored = unpack(world.redis.hget(world.keys.registry.exports, "api-hook"))
    assert stored["definition"]["destination"]["secret"] == SECRET
    copy = api.ok("POST", "/exports/api-hook/duplicate", {"new_id": "api-hook2"}, status=201)
    assert copy["export"]["name"] == "Hook 2 (copy)" and SECRET not in str(copy)
    status, error = api.call("POST", "/exports", hook)
    assert (status, error["error"]["code"]) == (409, "already_exists")
    bad = {**hook, "id": "api-bad", "segments": ["api-nope"]}
    status, error = api.call("POST", "/exports", bad)
    assert (status, error["error"]["path"]) == (404, "export.segments[0]")
    # the exports of a segment, and adding / removing it
    grouped = api.ok("GET", "/segments/api-y/exports")
    assert grouped["containing"] == [] and len(grouped["not_containing"]) == 2
    api.ok("POST", "/exports/api-hook/segments", {"segment_id": "api-y"})
    grouped = api.ok("GET", "/segments/api-y/exports")
    assert [e["id"] for e in grouped["containing"]] == ["api-hook"]
    assert [e["id"] for e in grouped["not_containing"]] == ["api-hook2"]
    api.ok("DELETE", "/exports/api-hook/segments/api-y")
    assert api.ok("GET", "/segments/api-y/exports")["containing"] == []
    status, _ = api.call("GET", "/segments/api-none/exports")
    assert status == 404
    api.ok("DELETE", "/exports/api-hook2")
    assert api.call("GET", "/exports/api-hook2")[0] == 404


def test_run_an_export_over_http(world: ApiHarness, tmp_path: Path) -> None:
    api = world.api
    export = {"id": "api-files", "name": "Files", "segments": ["api-x"],
              "destination": {"type": "files", "directory": str(tmp_path)}}  # fmt: skip
    api.ok("POST", "/exports", export, status=201)
    started = api.ok("POST", "/exports/api-files/run", status=202)
    assert started["job"]["job_id"] and started["export_id"] == "api-files"
    done = api.ok("POST", "/exports/api-files/run?wait=1", status=202)
    assert done["job"]["status"] == "Successful" and done["tasks"]["api-x"]["count"] == 2
    job = api.ok("GET", f"/jobs/{done['job']['job_id']}")
    assert job["command"] == "export"
    assert api.ok("GET", "/exports/api-files")["last_run"]["status"] == "Successful"
    assert len(list(tmp_path.rglob("*.csv"))) == 2
