"""Dry runs over every stored profile: segment size estimates and attribute distributions.

Read only. Profiles are read a page at a time; the event loop gets control back between
pages (each page is one MGET), so the worker keeps processing while a scan runs.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from segment_rules import (
    NO_LIMITS,
    DefinitionError,
    Limits,
    check_references,
    compile_segment,
    parse_definition,
)
from state.reads import StateReads

from .errors import ApiError

__all__ = ["attribute_stats", "estimate", "percentiles"]

TOP_VALUES = 10
PERCENTILES = tuple(range(0, 101, 10))


async def estimate(
    reads: StateReads, raw: Any, limits: Limits, history_max_age_ms: int
) -> dict[str, Any]:
    """How many stored customers the definition `raw` selects now; nothing is saved."""
    started = time.monotonic()
    if not isinstance(raw, dict):
        raise ApiError(
            400,
            "missing_field" if raw is None else "wrong_type",
            f"'segment' must be a segment definition object, got {type(raw).__name__}",
            "segment",
        )
    try:
        defn = parse_definition(raw, limits)
        others = {
            sid: parse_definition(seg.definition, NO_LIMITS)
            for sid, seg in (await reads.segments()).items()
            if sid != defn.id
        }
        check_references(others, defn)
    except DefinitionError as exc:
        path = f"segment.{exc.path}" if exc.path else "segment"
        raise ApiError(400, exc.code, exc.message, path) from None
    compiled = compile_segment(defn)
    now = int(time.time() * 1000)
    cutoff = now - history_max_age_ms
    selected = customers = 0
    async for page in reads.all_profiles():
        for profile in page:
            customers += 1
            if compiled.evaluate(profile.snapshot(cutoff), now):
                selected += 1
    elapsed = int((time.monotonic() - started) * 1000)
    return {"estimate": selected, "customers": customers, "elapsed_ms": elapsed}


def percentiles(values: list[float]) -> dict[str, float]:
    """p0, p10 .. p100 with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    result: dict[str, float] = {}
    for p in PERCENTILES:
        rank = (len(ordered) - 1) * p / 100
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
        result[f"p{p}"] = int(value) if float(value).is_integer() else round(value, 6)
    return result


async def attribute_stats(reads: StateReads, name: str) -> dict[str, Any]:
    """Distribution of one attribute: top values (strings, booleans) or percentiles (numbers).

    An attribute holding numbers on every profile is numeric; any other mix is categorical
    (values shown as JSON-ish text). Numbers are kept in memory to rank them (8 bytes each).
    """
    customers = present = 0
    numbers: list[float] = []
    categories: Counter[str] = Counter()
    async for page in reads.all_profiles():
        for profile in page:
            customers += 1
            value = profile.attrs.get(name)
            if value is None:
                continue
            present += 1
            if isinstance(value, int | float) and not isinstance(value, bool):
                numbers.append(value)
            else:
                categories[_label(value)] += 1
    body: dict[str, Any] = {"attribute": name, "customers": customers, "present": present}
    if present == 0:
        body["kind"] = "absent"
    elif not categories:
        body["kind"] = "numeric"
        body["percentiles"] = percentiles(numbers)
    else:
        for number in numbers:  # a mixed attribute: numbers count as categories too
            categories[_label(number)] += 1
        body["kind"] = "categorical"
        body["distinct"] = len(categories)
        body["top"] = [
            {"value": value, "customers": count}
            for value, count in categories.most_common(TOP_VALUES)
        ]
    return body


def _label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)
