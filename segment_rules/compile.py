"""Compile a definition once into a fast evaluator: :class:`CompiledSegment`."""

from __future__ import annotations

__all__ = ["CompiledSegment", "compile_segment"]

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._aggregate import PropNextChange, PropPredicate, compile_aggregate
from ._append import AppendEffect, append_effects
from ._predicates import TIME_OPS, value_next_change, value_predicate
from ._values import is_number, scalar_kind
from ._walk import iter_conditions
from .model import (
    AllOf,
    AnyOf,
    AttrCondition,
    Condition,
    EventCondition,
    InSegment,
    Not,
    PropCondition,
    SegmentDefinition,
    Value,
)
from .parse import parse_definition
from .profile import ProfileView

_Evaluate = Callable[[ProfileView, int], bool]
_NextChange = Callable[[ProfileView, int], "int | None"]
_Compiled = tuple[_Evaluate, "_NextChange | None"]
_PropCompiled = tuple[PropPredicate, "PropNextChange | None"]


class CompiledSegment:
    """A segment ready to evaluate many profiles. Build it with :func:`compile_segment`."""

    __slots__ = (
        "_evaluate",
        "_next_change",
        "attributes",
        "definition",
        "event_types",
        "on_append",
        "segments",
        "time_dependent",
    )

    definition: SegmentDefinition
    #: attribute names read by the rules
    attributes: frozenset[str]
    #: event types aggregated by the rules
    event_types: frozenset[str]
    #: segments referenced directly by ``in_segment``
    segments: frozenset[str]
    #: whether the result can change with time alone (``within``, ``within_last``...)
    time_dependent: bool
    #: event type -> what appending one event of it can change (`segment_rules._append`)
    on_append: dict[str, AppendEffect]

    def __init__(
        self, definition: SegmentDefinition, evaluate: _Evaluate, next_change: _NextChange | None
    ) -> None:
        self.definition = definition
        self._evaluate = evaluate
        self._next_change = next_change
        nodes = [node for _, node in iter_conditions(definition)]
        self.attributes = frozenset(n.attr for n in nodes if isinstance(n, AttrCondition))
        self.event_types = frozenset(n.event for n in nodes if isinstance(n, EventCondition))
        self.segments = frozenset(n.segment for n in nodes if isinstance(n, InSegment))
        self.time_dependent = next_change is not None
        alone = definition.rules[0].where if len(definition.rules) == 1 else None
        self.on_append = append_effects(nodes, _compile_filter, alone)

    @property
    def segment_id(self) -> str:
        return self.definition.id

    @property
    def is_static(self) -> bool:
        return self.definition.is_static

    @property
    def evaluator(self) -> _Evaluate:
        """The function :meth:`evaluate` calls: ``evaluator(profile, now_ms)`` (hot loops
        keep it to save a method call per evaluation)."""
        return self._evaluate

    def evaluate(self, profile: ProfileView, now_ms: int) -> bool:
        """Whether the customer seen through ``profile`` belongs to the segment at ``now_ms``."""
        return self._evaluate(profile, now_ms)

    def next_change(self, profile: ProfileView, now_ms: int) -> int | None:
        """The earliest instant ``> now_ms`` at which the result may change with no new input.

        Conservative: the result may turn out unchanged at that instant, but it never
        changes earlier. ``None`` when nothing time-dependent is pending.
        """
        if self._next_change is None:
            return None
        return self._next_change(profile, now_ms)

    def __repr__(self) -> str:
        return f"CompiledSegment({self.segment_id!r})"


def compile_segment(defn: SegmentDefinition | Mapping[str, object]) -> CompiledSegment:
    """Compile a parsed definition (a raw JSON object is parsed first)."""
    definition = defn if isinstance(defn, SegmentDefinition) else parse_definition(defn)
    if definition.type == "expansion":
        return CompiledSegment(definition, _listed(definition.members), None)
    compiled = [(rule.op, _compile(rule.where)) for rule in definition.rules]
    first = compiled[0][1][0]
    nexts = [n for _, (_, n) in compiled if n is not None]
    next_change = _earliest(nexts) if nexts else None
    if len(compiled) == 1:
        return CompiledSegment(definition, first, next_change)
    rest = tuple((op, evaluate) for op, (evaluate, _) in compiled[1:])

    def evaluate(profile: ProfileView, now: int) -> bool:
        member = first(profile, now)
        for op, condition in rest:
            if op == "union":
                member = member or condition(profile, now)
            elif op == "intersect":
                member = member and condition(profile, now)
            else:  # except
                member = member and not condition(profile, now)
        return member

    return CompiledSegment(definition, evaluate, next_change)


def _listed(members: frozenset[str]) -> _Evaluate:
    """An expansion segment: the customers of its list (a view without an id has none)."""

    def evaluate(profile: ProfileView, now: int) -> bool:
        return getattr(profile, "customer_id", None) in members

    return evaluate


def _earliest(parts: Sequence[_NextChange]) -> _NextChange:
    if len(parts) == 1:
        return parts[0]

    def earliest(profile: ProfileView, now: int) -> int | None:
        best: int | None = None
        for part in parts:
            edge = part(profile, now)
            if edge is not None and (best is None or edge < best):
                best = edge
        return best

    return earliest


