"""A customer's events of one type, sorted by time, with incremental aggregate indexes.

Every window an aggregate reads is a suffix of the sorted history (the retention cutoff and a
``within`` window both cut older events away; later events are all kept), so each index
answers "over the events from position ``start`` on" without a scan:

- counts and exact sums: prefix sums (``P[end] - P[start]``), sums as integers scaled by a
  power of two, so ``sum``/``avg`` compare exactly (as the reference does with fractions);
- ``min``/``max``: a monotonic stack of suffix extremes, searched by position;
- ``distinct_count``: the last position of each distinct value, kept sorted.

Indexes are built on the first query, extended when events are appended in time order and
rebuilt lazily after an insertion in the middle or a compaction. Events dropped from the front
(retention) only move ``head``; their slots are reclaimed in bulk. Positions are absolute
indexes into the record list, including dropped slots before ``head``.

A series also keeps a memo (:meth:`EventSeries.memo`) of measures aggregates worked out on it
(a count, a sum, the first passing event of a window...), keyed by what was measured and from
which position: many segments aggregate the same events, and a customer's series that did not
change since it was last measured is not measured again. Any change of the series empties it.
"""

from __future__ import annotations

__all__ = ["EventRecord", "EventSeries", "EventSlice", "event_record"]

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple, overload

from ._values import is_number, scalar_kind


class EventRecord(NamedTuple):
    """One past event of a customer: epoch-ms timestamp and its properties."""

    ts: int
    props: Mapping[str, object]


_TUPLE_NEW: Final = tuple.__new__


def event_record(ts: int, props: Mapping[str, object]) -> EventRecord:
    """``EventRecord(ts, props)``, made without the named tuple's ``__new__``: that one is
    Python code (also in the compiled build, where a `NamedTuple` stays a Python class), and
    one record is made per appended or decoded event. The same value and type."""
    record: EventRecord = _TUPLE_NEW(EventRecord, (ts, props))
    return record


PropTest = Callable[[Mapping[str, object], int], bool]
"""A property filter that does not depend on time (its ``now`` argument is ignored)."""

_COMPACT_AT = 64
_MAX_INDEXES = 64
"""Indexes kept per series; past it they are all dropped (definitions replaced over time)."""
_MIN_SHIFT = 64
_MAX_MEMO = 256
"""Measures kept per series before the memo starts afresh (time moving windows along)."""


class _Index:
    __slots__ = ("upto",)

    def __init__(self) -> None:
        self.upto = 0
        """Absolute position up to which records were taken in."""

    def take(self, position: int, record: EventRecord) -> None:
        raise NotImplementedError


class CountIndex(_Index):
    """Prefix counts of the events that pass a filter."""

    __slots__ = ("passes", "prefix")

    def __init__(self, passes: PropTest) -> None:
        super().__init__()
        self.passes = passes
        self.prefix = [0]

    def take(self, position: int, record: EventRecord) -> None:
        prefix = self.prefix
        prefix.append(prefix[-1] + (1 if self.passes(record.props, 0) else 0))

    def count(self, start: int, end: int) -> int:
        return self.prefix[end] - self.prefix[start]

    def first_passing(self, start: int, end: int) -> int | None:
        """Position of the first passing event in ``[start, end)``."""
        prefix = self.prefix
        at = bisect_right(prefix, prefix[start], lo=start) - 1
        return at if at < end else None


