"""Walk every node of a definition, with its path (filters included)."""

from __future__ import annotations

__all__ = ["iter_conditions"]

from collections.abc import Iterator

from .model import AllOf, AnyOf, Condition, EventCondition, Not, SegmentDefinition


def iter_conditions(defn: SegmentDefinition) -> Iterator[tuple[str, Condition]]:
    """Yield ``(path, node)`` for every condition, depth first, in definition order."""
    for index, rule in enumerate(defn.rules):
        yield from _walk(rule.where, f"rules[{index}].where")


def _walk(cond: Condition, path: str) -> Iterator[tuple[str, Condition]]:
    yield path, cond
    if isinstance(cond, AllOf | AnyOf):
        key = "all" if isinstance(cond, AllOf) else "any"
        for index, child in enumerate(cond.conditions):
            yield from _walk(child, f"{path}.{key}[{index}]")
    elif isinstance(cond, Not):
        yield from _walk(cond.condition, f"{path}.not")
    elif isinstance(cond, EventCondition) and cond.filter is not None:
        yield from _walk(cond.filter, f"{path}.filter")
