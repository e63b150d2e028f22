"""The typed tree of a segment definition (the output of parsing).

Values are kept exactly as written in the JSON (dates as their ISO string or epoch
milliseconds, durations as ``"7d"``), so that a definition serializes back to the
same JSON. Lists become tuples so that every node is hashable.
"""

from __future__ import annotations

__all__ = [
    "AGGREGATES",
    "AGGREGATE_OPS",
    "ATTRIBUTE_OPS",
    "MAX_EXPANSION_MEMBERS",
    "RULE_OPS",
    "SEGMENT_TYPES",
    "AllOf",
    "AnyOf",
    "AttrCondition",
    "Condition",
    "EventCondition",
    "Expansion",
    "InSegment",
    "Not",
    "PropCondition",
    "Rule",
    "Scalar",
    "SegmentDefinition",
    "Value",
]

from dataclasses import dataclass
from typing import Final, TypeAlias

Scalar: TypeAlias = str | int | float | bool
#: The ``value`` of a leaf: a scalar, a list of scalars (as a tuple), or ``None``
#: for ``exists``/``not_exists``.
Value: TypeAlias = Scalar | tuple[Scalar, ...] | None

#: Operators of attribute and property conditions, in documentation order.
ATTRIBUTE_OPS: Final[tuple[str, ...]] = (
    "eq",
    "ne",
    "lt",
    "lte",
    "gt",
    "gte",
    "between",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "exists",
    "not_exists",
    "before",
    "after",
    "within_last",
    "not_within_last",
)
#: Operators allowed on the result of an aggregate.
AGGREGATE_OPS: Final[tuple[str, ...]] = ("eq", "ne", "lt", "lte", "gt", "gte", "between")
AGGREGATES: Final[tuple[str, ...]] = ("count", "sum", "avg", "min", "max", "distinct_count")
#: How a later rule combines with the result so far.
RULE_OPS: Final[tuple[str, ...]] = ("union", "intersect", "except")
SEGMENT_TYPES: Final[tuple[str, ...]] = ("dynamic", "static", "expansion")
#: Types whose membership changes only when a job (activate, refresh) evaluates them.
_EVALUATED_BY_JOBS: Final = frozenset({"static", "expansion"})
#: The most customers an ``expansion`` segment holds: its list travels in its definition (the
#: registry, every partition's catalog and the task message), so it must stay small.
MAX_EXPANSION_MEMBERS: Final = 20_000


@dataclass(frozen=True, slots=True)
class AttrCondition:
    """``{"attr": NAME, "op": OP, "value": V}`` on a profile attribute."""

    attr: str
    op: str
    value: Value = None


@dataclass(frozen=True, slots=True)
class PropCondition:
    """``{"prop": NAME, "op": OP, "value": V}`` on an event property (filters only)."""

    prop: str
    op: str
    value: Value = None


@dataclass(frozen=True, slots=True)
class AllOf:
    """``{"all": [...]}``: true when every condition is true."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """``{"any": [...]}``: true when at least one condition is true."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """``{"not": COND}``: negation."""

    condition: Condition


@dataclass(frozen=True, slots=True)
class EventCondition:
    """An aggregate over the customer's events of one type.

    ``filter`` is a tree of :class:`AllOf`/:class:`AnyOf`/:class:`Not` over
    :class:`PropCondition` leaves.
    """

    event: str
    agg: str
    op: str
    value: int | float | tuple[int | float, int | float]
    prop: str | None = None
    filter: Condition | None = None
    within: str | None = None


@dataclass(frozen=True, slots=True)
class InSegment:
    """``{"in_segment": ID}``: current membership of another segment."""

    segment: str


Condition: TypeAlias = (
    AllOf | AnyOf | Not | AttrCondition | PropCondition | EventCondition | InSegment
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of ``rules``; ``op`` is ``None`` for the first rule only."""

    where: Condition
    op: str | None = None


@dataclass(frozen=True, slots=True)
class Expansion:
    """What an ``expansion`` segment (similar customers) was found from, and how.

    Its members are an explicit list of customers (with their scores in the stored JSON);
    refreshing re-trains on ``source``'s members then and re-scores everybody.
    """

    source: str
    size: int
    min_score: float
    attributes: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SegmentDefinition:
    """A validated segment definition."""

    id: str
    name: str
    rules: tuple[Rule, ...]
    description: str | None = None
    tags: tuple[str, ...] = ()
    type: str = "dynamic"
    expansion: Expansion | None = None
    """``expansion`` segments only: where the list came from."""
    members: frozenset[str] = frozenset()
    """``expansion`` segments only: the customers it holds (no ``rules``)."""

    @property
    def is_static(self) -> bool:
        """Static and expansion segments are evaluated only on activate/refresh."""
        return self.type in _EVALUATED_BY_JOBS
