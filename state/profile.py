"""A customer's stored profile: attributes, retained event history, recent event ids, segments.

Stored as one msgpack blob per customer (`PartitionKeys.profile`). Retention (count and age)
is applied on every append and, for exactness between appends, when rules read the history.

The history is not re-encoded when a customer is touched: each event type keeps the msgpack
bytes of its records (`_EncodedRecords`), appended to and cut from the front in step with the
series, and `encode` joins them with the freshly packed attributes, ids and segments. The
bytes are those `msgpack.packb` gives for the whole profile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgpack

from segment_rules import EventRecord, EventSeries
from segment_rules.history import event_record

from ._codec import bin_header, msgpack_header

__all__ = ["Profile", "ProfileSnapshot"]

_PACKER = msgpack.Packer(use_bin_type=True)
"""One packer for the process (`packb` builds one per call); the event loop is one thread."""

_ID_DIGEST = 8
RECENT_IDS = 256
"""How many recent event ids a profile remembers to drop duplicates from upstream retries."""


def _digest(event_id: str) -> bytes:
    return hashlib.blake2b(event_id.encode(), digest_size=_ID_DIGEST).digest()


_TYPE_NAMES: dict[str, bytes] = {}
"""Event type -> its packed name (a handful of types per deployment)."""
_MAX_TYPE_NAMES = 1024


class _EncodedRecords:
    """The msgpack bytes of one event type's kept records, in order, without their header."""

    __slots__ = ("body", "first", "sizes", "start")

    def __init__(self, records: Iterable[EventRecord]) -> None:
        self.body = bytearray()
        self.sizes: list[int] = []
        self.first = 0
        """Index in `sizes` of the oldest kept record; `start` is its byte offset."""
        self.start = 0
        for record in records:
            self.append(record)

    def append(self, record: EventRecord) -> None:
        blob = _PACKER.pack([record.ts, record.props])
        self.body += blob
        self.sizes.append(len(blob))

    def drop(self, count: int) -> None:
        """Forget the `count` oldest records."""
        sizes = self.sizes
        first = self.first
        self.start += sum(sizes[first : first + count])
        self.first = first + count
        if self.first >= 64 and 2 * self.first >= len(sizes):
            del self.body[: self.start]
            del sizes[: self.first]
            self.first = self.start = 0

    def encode_into(self, parts: list[bytes | bytearray | memoryview]) -> None:
        """Append the records' msgpack array to `parts` (header, then the body uncopied)."""
        parts.append(msgpack_header(len(self.sizes) - self.first, 0x90, 0xDC))
        parts.append(self.body if not self.start else memoryview(self.body)[self.start :])


