"""Members as CSV, streamed: constant memory whatever the segment's size.

Two passes over the members (SSCAN pages, profiles by MGET): the first collects the
attribute names for the header, the second writes the rows. A customer joining between
the passes may have an attribute with no column: it is left out of that row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

from state.reads import StateReads

from ..csv_safe import csv_cell

__all__ = ["csv_cell", "csv_chunks"]


def _line(row: Iterable[Any]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(row)
    return buffer.getvalue().encode()


async def csv_chunks(reads: StateReads, segment_id: str, page: int = 500) -> AsyncIterator[bytes]:
    """The CSV document, one chunk per page of members (the header first)."""
    names: set[str] = set()
    async for batch in reads.members(segment_id, page):
        for _customer_id, profile in batch.profiles:
            if profile is not None:
                names.update(profile.attrs)
    columns = sorted(names)
    yield _line(["customer_id", *columns])
    async for batch in reads.members(segment_id, page):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        for customer_id, profile in batch.profiles:
            attrs = profile.attrs if profile is not None else {}
            writer.writerow([csv_cell(customer_id), *(csv_cell(attrs.get(c)) for c in columns)])
        yield buffer.getvalue().encode()
