"""CSV cells safe to open in a spreadsheet: the escaping shared by the download and exports."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["csv_cell"]

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
