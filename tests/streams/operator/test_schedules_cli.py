"""The `segments` lifecycle subcommands end to end: rename, duplicate, schedule, unschedule,
refresh-schedule add/list/remove, and their failures."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ..web.fixtures import ApiHarness, definition
from .fixtures import Run


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    for sid in ("cli-a", "cli-b"):
        body = {"segment": definition(sid, {"attr": "n", "op": "exists"})}
        h.api.ok("POST", "/segments", body, status=201)
    return h


def test_rename_and_duplicate(run: Run, tmp_path: Path) -> None:
    assert run("rename", "cli-a", "Alpha") == (0, "renamed segment 'cli-a' to 'Alpha'\n", "")
    code, _out, err = run("rename", "cli-b", "alpha")
    assert code == 1
    assert "error name_clash at name: segment 'cli-a' is already named" in err
    assert "(HTTP 409)" in err
    code, _out, err = run("rename", "cli-zz", "Zed")
    assert (code, "error not_found" in err) == (1, True)
    overrides = tmp_path / "o.yaml"
    overrides.write_text("tags: [copied]\n")
    code, out, _err = run("duplicate", "cli-a", "cli-c", "--name", "Gamma", "-f", str(overrides))
    assert (code, out) == (0, "copied 'cli-a' to 'cli-c' ('Gamma', inactive)\n")
    code, out, _err = run("--json", "show", "cli-c")
    shown = json.loads(out)
    assert (shown["name"], shown["tags"], shown["state"]) == ("Gamma", ["copied"], "inactive")
    code, _out, err = run("duplicate", "cli-a", "cli-b")
    assert code == 1 and "error already_exists at new_id" in err


def test_schedule_show_unschedule_and_run(run: Run, world: ApiHarness) -> None:
    code, out, err = run("schedule", "cli-b", "--deactivate-at", "2099-01-01T00:00:00Z")
    assert code == 0, err
    schedule_id = out.split("(schedule ")[1].rstrip(")\n")
    assert "scheduled deactivate of 'cli-b' at 2099-01-01 00:00:00" in out
    code, out, _err = run("show", "cli-b")
    assert schedule_id in out and "deactivate" in out and "2099-01-01 00:00:00" in out
    assert run("unschedule", schedule_id)[0] == 0
    code, _out, err = run("unschedule", schedule_id)
    assert code == 1 and "error not_found" in err
    code, _out, err = run("schedule", "cli-b", "--activate-at", "2001-01-01T00:00:00Z")
    assert code == 1 and "error in_past at at" in err and "(HTTP 400)" in err
    code, _out, err = run("schedule", "cli-b")
    assert code == 2 and "--activate-at and/or --deactivate-at" in err
    code, out, err = run("schedule", "cli-b", "--activate-at", "+1s")
    assert code == 0, err
    deadline = time.monotonic() + 20
    while world.api.ok("GET", "/segments/cli-b")["state"] != "active":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_refresh_schedule_add_list_remove(run: Run) -> None:
    code, out, err = run(
        "refresh-schedule", "add", "cli-a", "cli-b", "--cron", "0 6,12,18 * * *",
        "--tz", "Europe/Berlin",
    )  # fmt: skip
    assert code == 0, err
    schedule_id = out.split()[2].rstrip(":")
    assert "'0 6,12,18 * * *' in Europe/Berlin, next run" in out
    code, out, _err = run("refresh-schedule", "list")
    assert schedule_id in out and "cli-a,cli-b" in out and "Europe/Berlin" in out
    code, out, _err = run("show", "cli-a")
    assert "refresh '0 6,12,18 * * *' (Europe/Berlin)" in out
    code, _out, err = run("refresh-schedule", "add", "--all", "--cron", "0 6 * *")
    assert code == 1 and "error bad_cron at cron" in err
    code, _out, err = run("refresh-schedule", "add", "--all", "--cron", "0 6 * * *", "--tz", "X/Y")
    assert code == 1 and "error bad_timezone at timezone" in err
    code, _out, err = run("refresh-schedule", "add", "--cron", "0 6 * * *")
    assert code == 2
    assert run("refresh-schedule", "remove", schedule_id)[0] == 0
    code, out, _err = run("--json", "refresh-schedule", "list")
    assert schedule_id not in out


def test_missing_token_is_refused(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LS_API_TOKEN")
    code, _out, err = run("rename", "cli-a", "Other")
    assert code == 1
    assert "error missing_token" in err and "hint: pass --token" in err
