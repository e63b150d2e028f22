"""The members of a segment as export rows: (customer id, selected attributes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from state.reads import StateReads

__all__ = ["Row", "member_rows", "union_columns"]

Row = tuple[str, dict[str, Any]]


def _select(attrs: dict[str, Any], attributes: tuple[str, ...] | None) -> dict[str, Any]:
    if attributes is None:
        return dict(attrs)
    return {name: attrs[name] for name in attributes if name in attrs}


async def member_rows(
    reads: StateReads, segment_id: str, attributes: tuple[str, ...] | None, page: int = 500
) -> AsyncIterator[list[Row]]:
    """One list of rows per page of members (a missing profile gives no attributes)."""
    async for batch in reads.members(segment_id, page):
        yield [
            (customer_id, _select(profile.attrs, attributes) if profile is not None else {})
            for customer_id, profile in batch.profiles
        ]


async def union_columns(reads: StateReads, segment_id: str, page: int = 500) -> tuple[str, ...]:
    """Every attribute name some member has, sorted (a first pass over the members)."""
    names: set[str] = set()
    async for batch in reads.members(segment_id, page):
        for _customer_id, profile in batch.profiles:
            if profile is not None:
                names.update(profile.attrs)
    return tuple(sorted(names))
