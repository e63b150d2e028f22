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


_Stored = bytes | list[Any]
"""One event type's stored records: their msgpack array (bytes, not unpacked yet) or the
unpacked ``[[ts, props], ...]`` list (a profile unpacked whole)."""


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
        "evaluated",
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
        self._raw: dict[str, _Stored] | None = None
        """Event type -> its stored ``[ts, props]`` records (their msgpack bytes, or unpacked),
        while not all are made series (`decode`: a type becomes a series when first read,
        `series`)."""
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
        self.evaluated = False
        """True once every active segment has been evaluated for this customer (the engine
        does so at its first event; activations evaluate every stored customer): its stored
        memberships are then the rules' results, so an event need only evaluate what it can
        change. Stored as ``"k": true``; a new customer, or one stored before this flag
        existed, has it False and is evaluated against every segment at its next event."""

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
        self._events = {t: made.get(t) or _series(_records(recs)) for t, recs in raw.items()}

    def series(self, event_type: str) -> EventSeries | None:
        """One event type's series, read only (only that type is decoded), None if none."""
        found = self._events.get(event_type)
        if found is None and self._raw is not None:
            records = self._raw.get(event_type)
            if records is not None:
                found = self._events[event_type] = _series(_records(records))
        return found

    # -- encoding -------------------------------------------------------------------------
    def encode(self, head: bytes = b"") -> bytes:
        """The profile as `msgpack.packb({["k",] "a", "e", "r", "m", "w"})` would give it
        (``"k": True`` first when `evaluated`, absent otherwise), after
        `head` (a stored profile's ordinal header, `state.ordinals.stored_head`: joined here,
        the profile's bytes are copied once)."""
        pack = _PACKER.pack
        stored = self._stored
        if stored is not None:  # only memberships or the timer changed: splice the tail
            self._stored = None
            blob, members, wake = stored
            tail = b"".join((b"\xa1m", pack(members), b"\xa1w", pack(wake)))
            if blob.endswith(tail):
                return b"".join(
                    (
                        head,
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
        parts: list[bytes | bytearray | memoryview] = [
            head,
            b"\x86\xa1k\xc3\xa1a" if self.evaluated else b"\x85\xa1a",
            attrs,
            b"\xa1e",
        ]
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
        """The profile of `blob`; each event type's records are unpacked when first read.

        A blob of `_WALK_FROM` bytes or more is walked without unpacking its history
        (msgpack's `skip`): each type keeps the bytes of its records (`_raw`) until a rule, a
        change or `encode` asks for them. A shorter blob, or one the walk cannot read whole, is
        unpacked at once (raising what `unpackb` raises)."""
        blob = bytes(blob)
        fields = _walk(blob) if len(blob) >= _WALK_FROM else None
        if fields is None:  # short, or not one map read whole: unpack it at once
            fields = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        members, wake = fields["m"], fields.get("w")
        profile = cls(customer_id, fields["a"], None, fields["r"], set(members), wake)
        if fields["e"]:
            profile._raw = fields["e"]
        profile.evaluated = fields.get("k") is True
        profile._stored = (blob, members, wake)
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

    def mark_evaluated(self) -> None:
        """Every active segment was just evaluated for this customer (`evaluated`)."""
        if not self.evaluated:
            self.evaluated = True
            self._stored = None  # the flag is in the bytes before the memberships

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
                if event_type not in made:
                    stored_first = _first_ts(records)
                    if stored_first is not None and (oldest is None or stored_first < oldest):
                        oldest = stored_first
        return oldest

    def snapshot(self, cutoff_ms: int) -> ProfileSnapshot:
        return ProfileSnapshot(self, cutoff_ms)


def _series(records: list[Any]) -> EventSeries:
    """A stored type's ``[ts, props]`` records (stored from a series: in time order)."""
    return EventSeries([event_record(ts, props) for ts, props in records], ordered=True)


_WALK_FROM = 768
"""Stored profiles from this size on are walked (`_walk`), shorter ones unpacked at once: the
walk's fixed cost (an `Unpacker`, a call per field) is repaid by the records it leaves packed
from about there (compiled, a benchmark profile of ~430 B decodes in ~10 µs either way)."""


def _walk(blob: bytes) -> dict[str, Any] | None:
    """The top-level fields of a stored profile, each event type's records left as the bytes
    of their msgpack array (`_Stored`); None when `blob` is not one msgpack map read whole
    (`decode` then unpacks it at once, raising what `unpackb` raises)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(blob))
    try:
        unpacker.feed(blob)
        fields: dict[str, Any] = {}
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key != "e":
                fields[key] = unpacker.unpack()
                continue
            history: dict[str, _Stored] = {}
            for _ in range(unpacker.read_map_header()):
                event_type = unpacker.unpack()
                start = unpacker.tell()
                unpacker.skip()
                history[event_type] = blob[start : unpacker.tell()]
            fields[key] = history
        if unpacker.tell() != len(blob):
            return None
    except Exception:  # malformed: `decode` unpacks it whole and raises unpackb's error
        return None
    return fields


def _records(stored: _Stored) -> list[Any]:
    """One event type's ``[ts, props]`` records, unpacked if still bytes."""
    if isinstance(stored, bytes):
        records: list[Any] = msgpack.unpackb(stored, raw=False, strict_map_key=False)
        return records
    return stored


_INTS = {0xCC: (1, False), 0xCD: (2, False), 0xCE: (4, False), 0xCF: (8, False)}
_INTS.update({0xD0: (1, True), 0xD1: (2, True), 0xD2: (4, True), 0xD3: (8, True)})
"""msgpack int header -> (size in bytes, signed)."""


def _first_ts(stored: _Stored) -> int | None:
    """The ts of one event type's first (oldest) stored record, None when it has none; read
    from the bytes' head (``array header, 0x92, int``) without unpacking the records."""
    if not isinstance(stored, bytes):
        return stored[0][0] if stored else None
    head = stored[0]
    count, at = -1, 0
    if 0x90 <= head <= 0x9F:
        count, at = head & 0x0F, 1
    elif head == 0xDC:
        count, at = int.from_bytes(stored[1:3], "big"), 3
    elif head == 0xDD:
        count, at = int.from_bytes(stored[1:5], "big"), 5
    if count == 0:
        return None
    if count > 0 and stored[at] == 0x92:  # the first record: [ts, props]
        kind = stored[at + 1]
        if kind < 0x80:  # positive fixint
            return kind
        if kind >= 0xE0:  # negative fixint
            return kind - 0x100
        size = _INTS.get(kind)
        if size is not None:
            return int.from_bytes(stored[at + 2 : at + 2 + size[0]], "big", signed=size[1])
    first: int = _records(stored)[0][0]  # another layout: unpack this type
    return first


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