class SumIndex(_Index):
    """Prefix counts and exact prefix sums (scaled by ``2**shift``) of a numeric property."""

    __slots__ = ("counts", "finite", "passes", "prop", "shift", "sums")

    def __init__(self, prop: str, passes: PropTest | None) -> None:
        super().__init__()
        self.prop = prop
        self.passes = passes
        self.counts = [0]
        self.sums = [0]
        self.shift = 0
        self.finite = True
        """False once an infinite or NaN value was seen: callers fall back to a scan."""

    def take(self, position: int, record: EventRecord) -> None:
        value = record.props.get(self.prop)
        passes = self.passes
        counted = is_number(value) and (passes is None or passes(record.props, 0))
        if not counted:
            self.counts.append(self.counts[-1])
            self.sums.append(self.sums[-1])
            return
        if isinstance(value, float):
            if not math.isfinite(value):
                self.finite = False
                value = 0
            numerator, denominator = value.as_integer_ratio()
            bits = denominator.bit_length() - 1
            if bits > self.shift:
                self._rescale(max(bits, 2 * self.shift, _MIN_SHIFT))
            scaled = numerator << (self.shift - bits)
        else:
            scaled = value << self.shift  # type: ignore[operator]
        self.counts.append(self.counts[-1] + 1)
        self.sums.append(self.sums[-1] + scaled)

    def _rescale(self, shift: int) -> None:
        more = shift - self.shift
        self.sums = [s << more for s in self.sums]
        self.shift = shift


class ExtremeIndex(_Index):
    """Suffix minima (or maxima) of a numeric property: positions and values, a stack."""

    __slots__ = ("finite", "largest", "passes", "positions", "prop", "values")

    def __init__(self, prop: str, passes: PropTest | None, largest: bool) -> None:
        super().__init__()
        self.prop = prop
        self.passes = passes
        self.largest = largest
        self.positions: list[int] = []
        self.values: list[Any] = []
        self.finite = True

    def take(self, position: int, record: EventRecord) -> None:
        value = record.props.get(self.prop)
        passes = self.passes
        if not is_number(value) or (passes is not None and not passes(record.props, 0)):
            return
        if isinstance(value, float) and not math.isfinite(value):
            self.finite = False
            return
        values, positions = self.values, self.positions
        if self.largest:
            while values and values[-1] <= value:
                values.pop()
                positions.pop()
        else:
            while values and values[-1] >= value:
                values.pop()
                positions.pop()
        values.append(value)
        positions.append(position)

    def extreme(self, start: int) -> Any | None:
        """The min (max) over ``[start, end)``, ``None`` when no value is there."""
        at = bisect_left(self.positions, start)
        return self.values[at] if at < len(self.values) else None


class DistinctIndex(_Index):
    """The last position of each distinct scalar value, positions kept sorted."""

    __slots__ = ("finite", "last", "passes", "prop", "sorted_last")

    def __init__(self, prop: str, passes: PropTest | None) -> None:
        super().__init__()
        self.prop = prop
        self.passes = passes
        self.last: dict[tuple[str, object], int] = {}
        self.sorted_last: list[int] = []
        self.finite = True

    def take(self, position: int, record: EventRecord) -> None:
        value = record.props.get(self.prop)
        kind = scalar_kind(value)
        if kind is None:
            return
        passes = self.passes
        if passes is not None and not passes(record.props, 0):
            return
        if isinstance(value, float) and math.isnan(value):
            self.finite = False  # NaN is not equal to itself: a set decides
            return
        key = (kind, value)
        old = self.last.get(key)
        if old is not None:
            ordered = self.sorted_last
            del ordered[bisect_left(ordered, old)]
        self.last[key] = position
        self.sorted_last.append(position)

    def distinct(self, start: int) -> int:
        ordered = self.sorted_last
        return len(ordered) - bisect_left(ordered, start)


