"""CSV safe to open in a spreadsheet: the escaping shared by the download and exports.

Every cell goes through `csv_cell`, the header row too: an attribute is named by whoever sends
events, so a name like ``=HYPERLINK(...)`` is as dangerous in the header as in a row.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["UTF8_BOM", "csv_cell", "csv_lines"]

UTF8_BOM: Final = "\ufeff".encode()
"""Optional first bytes of a CSV file: spreadsheet programs then read it as UTF-8."""

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str | int | float:
    """One cell: numbers as numbers; text starting like a formula gets a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value  # a negative number is data, not a formula
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(rows: Iterable[Iterable[Any]]) -> bytes:
    """The rows as CSV (RFC 4180 line ends, UTF-8), every cell escaped by `csv_cell`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue().encode()
