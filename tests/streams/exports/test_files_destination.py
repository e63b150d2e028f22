"""Files destination on the local file system: layout, manifest, escaping, atomicity."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from state.reads import StateReads
from streams.exports import ExportContext, ExportDefinition, parse_export, run_export_segment

from .fixtures import put_customers

AT_MS = 1_767_323_045_000  # 2026-01-02T03:04:05Z


def _export(directory: Path, fmt: str, attributes: list[str] | None = None) -> ExportDefinition:
    return parse_export(
        {
            "id": "files-out",
            "name": "Files",
            "segments": ["seg"],
            "attributes": attributes,
            "destination": {"type": "files", "directory": str(directory), "format": fmt},
        }
    )


def _visible(root: Path) -> list[str]:
    """Every file a reader would look at (temporary folders excluded)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".tmp-") for part in p.parts)
    )


async def test_csv_layout_manifest_and_formula_escaping(ctx: ExportContext, tmp_path: Path) -> None:
    ctx.now_ms = lambda: AT_MS
    customers: dict[str, dict[str, Any]] = {
        "c1": {"name": '=HYPERLINK("http://evil")', "score": -3, "vip": True},
        "c2": {"name": "+cmd", "city": "Köln"},
        "c3": {"name": "plain", "tags": ["a", "b"]},
        "c4": {"name": "not a member"},
    }
    members = {"c1": True, "c2": True, "c3": True, "c4": False}
    await put_customers(ctx.redis, ctx.keyspace, customers, members)
    result = await run_export_segment(ctx, _export(tmp_path, "csv"), "seg", "r1")
    assert (result.status, result.count) == ("Successful", 3)

    folder = tmp_path / "files-out" / "seg" / "2026" / "01" / "02" / "0304"
    assert _visible(tmp_path) == [
        "files-out/seg/2026/01/02/0304/manifest.json",
        "files-out/seg/2026/01/02/0304/part-r1.csv",
    ]
    assert not list(folder.parent.glob(".tmp-*"))
    data = (folder / "part-r1.csv").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest == {
        "run_id": "r1",
        "export_id": "files-out",
        "segment_id": "seg",
        "count": 3,
        "columns": ["customer_id", "city", "name", "score", "tags", "vip"],
        "format": "csv",
        "file": "part-r1.csv",
        "sha256": hashlib.sha256(data).hexdigest(),
        "created_at": AT_MS,
    }
    rows = {r["customer_id"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
    assert set(rows) == {"c1", "c2", "c3"}
    assert rows["c1"]["name"] == '\'=HYPERLINK("http://evil")'
    assert rows["c1"]["score"] == "-3"  # a negative number is data
    assert rows["c1"]["vip"] == "true"
    assert rows["c2"]["name"] == "'+cmd" and rows["c2"]["city"] == "Köln"
    assert rows["c3"]["tags"] == '["a", "b"]' and rows["c3"]["city"] == ""


async def test_jsonl_with_chosen_attributes(ctx: ExportContext, tmp_path: Path) -> None:
    ctx.now_ms = lambda: AT_MS
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1, "y": 2}, "b": {"y": 3}})
    export = _export(tmp_path, "jsonl", ["y", "missing"])
    result = await run_export_segment(ctx, export, "seg", "r2")
    assert result.status == "Successful"
    folder = tmp_path / "files-out" / "seg" / "2026" / "01" / "02" / "0304"
    lines = (folder / "part-r2.jsonl").read_text().splitlines()
    assert sorted(lines) == [
        '{"customer_id": "a", "attributes": {"y": 2}}',
        '{"customer_id": "b", "attributes": {"y": 3}}',
    ]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["columns"] == ["customer_id", "y", "missing"]
    assert manifest["sha256"] == hashlib.sha256((folder / "part-r2.jsonl").read_bytes()).hexdigest()


async def test_a_failure_mid_write_leaves_nothing_under_the_final_path(
    ctx: ExportContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.now_ms = lambda: AT_MS
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i:03d}": {"n": i} for i in range(30)})
    real = StateReads.profiles
    calls = 0

    async def failing(self: StateReads, partition: int, ids: list[str]) -> object:
        nonlocal calls
        calls += 1
        if calls > 2:  # some rows are already written to the temporary file
            raise ConnectionError("redis went away mid-export")
        return await real(self, partition, ids)

    monkeypatch.setattr(StateReads, "profiles", failing)
    export = _export(tmp_path, "csv", ["n"])
    result = await run_export_segment(ctx, export, "seg", "r3")
    assert result.status == "Failure"
    assert "redis went away" in (result.reason or "")
    final = tmp_path / "files-out" / "seg" / "2026" / "01" / "02" / "0304"
    assert not final.exists()
    assert _visible(tmp_path) == []
    assert not list(final.parent.glob(".tmp-*"))  # cleaned up after the failure

    monkeypatch.setattr(StateReads, "profiles", real)
    again = await run_export_segment(ctx, export, "seg", "r4")
    assert (again.status, again.count) == ("Successful", 30)
    assert _visible(tmp_path) == [
        "files-out/seg/2026/01/02/0304/manifest.json",
        "files-out/seg/2026/01/02/0304/part-r4.csv",
    ]


async def test_a_second_run_in_the_same_minute_replaces_the_manifest(
    ctx: ExportContext, tmp_path: Path
) -> None:
    ctx.now_ms = lambda: AT_MS
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1}})
    export = _export(tmp_path, "csv")
    assert (await run_export_segment(ctx, export, "seg", "r5")).status == "Successful"
    await put_customers(ctx.redis, ctx.keyspace, {"b": {"x": 2}})
    assert (await run_export_segment(ctx, export, "seg", "r6")).count == 2
    folder = tmp_path / "files-out" / "seg" / "2026" / "01" / "02" / "0304"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["run_id"], manifest["file"], manifest["count"]) == ("r6", "part-r6.csv", 2)
    assert manifest["sha256"] == hashlib.sha256((folder / "part-r6.csv").read_bytes()).hexdigest()