def _compile(cond: Condition) -> _Compiled:
    if isinstance(cond, AttrCondition):
        return _compile_attr(cond)
    if isinstance(cond, InSegment):
        segment = cond.segment
        return (lambda profile, now: profile.in_segment(segment)), None
    if isinstance(cond, EventCondition):
        filt, filt_next = _compile_filter(cond.filter) if cond.filter else (None, None)
        return compile_aggregate(cond, filt, filt_next)
    if isinstance(cond, Not):
        inner, inner_next = _compile(cond.condition)
        return (lambda profile, now: not inner(profile, now)), inner_next
    if isinstance(cond, AllOf | AnyOf):
        parts = [_compile(child) for child in _flattened(cond)]
        evals = tuple(e for e, _ in parts)
        nexts = [n for _, n in parts if n is not None]
        combined = _all(evals) if isinstance(cond, AllOf) else _any(evals)
        return combined, (_earliest(nexts) if nexts else None)
    raise TypeError(f"property condition {cond!r} outside an event filter")


def _flattened(cond: AllOf | AnyOf) -> list[Condition]:
    """The children of ``cond``, with those of a nested group of the same kind in their
    place (``all(a, all(b, c))`` is ``all(a, b, c)``): one call less per nesting."""
    out: list[Condition] = []
    for child in cond.conditions:
        if type(child) is type(cond):
            out.extend(_flattened(child))
        else:
            out.append(child)
    return out


def _compile_attr(cond: AttrCondition) -> _Compiled:
    name = cond.attr
    evaluate = _inline_attr(name, cond.op, cond.value)
    if evaluate is None:
        test = value_predicate(cond.op, cond.value)

        def evaluate(profile: ProfileView, now: int) -> bool:
            return test(profile.attribute(name), now)

    edge = value_next_change(cond.op, cond.value)
    if edge is None:
        return evaluate, None
    edge_of = edge

    def next_change(profile: ProfileView, now: int) -> int | None:
        return edge_of(profile.attribute(name), now)

    return evaluate, next_change


def _inline_attr(name: str, op: str, value: Value) -> _Evaluate | None:
    """The commonest attribute tests with the operator inlined (one call less per
    evaluation); the same results as `value_predicate`. None: no inlined form."""
    if op in ("eq", "in") and scalar_kind(value if op == "eq" else value[0]) == "str":  # type: ignore[index]
        if op == "eq":
            text = value

            def text_eq(profile: ProfileView, now: int) -> bool:
                a = profile.attribute(name)
                return isinstance(a, str) and a == text

            return text_eq
        members = frozenset(value)  # type: ignore[arg-type]

        def text_in(profile: ProfileView, now: int) -> bool:
            a = profile.attribute(name)
            return isinstance(a, str) and a in members

        return text_in
    if op in ("lt", "lte", "gt", "gte") or op == "between":
        compare = _NUMBER_COMPARE[op]
        bound = value

        def number(profile: ProfileView, now: int) -> bool:
            a = profile.attribute(name)
            kind = type(a)
            return (kind is int or kind is float or is_number(a)) and compare(a, bound)

        return number
    return None


def _between(a: Any, bounds: Any) -> bool:
    return bool(bounds[0] <= a <= bounds[1])


_NUMBER_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
    "between": _between,
}


def _all(evals: tuple[_Evaluate, ...]) -> _Evaluate:
    if len(evals) == 1:
        return evals[0]
    if len(evals) == 2:
        first, second = evals
        return lambda profile, now: first(profile, now) and second(profile, now)

    def all_of(profile: ProfileView, now: int) -> bool:
        # A plain loop: faster than all() over a generator in the hot path.
        for evaluate in evals:  # noqa: SIM110
            if not evaluate(profile, now):
                return False
        return True

    return all_of


def _any(evals: tuple[_Evaluate, ...]) -> _Evaluate:
    if len(evals) == 1:
        return evals[0]
    if len(evals) == 2:
        first, second = evals
        return lambda profile, now: first(profile, now) or second(profile, now)

    def any_of(profile: ProfileView, now: int) -> bool:
        for evaluate in evals:  # noqa: SIM110
            if evaluate(profile, now):
                return True
        return False

    return any_of


def _compile_filter(cond: Condition) -> _PropCompiled:
    if isinstance(cond, PropCondition):
        name = cond.prop
        test = value_predicate(cond.op, cond.value)
        edge = value_next_change(cond.op, cond.value) if cond.op in TIME_OPS else None

        def evaluate(props: Mapping[str, object], now: int) -> bool:
            return test(props.get(name), now)

        if edge is None:
            return evaluate, None
        edge_of = edge
        return evaluate, lambda props, now: edge_of(props.get(name), now)
    if isinstance(cond, Not):
        inner, inner_next = _compile_filter(cond.condition)
        return (lambda props, now: not inner(props, now)), inner_next
    if isinstance(cond, AllOf | AnyOf):
        parts = [_compile_filter(child) for child in cond.conditions]
        tests = tuple(t for t, _ in parts)
        nexts = [n for _, n in parts if n is not None]
        is_all = isinstance(cond, AllOf)

        def group(props: Mapping[str, object], now: int) -> bool:
            for test in tests:
                if test(props, now) is not is_all:
                    return not is_all
            return is_all

        return group, (_prop_earliest(nexts) if nexts else None)
    raise TypeError(f"{cond!r} is not allowed in an event filter")


def _prop_earliest(parts: list[PropNextChange]) -> PropNextChange:
    def earliest(props: Mapping[str, object], now: int) -> int | None:
        edges = [e for e in (part(props, now) for part in parts) if e is not None]
        return min(edges) if edges else None

    return earliest
