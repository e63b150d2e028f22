"""Overlap of 2+ segments: exact counts of every region of their Venn diagram.

Counts are additive over disjoint populations, so the wiring computes them per events
partition (a customer lives on one partition) and adds them with `add`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

from .errors import InsightError

__all__ = ["MAX_SEGMENTS", "Overlap", "check_segment_ids", "count_regions"]

MAX_SEGMENTS = 6


def check_segment_ids(segment_ids: Sequence[str]) -> None:
    if not 2 <= len(segment_ids) <= MAX_SEGMENTS:
        raise InsightError(
            "invalid_value",
            f"overlap needs 2 to {MAX_SEGMENTS} segments, got {len(segment_ids)}",
            "segment_ids",
        )
    for i, sid in enumerate(segment_ids):
        if sid in segment_ids[:i]:
            raise InsightError(
                "invalid_value", f"segment {sid!r} is named twice", f"segment_ids[{i}]"
            )


def count_regions(sets: Mapping[str, Set[str]]) -> dict[frozenset[str], int]:
    """Region (the segments a customer is in, non-empty) -> customers in exactly those."""
    regions: dict[frozenset[str], int] = {}
    everyone: set[str] = set()
    for members in sets.values():
        everyone |= members
    for customer in everyone:
        key = frozenset(sid for sid, members in sets.items() if customer in members)
        regions[key] = regions.get(key, 0) + 1
    return regions


@dataclass(frozen=True)
class Overlap:
    """Counts of every region of `segment_ids` (regions with 0 customers included)."""

    segment_ids: tuple[str, ...]
    regions: Mapping[frozenset[str], int]

    def add(self, more: Mapping[frozenset[str], int]) -> Overlap:
        total = dict(self.regions)
        for key, n in more.items():
            total[key] = total.get(key, 0) + n
        return Overlap(self.segment_ids, total)

    def size(self, segment_id: str) -> int:
        return sum(n for key, n in self.regions.items() if segment_id in key)

    def to_dict(self) -> dict[str, Any]:
        union = sum(self.regions.values())
        ids = self.segment_ids
        rows: list[dict[str, Any]] = []
        for mask in range(1, 2 ** len(ids)):
            inside = [sid for i, sid in enumerate(ids) if mask >> i & 1]
            key = frozenset(inside)
            count = self.regions.get(key, 0)
            rows.append(
                {
                    "in": inside,
                    "not_in": [sid for sid in ids if sid not in key],
                    "label": _label(inside, ids),
                    "customers": count,
                    "percent_of_union": _pct(count, union),
                    **{f"percent_of_{sid}": _pct(count, self.size(sid)) for sid in inside},
                }
            )
        rows.sort(key=lambda r: (len(r["in"]), [ids.index(s) for s in r["in"]]))
        return {
            "segment_ids": list(ids),
            "sizes": {sid: self.size(sid) for sid in ids},
            "union": union,
            "regions": rows,
        }


def _label(inside: list[str], ids: tuple[str, ...]) -> str:
    if len(inside) == 1:
        return f"only {inside[0]}"
    if len(inside) == len(ids):
        return "all of " + ", ".join(inside) if len(ids) > 2 else " and ".join(inside)
    return " and ".join(inside) + " only"


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0
