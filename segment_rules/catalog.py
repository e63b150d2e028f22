"""Pure helpers over a catalog of definitions: references, order, dependents."""

from __future__ import annotations

__all__ = ["check_references", "dependencies", "dependents", "topological_order"]

from collections.abc import Mapping

from ._suggest import suggest
from ._walk import iter_conditions
from .errors import DefinitionError
from .model import InSegment, SegmentDefinition


def _references(defn: SegmentDefinition) -> list[tuple[str, str]]:
    """``(path, segment_id)`` of every ``in_segment`` node, in definition order."""
    return [
        (f"{path}.in_segment", node.segment)
        for path, node in iter_conditions(defn)
        if isinstance(node, InSegment)
    ]


def dependencies(defn: SegmentDefinition) -> frozenset[str]:
    """The segments ``defn`` refers to directly with ``in_segment``."""
    return frozenset(segment for _, segment in _references(defn))


def _find_cycle(
    defs: Mapping[str, SegmentDefinition], start: str, through: str
) -> list[str] | None:
    """A path ``through -> ... -> start`` if ``start`` can reach ``through``, else ``None``."""
    stack: list[tuple[str, list[str]]] = [(start, [through, start])]
    seen: set[str] = set()
    while stack:
        node, trail = stack.pop()
        if node == through:
            return trail
        if node in seen or node not in defs:
            continue
        seen.add(node)
        for dep in sorted(dependencies(defs[node]), reverse=True):
            stack.append((dep, [*trail, dep]))
    return None


def check_references(defs: Mapping[str, SegmentDefinition], new_def: SegmentDefinition) -> None:
    """Check that adding (or replacing) ``new_def`` in ``defs`` keeps the catalog sound.

    Raises:
        DefinitionError: ``missing_segment`` when an ``in_segment`` names an unknown
            segment; ``cycle`` when membership would depend on itself
            (the message lists the cycle, ``a -> b -> a``).
    """
    catalog = {**defs, new_def.id: new_def}
    for path, segment in _references(new_def):
        if segment not in catalog:
            hint = suggest(segment, sorted(catalog))
            fix = f"did you mean {hint!r}?" if hint else "create that segment first"
            raise DefinitionError(
                "missing_segment",
                f"unknown segment {segment!r} at {path}; {fix}",
                path,
                hint,
            )
    for path, segment in _references(new_def):
        cycle = _find_cycle(catalog, segment, new_def.id)
        if cycle is not None:
            raise DefinitionError(
                "cycle",
                f"segment membership would depend on itself: {' -> '.join(cycle)} (via {path}); "
                "remove one of these in_segment conditions",
                path,
            )


def topological_order(defs: Mapping[str, SegmentDefinition]) -> list[str]:
    """Segment ids with every dependency before its dependents (ties sorted by id).

    References to segments outside ``defs`` are ignored (see :func:`check_references`).

    Raises:
        DefinitionError: ``cycle`` when the catalog has one.
    """
    remaining = {sid: {d for d in dependencies(defn) if d in defs} for sid, defn in defs.items()}
    order: list[str] = []
    while remaining:
        ready = sorted(sid for sid, deps in remaining.items() if not deps)
        if not ready:
            cycle = _some_cycle(remaining)
            raise DefinitionError(
                "cycle",
                f"segment membership depends on itself: {' -> '.join(cycle)}; "
                "remove one of these in_segment conditions",
                cycle[0],
            )
        order.extend(ready)
        for sid in ready:
            del remaining[sid]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def _some_cycle(remaining: Mapping[str, set[str]]) -> list[str]:
    """A cycle in ``remaining``, where every node has a dependency left."""
    trail = [min(remaining)]
    while True:
        nxt = min(remaining[trail[-1]])
        if nxt in trail:
            return [*trail[trail.index(nxt) :], nxt]
        trail.append(nxt)


def dependents(defs: Mapping[str, SegmentDefinition], segment_id: str) -> set[str]:
    """Every segment whose membership depends, directly or not, on ``segment_id``."""
    reverse: dict[str, set[str]] = {}
    for sid, defn in defs.items():
        for dep in dependencies(defn):
            reverse.setdefault(dep, set()).add(sid)
    found: set[str] = set()
    frontier = [segment_id]
    while frontier:
        for user in reverse.get(frontier.pop(), ()):
            if user not in found:
                found.add(user)
                frontier.append(user)
    return found