class EventSeries(Sequence[EventRecord]):
    """The events of one type, oldest first, with the indexes aggregates ask for.

    Equal to any sequence of the same records (``==`` with a list compares the records).
    """

    __slots__ = ("_indexes", "_memo", "_records", "_ts", "head")

    def __init__(self, records: Iterable[EventRecord] = (), *, ordered: bool = False) -> None:
        items = list(records)
        if not ordered:
            items.sort(key=_ts_of)
        self._records: list[EventRecord] = items
        self._ts: list[int] = [r.ts for r in items]
        self.head = 0
        """Absolute position of the oldest kept event (read only outside the series)."""
        self._indexes: dict[Hashable, _Index] = {}
        self._memo: dict[Hashable, Any] | None = None

    # -- the sequence ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._records) - self.head

    @overload
    def __getitem__(self, index: int) -> EventRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[EventRecord]: ...

    def __getitem__(self, index: int | slice) -> EventRecord | Sequence[EventRecord]:
        return self.item_from(self.head, index)

    def item_from(self, start: int, index: int | slice) -> EventRecord | Sequence[EventRecord]:
        """``self[index]`` as if the series began at absolute position ``start``."""
        records = self._records
        if isinstance(index, slice):
            return records[start:][index]
        size = len(records) - start
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("event index out of range")
        return records[start + index]

    def __iter__(self) -> Iterator[EventRecord]:
        records = self._records
        for at in range(self.head, len(records)):
            yield records[at]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventSeries | list | tuple):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventSeries({list(self)!r})"

    # -- changes --------------------------------------------------------------------------
    def add(self, record: EventRecord) -> None:
        """Keep ``record`` in time order (after the events of the same time)."""
        self._memo = None
        ts = self._ts
        if not ts or ts[-1] <= record.ts:
            self._records.append(record)
            ts.append(record.ts)
            return
        at = bisect_right(ts, record.ts, lo=self.head)
        self._records.insert(at, record)
        ts.insert(at, record.ts)
        self._indexes.clear()

    def drop_through(self, cutoff: int) -> int:
        """Drop the events at or before ``cutoff``; how many."""
        start = bisect_right(self._ts, cutoff, lo=self.head)
        dropped = start - self.head
        if dropped:
            self._memo = None
            self.head = start
            self._compact()
        return dropped

    def drop_oldest(self) -> None:
        self._memo = None
        self.head += 1
        self._compact()

    def _compact(self) -> None:
        head = self.head
        if head >= _COMPACT_AT and 2 * head >= len(self._records):
            del self._records[:head]
            del self._ts[:head]
            self.head = 0
            self._indexes.clear()

    # -- reading --------------------------------------------------------------------------
    @property
    def end(self) -> int:
        """Absolute position after the newest event."""
        return len(self._records)

    def first_ts(self) -> int:
        return self._ts[self.head]

    def last_ts(self) -> int:
        """The newest kept event's time (the series must not be empty)."""
        return self._ts[-1]

    def after(self, ts: int) -> int:
        """Absolute position of the first event later than ``ts`` (at least ``head``)."""
        return bisect_right(self._ts, ts, lo=self.head)

    def ts_at(self, position: int) -> int:
        return self._ts[position]

    def records(self, start: int) -> list[EventRecord]:
        """The events from absolute position ``start`` on (a copy)."""
        return self._records[start:]

    def indexed(self, key: Hashable, build: Callable[[], _Index]) -> Any:
        """The index stored under ``key`` (made by ``build`` the first time), up to date."""
        found = self._indexes.get(key)
        if found is None:
            indexes = self._indexes
            if len(indexes) >= _MAX_INDEXES:
                indexes.clear()
            found = indexes[key] = build()
        records = self._records
        upto = found.upto
        if upto < len(records):
            take = found.take
            for at in range(upto, len(records)):
                take(at, records[at])
            found.upto = len(records)
        return found

    def memo(self) -> dict[Hashable, Any]:
        """Measures of the series as it is now, ``(what, start position) -> value``, for the
        aggregates to share; emptied by any change of the series (`add`, the drops)."""
        memo = self._memo
        if memo is None or len(memo) >= _MAX_MEMO:
            memo = self._memo = {}
        return memo

    def window(self, start: int) -> EventSlice:
        return EventSlice(self, max(start, self.head))


class EventSlice(Sequence[EventRecord]):
    """The events of a series from an absolute position on, without copying them."""

    __slots__ = ("series", "start")

    def __init__(self, series: EventSeries, start: int) -> None:
        self.series = series
        self.start = start

    def __len__(self) -> int:
        return self.series.end - self.start

    @overload
    def __getitem__(self, index: int) -> EventRecord: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[EventRecord]: ...

    def __getitem__(self, index: int | slice) -> EventRecord | Sequence[EventRecord]:
        return self.series.item_from(self.start, index)

    def __iter__(self) -> Iterator[EventRecord]:
        return iter(self.series.records(self.start))


def _ts_of(record: EventRecord) -> int:
    return record.ts
