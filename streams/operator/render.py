"""Text output for people: tables, times, sparklines and bars."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["bar", "cell", "sparkline", "table", "when"]

_TICKS = "▁▂▃▄▅▆▇█"


def when(ms: int | None) -> str:
    """Epoch ms as a short UTC time; '-' for none."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    return str(value)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], max_width: int = 40) -> str:
    """Left-aligned columns (numbers right-aligned), cells cut at `max_width`."""
    texts = [[_cut(cell(v), max_width) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [
        bool(rows)
        and all(isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(row) for row in texts)
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def sparkline(values: Sequence[int | float], width: int = 60) -> str:
    """One character per value (the last `width` values), scaled between min and max."""
    if not values:
        return ""
    shown = list(values)[-width:]
    low, high = min(shown), max(shown)
    if high == low:
        return _TICKS[len(_TICKS) // 2 if high else 0] * len(shown)
    scale = (len(_TICKS) - 1) / (high - low)
    return "".join(_TICKS[round((v - low) * scale)] for v in shown)


def bar(value: int | float, top: int | float, width: int = 30) -> str:
    if top <= 0:
        return ""
    return "#" * max(1 if value > 0 else 0, round(width * value / top))
