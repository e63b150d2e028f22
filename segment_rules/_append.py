"""What one appended event can change of a segment: :class:`AppendEffect`, per event type.

An aggregate measures the events of its type that pass its filter (and, but for ``count``,
carry a usable value of its property). A new event that no aggregate of a segment takes in
leaves every measure of that segment where it was, so the segment's result cannot change
through it; and the only new instant at which time alone may change the result is the new
event's leaving a ``within`` window (its time + the window), when its filter passes. The
engine uses both to skip evaluations and to merge the new event's timer edges with the
customer's stored wake-up instead of asking every segment again.
"""

from __future__ import annotations

__all__ = ["AppendEffect", "append_effects"]

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ._values import duration_to_ms, is_number, scalar_kind
from .model import Condition, EventCondition

PropTest = Callable[[Mapping[str, object]], bool]
"""Whether an event's properties pass a filter that does not depend on time."""
CompileFilter = Callable[[Condition], "tuple[Callable[[Mapping[str, object], int], bool], object]"]
"""`compile._compile_filter`: the filter's predicate and, when it depends on time, not None."""


@dataclass(frozen=True)
class AppendEffect:
    """What appending one event of a type can do to one segment (built at compile time)."""

    takes: tuple[PropTest, ...] | None
    """Tests of the event's properties, one per aggregate of the type: the event moves a
    measure when any passes. None: every event of the type may (an unfiltered ``count``, or
    a filter that depends on time)."""
    windows: tuple[tuple[int, str, PropTest | None], ...]
    """(window ms, the filter's text, filter or None) of each ``within`` aggregate of the
    type whose filter does not depend on time: the new event may change the result again at
    its time + the window, when the filter passes (the text tells equal edges apart)."""
    exact_timer: bool
    """False when an aggregate of the type has a filter that depends on time (``within_last``
    on a property): the segment's next change must then be asked in full."""
    member_stays: PropTest | None = None
    outsider_stays: PropTest | None = None
    """For a segment that is one aggregate alone: whether an event with these properties
    can only move the measure in the direction that keeps a member in (an outsider out),
    e.g. one more event for ``count gte 3``, a non-negative amount for ``sum gt 100``."""

    def moves(self, props: Mapping[str, object]) -> bool:
        """Whether an event with these properties can change any measure of the type."""
        takes = self.takes
        if takes is None:
            return True
        for take in takes:  # noqa: SIM110 - a plain loop, the hot path
            if take(props):
                return True
        return False

    def can_change(self, props: Mapping[str, object], member: bool) -> bool:
        """Whether appending an event with these properties can change the result, for a
        customer who is (`member`) or is not in the segment: the event moves a measure, in a
        direction that can cross the segment's bound."""
        if not self.moves(props):
            return False
        stays = self.member_stays if member else self.outsider_stays
        return stays is None or not stays(props)


def append_effects(
    conditions: Iterable[Condition], compile_filter: CompileFilter, alone: Condition | None
) -> dict[str, AppendEffect]:
    """Event type -> the effect of appending one event of it, from a segment's conditions
    (every node, filters included, as `iter_conditions` walks them); `alone`: the segment's
    one condition when it has one rule, else None."""
    by_type: dict[str, list[EventCondition]] = {}
    for node in conditions:
        if isinstance(node, EventCondition):
            by_type.setdefault(node.event, []).append(node)
    effects = {etype: _effect(nodes, compile_filter) for etype, nodes in by_type.items()}
    if isinstance(alone, EventCondition) and effects[alone.event].exact_timer:
        member, outsider = _stays(alone)
        effect = effects[alone.event]
        effects[alone.event] = AppendEffect(
            effect.takes, effect.windows, effect.exact_timer, member, outsider
        )
    return effects


def _finite(value: object) -> bool:
    return is_number(value) and (not isinstance(value, float) or math.isfinite(value))


def _stays(node: EventCondition) -> tuple[PropTest | None, PropTest | None]:
    """(member stays, outsider stays) for an event this aggregate takes in (`_take`).

    A measure only rises with one more event for ``count`` and ``distinct_count``, with a
    finite value for ``max`` (from none: below everything), with a finite non-negative one
    for ``sum``; it only falls with a finite value for ``min`` (from none: above
    everything) and a finite non-positive one for ``sum``. ``gt``/``gte`` keep a member in
    when it rises (and an outsider out when it falls), ``lt``/``lte`` the other way round;
    ``max``/``min`` without a value are outside whatever the comparison, so only their
    members are sure. Infinite and NaN values decide nothing (float arithmetic)."""
    above = node.op in ("gt", "gte")
    below = node.op in ("lt", "lte")
    if not (above or below):
        return None, None
    prop = node.prop or ""  # set for every aggregate but count
    rises: PropTest | None
    falls: PropTest | None
    if node.agg in ("count", "distinct_count"):
        rises, falls = _always, None
    elif node.agg == "max":
        rises, falls = (lambda props: _finite(props.get(prop))), None
        return (rises if above else None), None
    elif node.agg == "min":
        falls = lambda props: _finite(props.get(prop))  # noqa: E731
        return (falls if below else None), None
    elif node.agg == "sum":

        def rises(props: Mapping[str, object]) -> bool:
            value = props.get(prop)
            return _finite(value) and value >= 0  # type: ignore[operator]

        def falls(props: Mapping[str, object]) -> bool:
            value = props.get(prop)
            return _finite(value) and value <= 0  # type: ignore[operator]

    else:  # avg moves either way
        return None, None
    if above:
        return rises, falls
    return falls, rises


def _always(props: Mapping[str, object]) -> bool:
    return True


def _effect(nodes: list[EventCondition], compile_filter: CompileFilter) -> AppendEffect:
    takes: list[PropTest] | None = []
    windows: list[tuple[int, str, PropTest | None]] = []
    exact = True
    for node in nodes:
        passes: PropTest | None = None
        timed_filter = False
        if node.filter is not None:
            predicate, filter_next = compile_filter(node.filter)
            timed_filter = filter_next is not None
            passes = _static(predicate)
        if timed_filter:
            takes = None
            exact = False
        elif takes is not None:
            take = _take(node, passes)
            if take is None:
                takes = None
            else:
                takes.append(take)
        if node.within is not None and not timed_filter:
            window = duration_to_ms(node.within)
            assert window is not None
            windows.append((window, repr(node.filter), passes))
    return AppendEffect(None if takes is None else tuple(takes), tuple(windows), exact)


def _static(predicate: Callable[[Mapping[str, object], int], bool]) -> PropTest:
    return lambda props: predicate(props, 0)


def _take(node: EventCondition, passes: PropTest | None) -> PropTest | None:
    """Whether an event moves this aggregate's measure; None: every event does."""
    prop = node.prop
    if prop is None:  # count: every passing event
        return passes
    usable: Callable[[object], bool] = (
        (lambda value: scalar_kind(value) is not None)
        if node.agg == "distinct_count"
        else is_number
    )
    if passes is None:
        return lambda props: usable(props.get(prop))
    test = passes
    return lambda props: usable(props.get(prop)) and test(props)
