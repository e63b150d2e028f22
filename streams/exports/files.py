"""Files destination: a CSV or JSON Lines file and its manifest per run, published atomically.

Layout: ``<directory>/<export>/<segment>/<yyyy>/<MM>/<dd>/<HHmm>/`` (UTC) holding
``part-<run_id>.csv|jsonl`` and ``manifest.json``. Both are written into
``<dd>/.tmp-<HHmm>-<run_id>/`` (same file system), flushed and fsynced, then the folder is
renamed into place with `os.replace`: a reader never sees a half-written file under the final
path. If the minute's folder already exists (a second run in the same minute) the data file
is moved in first and the manifest last, each by an atomic rename, so the manifest always
names a complete data file. A crash leaves at most a ``.tmp-*`` folder, never a partial file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..csv_safe import csv_cell
from ._members import member_rows, union_columns
from .context import ExportContext, SegmentRunResult
from .model import ExportDefinition, FilesDestination

__all__ = ["deliver_files", "run_folder"]


def run_folder(destination: FilesDestination, export_id: str, segment_id: str, at_ms: int) -> Path:
    """The final folder of a run started at `at_ms` (epoch ms, UTC)."""
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return (
        Path(destination.directory)
        / export_id
        / segment_id
        / f"{at:%Y}"
        / f"{at:%m}"
        / f"{at:%d}"
        / f"{at:%H%M}"
    )


class _HashingWriter:
    """Writes bytes to a file and to a sha256 at once."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha256.update(data)


def _csv_lines(rows: Iterable[Iterable[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue().encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path, data_name: str) -> None:
    if not final.exists():
        try:
            os.replace(tmp, final)  # the whole folder at once
            _fsync_dir(final.parent)
            return
        except OSError:
            if not final.exists():
                raise  # something else than a concurrent run creating the folder
    os.replace(tmp / data_name, final / data_name)
    os.replace(tmp / "manifest.json", final / "manifest.json")
    shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(final)


async def deliver_files(
    ctx: ExportContext,
    export: ExportDefinition,
    destination: FilesDestination,
    segment_id: str,
    run_id: str,
) -> SegmentRunResult:
    reads = ctx.reads
    at_ms = ctx.now_ms()
    final = run_folder(destination, export.id, segment_id, at_ms)
    tmp = final.parent / f".tmp-{final.name}-{run_id}"
    data_name = f"part-{run_id}.{destination.format}"
    if destination.format == "csv" and export.attributes is None:
        columns: tuple[str, ...] = await union_columns(reads, segment_id)
    else:
        columns = export.attributes or ()
    seen: set[str] = set(columns)
    count = 0
    tmp.mkdir(parents=True, exist_ok=False)
    try:
        with open(tmp / data_name, "wb") as file:
            out = _HashingWriter(file)
            if destination.format == "csv":
                out.write(_csv_lines([("customer_id", *columns)]))
            async for rows in member_rows(reads, segment_id, export.attributes):
                if destination.format == "csv":
                    out.write(_csv_lines([(c, *(a.get(n) for n in columns)) for c, a in rows]))
                else:
                    lines = []
                    for customer_id, attrs in rows:
                        seen.update(attrs)
                        record = {"customer_id": customer_id, "attributes": attrs}
                        lines.append(json.dumps(record, default=str, ensure_ascii=False) + "\n")
                    out.write("".join(lines).encode())
                count += len(rows)
            file.flush()
            os.fsync(file.fileno())
        if destination.format == "jsonl" and export.attributes is None:
            columns = tuple(sorted(seen))
        manifest = {
            "run_id": run_id,
            "export_id": export.id,
            "segment_id": segment_id,
            "count": count,
            "columns": ["customer_id", *columns],
            "format": destination.format,
            "file": data_name,
            "sha256": out.sha256.hexdigest(),
            "created_at": at_ms,
        }
        with open(tmp / "manifest.json", "wb") as file:
            file.write(json.dumps(manifest, indent=2).encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        _publish(tmp, final, data_name)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SegmentRunResult(
        "Successful",
        count,
        None,
        (),
        {
            "path": str(final / data_name),
            "manifest": str(final / "manifest.json"),
            "columns": ["customer_id", *columns],
        },
    )
