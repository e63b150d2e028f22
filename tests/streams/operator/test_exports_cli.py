"""`segments exports ...`, `segments export run` and `segments exports-for` end to end: the
manage-exports flow, and secrets never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ..web.fixtures import ApiHarness, definition
from .fixtures import Run

SECRET = "cli-signing-secret"


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    body = {"segment": definition("cx-a", {"attr": "cxa", "op": "exists"}), "activate": True}
    h.api.ok("POST", "/segments", body, status=201)
    h.api.ok("POST", "/segments", {"segment": definition("cx-b", {"attr": "b", "op": "exists"})},
             status=201)  # fmt: skip
    h.populate("cx-a", {"cx1": {"cxa": 1}, "cx2": {"cxa": 2}, "cx3": {"cxa": 3}})
    return h


def test_manage_and_run_exports(run: Run, tmp_path: Path) -> None:
    files = tmp_path / "files.yaml"
    files.write_text(
        f"id: cx-files\nname: Files\nsegments: [cx-a]\nattributes: [cxa]\n"
        f"destination: {{type: files, directory: {tmp_path / 'out'}, format: jsonl}}\n"
    )
    code, out, err = run("exports", "create", "-f", str(files))
    assert (code, err) == (0, ""), err
    assert out == f"created export 'cx-files' (files:{tmp_path / 'out'}; segments cx-a)\n"
    hook = tmp_path / "hook.json"
    hook.write_text(json.dumps({"id": "cx-hook", "name": "Hook", "segments": ["cx-b"],
                                "destination": {"type": "webhook", "url": "https://x.example/h",
                                                "secret": SECRET}}))  # fmt: skip
    assert run("exports", "create", "-f", str(hook))[0] == 0
    code, out, _ = run("exports", "list")
    assert code == 0 and "cx-files" in out and "cx-hook" in out and SECRET not in out
    code, out, _ = run("exports", "show", "cx-hook")
    assert code == 0 and '"secret": "***"' in out and SECRET not in out
    code, out, _ = run("--json", "exports", "show", "cx-hook")
    assert SECRET not in out
    code, out, _ = run("exports", "duplicate", "cx-hook", "cx-hook2", "--name", "Hook B")
    assert code == 0
    assert (
        out
        == "copied 'cx-hook' to export 'cx-hook2' (webhook:https://x.example/h; segments cx-b)\n"
    )
    code, out, err = run("exports", "create", "-f", str(hook))
    assert code == 1 and "already_exists" in err
    # the exports of a segment: add, remove, new
    code, out, _ = run("exports-for", "cx-a")
    assert code == 0 and out.index("cx-files") < out.index("not containing")
    assert run("exports-for", "cx-a", "--add", "cx-hook") == (
        0, "added 'cx-a' to export 'cx-hook'\n", ""
    )  # fmt: skip
    code, out, _ = run("--json", "exports-for", "cx-a")
    body = json.loads(out)
    assert [e["id"] for e in body["containing"]] == ["cx-files", "cx-hook"]
    assert run("exports-for", "cx-a", "--remove", "cx-hook")[0] == 0
    new = tmp_path / "new.yaml"
    new.write_text(f"id: cx-new\nname: New\nsegments: []\n"
                   f"destination: {{type: files, directory: {tmp_path / 'new'}}}\n")  # fmt: skip
    code, out, err = run("exports-for", "cx-b", "--new", "-f", str(new))
    assert (code, out) == (0, "created export 'cx-new' containing 'cx-b'\n"), err
    code, _, err = run("exports-for", "cx-b", "--add", "cx-nope")
    assert code == 1 and "not_found" in err
    # run: started, then waited for
    code, out, _ = run("export", "run", "cx-files")
    assert code == 0 and out.startswith("export 'cx-files' started: job ")
    code, out, _ = run("export", "run", "cx-files", "--wait")
    assert code == 0 and out.startswith("export 'cx-files': Successful (job ")
    assert "  cx-a: Successful, 3 profiles in " in out
    data = sorted((tmp_path / "out").rglob("*.jsonl"))[-1]
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert sorted(r["customer_id"] for r in rows) == ["cx1", "cx2", "cx3"]
    # update, remove
    files.write_text(files.read_text().replace("name: Files", "name: Files 2"))
    code, out, _ = run("exports", "update", "-f", str(files))
    assert code == 0 and out.startswith("updated export 'cx-files'")
    for export_id in ("cx-hook", "cx-hook2", "cx-new"):
        assert run("exports", "remove", export_id) == (0, f"removed export {export_id!r}\n", "")
    code, out, _ = run("exports", "list")
    assert "cx-hook" not in out and "cx-files" in out
