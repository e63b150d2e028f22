"""Customers as the analyses see them, attribute kinds, and evaluating a definition on them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeGuard

from segment_rules import EventRecord, Limits, compile_segment, parse_definition

from .errors import InsightError

__all__ = [
    "AttributeInfo",
    "Customer",
    "CustomerData",
    "Kind",
    "describe_attributes",
    "evaluate_definition",
    "is_number",
    "label",
    "require_attribute",
]

Kind = Literal["numeric", "boolean", "categorical", "mixed", "other"]
DAY_MS = 86_400_000


class CustomerData(Protocol):
    """One customer: id, attributes and event history by type (oldest first)."""

    @property
    def customer_id(self) -> str: ...

    @property
    def attrs(self) -> Mapping[str, Any]: ...

    @property
    def events(self) -> Mapping[str, Sequence[EventRecord]]: ...


@dataclass(frozen=True)
class Customer:
    """A plain `CustomerData` (tests, tools)."""

    customer_id: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    events: Mapping[str, Sequence[EventRecord]] = field(default_factory=dict)


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def label(value: object) -> str:
    """A value as people read it: true/false, text as is, numbers with repr."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class AttributeInfo:
    """What one attribute holds over a population."""

    name: str
    kind: Kind
    present: int
    distinct: int
    values: Counter[Any]
    """Value -> customers, for booleans and categoricals (empty for numeric attributes)."""


def describe_attributes(customers: Iterable[CustomerData]) -> dict[str, AttributeInfo]:
    """Every attribute seen, with its kind: numeric (numbers only), boolean (booleans only),
    categorical (strings only), mixed (scalars of several kinds) or other (lists, maps)."""
    kinds: dict[str, set[Kind]] = {}
    present: Counter[str] = Counter()
    values: dict[str, Counter[Any]] = {}
    for customer in customers:
        for name, value in customer.attrs.items():
            if value is None:
                continue
            present[name] += 1
            kind: Kind
            if isinstance(value, bool):
                kind = "boolean"
            elif is_number(value):
                kind = "numeric"
            elif isinstance(value, str):
                kind = "categorical"
            else:
                kind = "other"
            kinds.setdefault(name, set()).add(kind)
            if kind in ("boolean", "categorical"):
                values.setdefault(name, Counter())[value] += 1
            elif kind == "numeric":
                values.setdefault(name, Counter())  # numbers are not tallied
    result: dict[str, AttributeInfo] = {}
    for name, seen in sorted(kinds.items()):
        mixed: Kind = "other" if "other" in seen else "mixed"
        final: Kind = next(iter(seen)) if len(seen) == 1 else mixed
        counted = values.get(name, Counter())
        distinct = len(counted) if final in ("boolean", "categorical") else 0
        result[name] = AttributeInfo(name, final, present[name], distinct, counted)
    return result


def require_attribute(infos: Mapping[str, AttributeInfo], name: str, path: str) -> AttributeInfo:
    """The attribute `name`, or an `unknown_attribute` error naming `path` and close names."""
    info = infos.get(name)
    if info is None:
        known = ", ".join(sorted(infos)[:20]) or "none"
        raise InsightError(
            "unknown_attribute",
            f"no customer has an attribute {name!r} (at {path}); known attributes: {known}",
            path,
        )
    return info


class _View:
    """A `ProfileView` over a `CustomerData` (memberships are not visible)."""

    __slots__ = ("_c",)

    def __init__(self, customer: CustomerData) -> None:
        self._c = customer

    def attribute(self, name: str) -> object | None:
        return self._c.attrs.get(name)

    def events(self, event_type: str) -> Sequence[EventRecord]:
        return self._c.events.get(event_type, ())

    def in_segment(self, segment_id: str) -> bool:
        return False


def evaluate_definition(
    definition: Mapping[str, Any], customers: Iterable[CustomerData], now_ms: int
) -> list[bool]:
    """Whether each customer matches `definition` at `now_ms` (the engine's own evaluator)."""
    limits = Limits(max_conditions=1000, max_depth=50)
    compiled = compile_segment(parse_definition(dict(definition), limits))
    return [compiled.evaluate(_View(c), now_ms) for c in customers]
