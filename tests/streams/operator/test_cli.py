"""The `segments` CLI end to end: a worker with the API, the CLI in process (and once as a
subprocess), every subcommand and its failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..web.fixtures import TOKEN, ApiHarness
from .fixtures import Run


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    everyone = {"id": "all", "name": "All", "rules": [{"where": {"attr": "age", "op": "exists"}}]}
    h.api.ok("POST", "/segments", {"segment": everyone, "activate": True}, status=201)
    profiles = {
        f"u{i:03d}": {"age": 18 + i % 50, "plan": ["free", "pro"][i % 2]} for i in range(200)
    }
    profiles["u000"]["plan"] = "=cmd|' /C calc'!A0"
    h.populate("all", profiles)
    return h


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


YAML = """\
id: adults
name: Adults
tags: [age, demo]
rules:
  - where: {attr: age, op: gte, value: 40}
"""


def test_create_show_list_update_lifecycle(run: Run, tmp_path: Path) -> None:
    file = _write(tmp_path, "adults.yaml", YAML)
    code, out, _ = run("estimate", "-f", file)
    assert code == 0
    assert "estimate of 'adults': 112 of 200 customers (56.0%)" in out
    code, out, _ = run("create", "-f", file, "--activate")
    assert (code, out.splitlines()[0]) == (
        0,
        "created segment 'adults' (version 1, active, 112 members)",
    )
    code, out, err = run("create", "-f", file)
    assert code == 1
    assert "already_exists at segment.id" in err and "HTTP 409" in err
    code, out, _ = run("list", "--tag", "demo")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "TYPE", "STATE", "MEMBERS"]
    assert lines[2].split()[:5] == ["adults", "Adults", "dynamic", "active", "112"]
    code, out, _ = run("--json", "list", "--name", "adult")
    assert [s["id"] for s in json.loads(out)["segments"]] == ["adults"]
    code, out, _ = run("show", "adults")
    assert code == 0 and "members:      112" in out and '"op": "gte"' in out and "activate" in out
    rules = [{"where": {"attr": "age", "op": "gte", "value": 60}}]
    wrapped = {"segment": {"id": "adults", "name": "Adults", "rules": rules}}
    changed = _write(tmp_path, "adults.json", json.dumps(wrapped))
    code, out, _ = run("update", "-f", changed)
    assert (code, out.strip()) == (0, "updated segment 'adults' (version 2, active, 32 members)")
    code, out, _ = run("show", "adults", "--json")
    assert json.loads(out)["version"] == 2
    code, out, _ = run("deactivate", "adults")
    assert (code, out.strip()) == (0, "deactivated segment 'adults'")
    code, out, _ = run("deactivate", "adults")
    assert out.strip() == "segment 'adults' was already deactivated"
    code, out, _ = run("activate", "adults")
    assert (code, out.strip()) == (0, "activated segment 'adults' (32 members)")
    code, out, _ = run("refresh", "adults", "all")
    assert code == 0 and "refreshed 'adults': 32 members" in out
    code, out, _ = run("refresh", "--all", "--json")
    assert set(json.loads(out)["segment_ids"]) >= {"adults", "all"}
    code, out, _ = run("delete", "adults")
    assert (code, out.strip()) == (0, "deleted segment 'adults'")


def test_members_download_trend_and_quick(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("members", "all", "--limit", "5")
    assert code == 0
    assert out.splitlines()[0].split() == ["CUSTOMER", "age", "plan"]
    assert "(5 shown of 200)" in out
    target = tmp_path / "all.csv"
    code, out, _ = run("download", "all", "-o", str(target))
    assert (code, out.strip()) == (
        0,
        f"wrote 200 members ({target.stat().st_size} bytes) to {target}",
    )
    text = target.read_text()
    assert text.splitlines()[0] == "customer_id,age,plan"
    assert "u000,18,'=cmd|' /C calc'!A0" in text
    assert not (tmp_path / "all.csv.part").exists()
    marked = tmp_path / "bom.csv"
    assert run("download", "all", "-o", str(marked), "--bom")[0] == 0
    assert marked.read_bytes() == "\ufeff".encode() + target.read_bytes()
    code, out, _ = run("trend", "all", "--since", "1h")
    assert code == 0
    assert out.startswith("all: ")  # snapshots every second in this worker
    code, out, _ = run("quick", "plan")
    assert code == 0
    assert "plan: on 200 of 200 customers (categorical)" in out
    assert any(line.startswith("pro ") and "100" in line for line in out.splitlines())
    code, out, _ = run("quick", "age", "--op", "lt", "--value", "30")
    assert code == 0
    assert "p0" in out and "p100" in out
    assert "estimate of age lt 30: 48 of 200 customers (24.0%)" in out
    code, out, _ = run("quick", "plan", "--op", "in", "--value", '["pro"]', "--json")
    assert json.loads(out)["estimate"]["estimate"] == 100


def test_failures_exit_with_clear_messages(run: Run, tmp_path: Path, world: ApiHarness) -> None:
    code, _, err = run("show", "nope")
    assert code == 1
    assert "not_found" in err and "no segment 'nope'" in err and "HTTP 404" in err
    rules = [{"where": {"attr": "x", "op": "equals", "value": 1}}]
    bad = _write(tmp_path, "bad.json", json.dumps({"id": "b", "name": "B", "rules": rules}))
    code, _, err = run("create", "-f", bad)
    assert code == 1
    assert "unknown_op at segment.rules[0].where.op" in err and "did you mean 'eq'" in err
    code, _, err = run("estimate", "-f", bad)
    assert code == 1 and "HTTP 400" in err
    code, _, err = run("--token", "", "delete", "all")
    assert code == 1 and "missing_token" in err and "hint: pass --token" in err
    code, _, err = run("create", "-f", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err
    code, _, err = run("create", "-f", _write(tmp_path, "x.json", "{oops"))
    assert code == 2 and "not valid JSON" in err
    code, _, err = run("refresh")
    assert code == 2 and "--all" in err
    code, _, err = run("trend", "all", "--since", "soon")
    assert code == 2 and "7d" in err
    code, _, err = run("members")  # argparse: the id is missing
    assert code == 2 and "required" in err
    code, out, _ = run("quick", "--help")
    assert code == 0 and "--op" in out
    code, _, err = run("--url", "http://127.0.0.1:9", "list")
    assert code == 1
    assert "cannot reach the livesegments API at http://127.0.0.1:9" in err
    assert "a worker must be running" in err


def test_console_entry_point_runs(world: ApiHarness) -> None:
    argv = [sys.executable, "-m", "streams.operator.cli", "--url", world.url, "list", "--json"]
    env = {k: v for k, v in os.environ.items() if k != "LS_API_TOKEN"}
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert refused.returncode == 1  # reads need the token by default
    assert "missing_token" in refused.stderr and "hint: pass --token" in refused.stderr
    env["LS_API_TOKEN"] = TOKEN  # the CLI sends it on reads too
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == 0, done.stderr
    assert "all" in {s["id"] for s in json.loads(done.stdout)["segments"]}
