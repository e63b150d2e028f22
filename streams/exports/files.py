"""Files destination: a CSV or JSON Lines file and its manifest per run, published atomically.

Layout, under the export root (`LS_EXPORT_ROOT`, checked by `streams.exports.policy`):
``<directory>/<export>/<segment>/<yyyy>/<MM>/<dd>/<HHmm>/`` (UTC) holding
``part-<run_id>.csv|jsonl`` and ``manifest.json``. Both are written into
``<segment>/.tmp-<HHmm>-<run_id>/`` (same file system), flushed and fsynced, then the folder
is renamed into place: a reader never sees a half-written file under the final path. If the
minute's folder already exists (a second run in the same minute) the data file is moved in
first and the manifest last, each by an atomic rename, so the manifest always names a
complete data file. A crash leaves at most a ``.tmp-*`` folder, never a partial file; the
next run of the segment removes ``.tmp-*`` folders untouched for `STALE_TMP_S`.

Every folder is opened relative to its parent's descriptor with ``O_NOFOLLOW``, from the root
down: a symbolic link anywhere below the root fails the run instead of being followed.
Folders are created 0700 and files 0600 (personal data: readable by the worker's user only).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..csv_safe import UTF8_BOM, csv_lines
from ._members import member_rows, union_columns
from .context import ExportContext, SegmentRunResult
from .model import ExportDefinition, FilesDestination

__all__ = ["STALE_TMP_S", "clean_leftovers", "deliver_files", "run_folder"]

STALE_TMP_S = 3600.0
"""A ``.tmp-*`` folder nothing was written to for this long is a crashed run's leftover."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def _time_parts(at_ms: int) -> tuple[str, str, str, str]:
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC)
    return f"{at:%Y}", f"{at:%m}", f"{at:%d}", f"{at:%H%M}"


def run_folder(root: Path, export_id: str, segment_id: str, at_ms: int) -> Path:
    """The final folder of a run started at `at_ms` (epoch ms, UTC) below `root`, the
    destination's directory."""
    return root.joinpath(export_id, segment_id, *_time_parts(at_ms))


class _HashingWriter:
    """Writes bytes to a file and to a sha256 at once."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.sha256.update(data)


def _open_dir(parent: int, name: str, where: Path) -> int:
    """Open (create 0700 if missing) folder `name` in the folder `parent`, never via a link."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, 0o700, dir_fd=parent)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot open folder {str(where / name)!r}: {exc.strerror} (a symbolic link is "
            "never followed below the export root)",
        ) from None


