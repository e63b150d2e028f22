"""Files destination on the local file system: layout, manifest, escaping, atomicity."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from state.reads import StateReads
from streams.csv_safe import UTF8_BOM
from streams.exports import ExportContext, ExportDefinition, parse_export, run_export_segment

from .fixtures import put_customers

AT_MS = 1_767_323_045_000  # 2026-01-02T03:04:05Z


def _export(
    directory: Path | str, fmt: str, attributes: list[str] | None = None, **options: Any
) -> ExportDefinition:
    destination = {"type": "files", "directory": str(directory), "format": fmt, **options}
    return parse_export(
        {
            "id": "files-out",
            "name": "Files",
            "segments": ["seg"],
            "attributes": attributes,
            "destination": destination,
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
    assert not list(folder.parents[3].glob(".tmp-*"))  # the segment's folder holds them
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
    assert not list(final.parents[3].glob(".tmp-*"))  # cleaned up after the failure

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


def _modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*")}


async def test_files_are_private_to_the_worker(ctx: ExportContext, tmp_path: Path) -> None:
    ctx.now_ms = lambda: AT_MS
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"email": "a@example.com"}})
    result = await run_export_segment(ctx, _export("crm", "csv"), "seg", "r1")
    assert result.status == "Successful"
    modes = _modes(tmp_path)
    assert modes["crm/files-out/seg/2026/01/02/0304/part-r1.csv"] == 0o600
    assert modes["crm/files-out/seg/2026/01/02/0304/manifest.json"] == 0o600
    folders = {path: mode for path, mode in modes.items() if (tmp_path / path).is_dir()}
    assert len(folders) == 7 and set(folders.values()) == {0o700}  # crm .. 0304


async def test_a_directory_outside_the_export_root_fails_the_run(
    ctx: ExportContext, tmp_path: Path
) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1}})
    result = await run_export_segment(ctx, _export(outside, "csv"), "seg", "r1")
    assert result.status == "Failure"
    assert "outside the export root" in (result.reason or "")
    assert not outside.exists()


async def test_a_symbolic_link_below_the_root_is_never_followed(
    ctx: ExportContext, tmp_path: Path
) -> None:
    # a link placed where the export's folder goes (after the definition was checked)
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "files-out").symlink_to(outside)
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1}})
    result = await run_export_segment(ctx, _export("crm", "csv"), "seg", "r1")
    assert result.status == "Failure"
    assert "symbolic link" in (result.reason or "") and "files-out" in (result.reason or "")
    assert list(outside.iterdir()) == []


async def test_leftover_temporary_folders_are_removed(ctx: ExportContext, tmp_path: Path) -> None:
    ctx.now_ms = lambda: AT_MS
    segment = tmp_path / "files-out" / "seg"
    stale, fresh = segment / ".tmp-0300-crashed", segment / ".tmp-0304-running"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "part.csv").write_text("half a file")
    two_hours_ago = time.time() - 7200
    for path in (stale / "part.csv", stale):
        os.utime(path, (two_hours_ago, two_hours_ago))
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"x": 1}})
    assert (await run_export_segment(ctx, _export(tmp_path, "csv"), "seg", "r1")).count == 1
    assert sorted(p.name for p in segment.glob(".tmp-*")) == [fresh.name]  # may be another run's


async def test_csv_header_is_escaped_and_a_bom_is_optional(
    ctx: ExportContext, tmp_path: Path
) -> None:
    ctx.now_ms = lambda: AT_MS
    await put_customers(ctx.redis, ctx.keyspace, {"a": {"=1+1": "x", "+ok": 2}})
    plain = await run_export_segment(ctx, _export("plain", "csv"), "seg", "r1")
    with_bom = await run_export_segment(ctx, _export("bom", "csv", bom=True), "seg", "r2")
    data = Path(plain.details["path"]).read_bytes()
    assert data == b"customer_id,'+ok,'=1+1\r\na,2,x\r\n"
    assert Path(with_bom.details["path"]).read_bytes() == UTF8_BOM + data
    assert json.loads(Path(with_bom.details["manifest"]).read_text())["sha256"] == (
        hashlib.sha256(UTF8_BOM + data).hexdigest()
    )
