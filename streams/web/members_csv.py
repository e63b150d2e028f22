"""Members as CSV, streamed: constant memory whatever the segment's size.

Two passes over the members (SSCAN pages, profiles by MGET): the first collects the
attribute names for the header, the second writes the rows. A customer joining between
the passes may have an attribute with no column: it is left out of that row. Every cell,
the header's included, is escaped against formula injection (`streams.csv_safe`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from insights.bands import band_of
from state.reads import StateReads

from ..csv_safe import UTF8_BOM, csv_lines

__all__ = ["csv_chunks"]


async def csv_chunks(
    reads: StateReads,
    segment_id: str,
    page: int = 500,
    bom: bool = False,
    scores: Mapping[str, float] | None = None,
) -> AsyncIterator[bytes]:
    """The CSV document, one chunk per page of members (the header first).

    `scores` (an expansion segment's): a `score` and a `band` column after the id."""
    names: set[str] = set()
    async for batch in reads.members(segment_id, page):
        for _customer_id, profile in batch.profiles:
            if profile is not None:
                names.update(profile.attrs)
    columns = sorted(names)
    scored = ["score", "band"] if scores is not None else []
    yield (UTF8_BOM if bom else b"") + csv_lines([["customer_id", *scored, *columns]])
    async for batch in reads.members(segment_id, page):
        rows = []
        for customer_id, profile in batch.profiles:
            attrs = profile.attrs if profile is not None else {}
            extra: list[object] = []
            if scores is not None:
                score = scores.get(customer_id)
                extra = [score, band_of(score) if score is not None else None]
            rows.append([customer_id, *extra, *(attrs.get(c) for c in columns)])
        yield csv_lines(rows)