@contextlib.contextmanager
def _folder(root: str, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor of root/parts, each level opened by `_open_dir`."""
    os.makedirs(root, 0o700, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    where = Path(root)
    try:
        for part in parts:
            child = _open_dir(fd, part, where)
            os.close(fd)
            fd, where = child, where / part
        yield fd
    finally:
        os.close(fd)


def _write_file(folder: int, name: str) -> IO[bytes]:
    """A new file `name` (0600) in `folder`; an existing file or a link there is an error."""
    return os.fdopen(os.open(name, _FILE_FLAGS, 0o600, dir_fd=folder), "wb")


def _newest_change(folder: int, name: str) -> float:
    newest = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime
    with contextlib.suppress(OSError):
        inner = os.open(name, _DIR_FLAGS, dir_fd=folder)
        try:
            for entry in os.listdir(inner):
                stat = os.stat(entry, dir_fd=inner, follow_symlinks=False)
                newest = max(newest, stat.st_mtime)
        finally:
            os.close(inner)
    return newest


def clean_leftovers(folder: int, keep: str = "", now: float | None = None) -> list[str]:
    """Remove the stale ``.tmp-*`` entries of a segment's folder (but `keep`); their names."""
    now = time.time() if now is None else now
    removed = []
    for name in os.listdir(folder):
        if not name.startswith(".tmp-") or name == keep:
            continue
        try:
            if now - _newest_change(folder, name) < STALE_TMP_S:
                continue  # maybe another run's, still being written
            if stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                shutil.rmtree(name, dir_fd=folder)
            else:  # a file or a link: removed, never followed
                os.unlink(name, dir_fd=folder)
        except FileNotFoundError:
            continue
        removed.append(name)
    return removed


def _publish(segment: int, tmp: str, day: int, minute: str, data_name: str) -> None:
    try:
        os.rename(tmp, minute, src_dir_fd=segment, dst_dir_fd=day)  # the whole folder at once
        os.fsync(day)
        return
    except OSError:
        pass  # the minute's folder exists already (a second run in the same minute)
    final = os.open(minute, _DIR_FLAGS, dir_fd=day)
    inner = os.open(tmp, _DIR_FLAGS, dir_fd=segment)
    try:
        os.rename(data_name, data_name, src_dir_fd=inner, dst_dir_fd=final)
        os.rename("manifest.json", "manifest.json", src_dir_fd=inner, dst_dir_fd=final)
        os.fsync(final)
    finally:
        os.close(inner)
        os.close(final)
    shutil.rmtree(tmp, dir_fd=segment, ignore_errors=True)


async def _write_run(
    ctx: ExportContext,
    export: ExportDefinition,
    destination: FilesDestination,
    segment_id: str,
    run_id: str,
    folder: int,
    at_ms: int,
) -> tuple[int, tuple[str, ...]]:
    """Write the data file and the manifest into `folder`; (members, columns)."""
    reads = ctx.reads
    data_name = f"part-{run_id}.{destination.format}"
    if destination.format == "csv" and export.attributes is None:
        columns: tuple[str, ...] = await union_columns(reads, segment_id)
    else:
        columns = export.attributes or ()
    seen: set[str] = set(columns)
    count = 0
    with _write_file(folder, data_name) as file:
        out = _HashingWriter(file)
        if destination.format == "csv":
            head = csv_lines([("customer_id", *columns)])
            out.write((UTF8_BOM if destination.bom else b"") + head)
        async for rows in member_rows(reads, segment_id, export.attributes):
            if destination.format == "csv":
                out.write(csv_lines((c, *(a.get(n) for n in columns)) for c, a in rows))
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
    with _write_file(folder, "manifest.json") as file:
        file.write(json.dumps(manifest, indent=2).encode() + b"\n")
        file.flush()
        os.fsync(file.fileno())
    return count, columns


async def deliver_files(
    ctx: ExportContext,
    export: ExportDefinition,
    destination: FilesDestination,
    segment_id: str,
    run_id: str,
) -> SegmentRunResult:
    at_ms = ctx.now_ms()
    parts = ctx.policy.folder_parts(destination.directory, "destination.directory")
    base = Path(ctx.policy.export_root).joinpath(*parts)
    *day_parts, minute = _time_parts(at_ms)
    final = run_folder(base, export.id, segment_id, at_ms)
    tmp = f".tmp-{minute}-{run_id}"
    data_name = f"part-{run_id}.{destination.format}"
    with _folder(ctx.policy.export_root, (*parts, export.id, segment_id)) as segment:
        clean_leftovers(segment, keep=tmp)
        os.mkdir(tmp, 0o700, dir_fd=segment)
        try:
            inner = os.open(tmp, _DIR_FLAGS, dir_fd=segment)
            try:
                count, columns = await _write_run(
                    ctx, export, destination, segment_id, run_id, inner, at_ms
                )
            finally:
                os.close(inner)
            opened: list[int] = []
            day, where = segment, base / export.id / segment_id
            try:
                for part in day_parts:
                    day = _open_dir(day, part, where)
                    opened.append(day)
                    where = where / part
                _publish(segment, tmp, day, minute, data_name)
            finally:
                for fd in opened:
                    os.close(fd)
        except BaseException:
            shutil.rmtree(tmp, dir_fd=segment, ignore_errors=True)
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
