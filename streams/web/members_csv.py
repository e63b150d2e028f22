"""Members as CSV, streamed: constant memory whatever the segment's size.

Two passes over the members (SSCAN pages, profiles by MGET): the first collects the
attribute names for the header, the second writes the rows. A customer joining between
the passes may have an attribute with no column: it is left out of that row. Every cell,
the header's included, is escaped against formula injection (`streams.csv_safe`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from state.reads import StateReads

from ..csv_safe import UTF8_BOM, csv_lines

__all__ = ["csv_chunks"]


async def csv_chunks(
    reads: StateReads, segment_id: str, page: int = 500, bom: bool = False
) -> AsyncIterator[bytes]:
    """The CSV document, one chunk per page of members (the header first)."""
    names: set[str] = set()
    async for batch in reads.members(segment_id, page):
        for _customer_id, profile in batch.profiles:
            if profile is not None:
                names.update(profile.attrs)
    columns = sorted(names)
    yield (UTF8_BOM if bom else b"") + csv_lines([["customer_id", *columns]])
    async for batch in reads.members(segment_id, page):
        rows = []
        for customer_id, profile in batch.profiles:
            attrs = profile.attrs if profile is not None else {}
            rows.append([customer_id, *(attrs.get(c) for c in columns)])
        yield csv_lines(rows)
