"""What a rule can see of a customer: the read-only :class:`ProfileView`."""

from __future__ import annotations

__all__ = ["DictProfile", "EventRecord", "ProfileView"]

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .history import EventRecord, EventSeries


class ProfileView(Protocol):
    """Read-only view of one customer, as rules see it."""

    def attribute(self, name: str) -> object | None:
        """The attribute value; ``None`` when missing (or null)."""
        ...

    def events(self, event_type: str) -> Sequence[EventRecord]:
        """The customer's events of ``event_type``, oldest first (ascending ``ts``).

        An :class:`~segment_rules.history.EventSeries` (or an ``EventSlice`` of one) lets
        aggregates use its incremental indexes; any other sequence is scanned."""
        ...

    def in_segment(self, segment_id: str) -> bool:
        """Whether the customer currently belongs to ``segment_id``."""
        ...


_NO_EVENTS: tuple[EventRecord, ...] = ()


@dataclass(frozen=True)
class DictProfile:
    """A :class:`ProfileView` over plain containers, for tests and tools.

    Events are sorted by ``ts`` on construction (stable for equal timestamps) into
    :class:`~segment_rules.history.EventSeries`, so aggregates use their indexes as the
    engine's profiles do.
    """

    attributes: Mapping[str, object] = field(default_factory=dict)
    events_by_type: Mapping[str, Sequence[EventRecord]] = field(default_factory=dict)
    memberships: Collection[str] = frozenset()
    """Any collection of segment ids, kept as a frozenset (``__post_init__``)."""

    def __post_init__(self) -> None:
        ordered = {etype: EventSeries(records) for etype, records in self.events_by_type.items()}
        object.__setattr__(self, "events_by_type", ordered)
        object.__setattr__(self, "memberships", frozenset(self.memberships))

    @classmethod
    def build(
        cls,
        attributes: Mapping[str, object] | None = None,
        events: Iterable[tuple[str, int, Mapping[str, object]]] = (),
        memberships: Iterable[str] = (),
    ) -> DictProfile:
        """Build from ``(event_type, ts, props)`` triples."""
        by_type: dict[str, list[EventRecord]] = {}
        for etype, ts, props in events:
            by_type.setdefault(etype, []).append(EventRecord(ts, props))
        return cls(dict(attributes or {}), by_type, frozenset(memberships))

    def attribute(self, name: str) -> object | None:
        return self.attributes.get(name)

    def events(self, event_type: str) -> Sequence[EventRecord]:
        return self.events_by_type.get(event_type, _NO_EVENTS)

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self.memberships
