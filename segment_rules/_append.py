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
    """False when a ``within``-free time dependence reads the events (a filter that depends
    on time): the segment's next change must then be asked in full."""

    def moves(self, props: Mapping[str, object]) -> bool:
        """Whether an event with these properties can change any measure of the type."""
        takes = self.takes
        if takes is None:
            return True
        for take in takes:  # noqa: SIM110 - a plain loop, the hot path
            if take(props):
                return True
        return False


def append_effects(
    conditions: Iterable[Condition], compile_filter: CompileFilter
) -> dict[str, AppendEffect]:
    """Event type -> the effect of appending one event of it, from a segment's conditions
    (every node, filters included, as `iter_conditions` walks them)."""
    by_type: dict[str, list[EventCondition]] = {}
    for node in conditions:
        if isinstance(node, EventCondition):
            by_type.setdefault(node.event, []).append(node)
    return {etype: _effect(nodes, compile_filter) for etype, nodes in by_type.items()}


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