class Profile:
    """Mutable while a batch is applied; encoded back to bytes at commit."""

    __slots__ = (
        "_encoded",
        "_events",
        "_packed_attrs",
        "_packed_members",
        "_raw",
        "_stored",
        "attrs",
        "customer_id",
        "ordinal",
        "recent_ids",
        "segments",
        "wake",
    )

    def __init__(
        self,
        customer_id: str,
        attrs: dict[str, Any] | None = None,
        events: dict[str, EventSeries] | None = None,
        recent_ids: bytes = b"",
        segments: set[str] | None = None,
        wake: int | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.attrs: dict[str, Any] = attrs if attrs is not None else {}
        self._events: dict[str, EventSeries] = events if events is not None else {}
        self._raw: dict[str, list[Any]] | None = None
        """Event type -> its stored ``[ts, props]`` records, while not all are made series
        (`decode`: a type becomes a series when first read, `series`)."""
        self._stored: tuple[bytes, list[Any], Any] | None = None
        """(the bytes decoded, their ``m`` list and ``w``) while nothing else than memberships
        and the timer changed since: `encode` then reuses the bytes before ``m``."""
        self.recent_ids = bytearray(recent_ids)
        self.segments: set[str] = segments if segments is not None else set()
        self.wake = wake
        """When this customer is next due for a time-window re-evaluation (mirrors `timers`)."""
        self._encoded: dict[str, _EncodedRecords] = {}
        """Event type -> its records' bytes, made on the first encode and kept in step."""
        self._packed_attrs: bytes | None = None
        """`attrs` packed by the last encode; `upsert_attributes` forgets it (attributes are
        changed through it only)."""
        self._packed_members: tuple[tuple[str, ...], bytes] | None = None
        """The memberships the last encode packed (sorted) and their bytes: reused while
        `segments` holds the same ids (same size and a superset: cheaper than sorting). A
        tuple of str, not a frozenset: the collector stops tracking it after one look, where
        a set stays tracked and is traversed by every collection while it is young."""
        self.ordinal: int | None = None
        """The customer's number on its partition (`state.ordinals`): set when the profile is
        loaded, or by the commit that first stores it."""

    # -- the history, decoded on demand --------------------------------------------------
    @property
    def events(self) -> dict[str, EventSeries]:
        """Every event type's series (made from the stored records the first time). Whoever
        takes it may change the history: the decoded bytes are not reused by `encode` then."""
        if self._raw is not None:
            self._make_series()
        self._stored = None
        return self._events

    def _make_series(self) -> None:
        raw, made = self._raw, self._events
        assert raw is not None
        self._raw = None
        self._events = {t: made.get(t) or _series(recs) for t, recs in raw.items()}

    def series(self, event_type: str) -> EventSeries | None:
        """One event type's series, read only (only that type is decoded), None if none."""
        found = self._events.get(event_type)
        if found is None and self._raw is not None:
            records = self._raw.get(event_type)
            if records is not None:
                found = self._events[event_type] = _series(records)
        return found

    # -- encoding -------------------------------------------------------------------------
    def encode(self) -> bytes:
        """The profile as `msgpack.packb({"a", "e", "r", "m", "w"})` would give it."""
        pack = _PACKER.pack
        stored = self._stored
        if stored is not None:  # only memberships or the timer changed: splice the tail
            self._stored = None
            blob, members, wake = stored
            tail = b"".join((b"\xa1m", pack(members), b"\xa1w", pack(wake)))
            if blob.endswith(tail):
                return b"".join(
                    (
                        memoryview(blob)[: len(blob) - len(tail)],
                        b"\xa1m",
                        self._members_bytes(),
                        b"\xa1w",
                        pack(self.wake),
                    )
                )
        kept = [(t, series) for t, series in self.events.items() if series]
        attrs = self._packed_attrs
        if attrs is None:
            attrs = self._packed_attrs = pack(self.attrs)
        parts: list[bytes | bytearray | memoryview] = [b"\x85\xa1a", attrs, b"\xa1e"]
        parts.append(msgpack_header(len(kept), 0x80, 0xDE))
        encoded = self._encoded
        names = _TYPE_NAMES
        for event_type, series in kept:
            records = encoded.get(event_type)
            if records is None or len(records.sizes) - records.first != len(series):
                records = encoded[event_type] = _EncodedRecords(series)
            name = names.get(event_type)
            if name is None:
                name = pack(event_type)
                if len(names) < _MAX_TYPE_NAMES:
                    names[event_type] = name
            parts.append(name)
            records.encode_into(parts)
        parts.append(b"\xa1r")
        parts.append(bin_header(len(self.recent_ids)))
        parts.append(self.recent_ids)
        parts.append(b"\xa1m")
        parts.append(self._members_bytes())
        parts.append(b"\xa1w")
        parts.append(pack(self.wake))
        return b"".join(parts)

    def _members_bytes(self) -> bytes:
        """`pack(sorted(self.segments))`, from the last encode's when they are the same."""
        segments = self.segments
        packed = self._packed_members
        if packed is not None:
            ids = packed[0]
            if len(ids) == len(segments) and segments.issuperset(ids):
                return packed[1]
        ordered = tuple(sorted(segments))
        blob: bytes = _PACKER.pack(ordered)  # a tuple packs as the list would
        self._packed_members = (ordered, blob)
        return blob

    @classmethod
    def decode(cls, customer_id: str, blob: bytes) -> Profile:
        """The profile of `blob`; each event type's series is made when first read."""
        raw = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        members, wake = raw["m"], raw.get("w")
        profile = cls(customer_id, raw["a"], None, raw["r"], set(members), wake)
        if raw["e"]:
            profile._raw = raw["e"]
        profile._stored = (bytes(blob), members, wake)
        return profile

    # -- updates --------------------------------------------------------------------------
    def seen(self, event_id: str) -> bool:
        """True if `event_id` was applied recently (and remember it otherwise)."""
        digest = _digest(event_id)
        ids = self.recent_ids
        at = ids.find(digest)
        while at != -1:  # a match must start on a digest boundary
            if at % _ID_DIGEST == 0:
                return True
            at = ids.find(digest, at + 1)
        ids.extend(digest)
        self._stored = None
        if len(ids) > RECENT_IDS * _ID_DIGEST:
            del ids[: len(ids) - RECENT_IDS * _ID_DIGEST]
        return False

    def upsert_attributes(self, properties: Mapping[str, Any]) -> frozenset[str]:
        """Apply a profile event; a None value removes the attribute. Returns names changed."""
        changed = set()
        for name, value in properties.items():
            if value is None:
                if self.attrs.pop(name, None) is not None:
                    changed.add(name)
            else:
                old = self.attrs.get(name, _MISSING)
                if old is _MISSING or type(old) is not type(value) or old != value:
                    self.attrs[name] = value
                    changed.add(name)
        if changed:
            self._packed_attrs = None
            self._stored = None
        return frozenset(changed)

    def append_event(
        self,
        event_type: str,
        ts: int,
        props: Mapping[str, Any],
        max_events: int,
        cutoff_ms: int,
        *,
        prune: bool = True,
    ) -> bool:
        """Keep an activity event (in ts order); False when it is already older than retention.

        `prune=False`: retention is left to the caller's `prune`, which names the types that
        lost events (the engine re-evaluates their segments)."""
        if ts <= cutoff_ms:
            return False
        events = self.events
        series = events.get(event_type)
        if series is None:
            series = events[event_type] = EventSeries()
        record = event_record(ts, dict(props))
        in_order = not series or series.last_ts() <= ts
        series.add(record)
        encoded = self._encoded.get(event_type)
        if encoded is not None:
            if in_order:
                encoded.append(record)
            else:
                del self._encoded[event_type]
        if prune:
            self.prune(max_events, cutoff_ms)
        return True

    def prune(self, max_events: int, cutoff_ms: int) -> frozenset[str]:
        """Drop events at or before `cutoff_ms`, then the oldest beyond `max_events`."""
        touched: set[str] | None = None
        total = 0
        empty = False
        encoded = self._encoded
        for event_type, series in self.events.items():
            if series and series.first_ts() <= cutoff_ms:
                dropped = series.drop_through(cutoff_ms)
                if event_type in encoded:
                    encoded[event_type].drop(dropped)
                touched = touched or set()
                touched.add(event_type)
            size = len(series)
            total += size
            empty = empty or not size
        while total > max_events:
            oldest_type = min(
                (t for t, series in self.events.items() if series),
                key=lambda t: self.events[t].first_ts(),
            )
            self.events[oldest_type].drop_oldest()
            if oldest_type in encoded:
                encoded[oldest_type].drop(1)
            touched = touched or set()
            touched.add(oldest_type)
            total -= 1
        if empty or touched:
            for event_type in [t for t, recs in self.events.items() if not recs]:
                del self.events[event_type]
                encoded.pop(event_type, None)
        return frozenset(touched) if touched else _NOTHING

    def oldest_event_ts(self) -> int | None:
        oldest: int | None = None
        made = self._events
        for series in made.values():
            if series:
                first = series.first_ts()
                if oldest is None or first < oldest:
                    oldest = first
        if self._raw is not None:  # stored in time order: the first record is the oldest
            for event_type, records in self._raw.items():
                if records and event_type not in made:
                    first = records[0][0]
                    if oldest is None or first < oldest:
                        oldest = first
        return oldest

    def snapshot(self, cutoff_ms: int) -> ProfileSnapshot:
        return ProfileSnapshot(self, cutoff_ms)


def _series(records: list[Any]) -> EventSeries:
    """A stored type's ``[ts, props]`` records (stored from a series: in time order)."""
    return EventSeries([event_record(ts, props) for ts, props in records], ordered=True)


_MISSING = object()
_NOTHING: frozenset[str] = frozenset()


class ProfileSnapshot:
    """What a rule can see of a profile at one instant: retention applied, read only.

    Each event type's window is worked out once per snapshot (many segments read the same
    type): a snapshot is taken for one evaluation round, while the history does not change.
    """

    __slots__ = ("_cutoff", "_profile", "_windows")

    def __init__(self, profile: Profile, cutoff_ms: int) -> None:
        self._profile = profile
        self._cutoff = cutoff_ms
        self._windows: dict[str, Sequence[EventRecord]] = {}

    @property
    def customer_id(self) -> str:
        """Whose profile this is (an expansion segment's list is of customer ids)."""
        return self._profile.customer_id

    def attribute(self, name: str) -> object | None:
        return self._profile.attrs.get(name)

    def events(self, event_type: str) -> Sequence[EventRecord]:
        found = self._windows.get(event_type)
        if found is not None:
            return found
        series = self._profile.series(event_type)
        window: Sequence[EventRecord]
        if not series:
            window = ()
        elif series.first_ts() > self._cutoff:
            window = series
        else:
            window = series.window(series.after(self._cutoff))
        self._windows[event_type] = window
        return window

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self._profile.segments
