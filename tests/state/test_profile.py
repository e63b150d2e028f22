"""Profile: attributes, retention, duplicate detection, encoding."""

from __future__ import annotations

from unittest import mock

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import state.profile as profile_module
from segment_rules import EventRecord, EventSeries
from state import Profile
from state.profile import RECENT_IDS

from ..hypothesis_profiles import examples


def test_null_removes_an_attribute_and_changes_are_reported() -> None:
    profile = Profile("c")
    assert profile.upsert_attributes({"a": 1, "b": "x"}) == {"a", "b"}
    assert profile.upsert_attributes({"a": 1, "b": None}) == {"b"}
    assert profile.attrs == {"a": 1}
    # same value of another type is a change (no coercion: True is not 1)
    assert profile.upsert_attributes({"a": True}) == {"a"}


def test_event_ids_are_remembered_up_to_the_ring_size() -> None:
    profile = Profile("c")
    assert not profile.seen("e1")
    assert profile.seen("e1")
    for n in range(RECENT_IDS):
        profile.seen(f"x{n}")
    assert not profile.seen("e1")  # pushed out of the ring


def test_retention_drops_old_and_excess_events() -> None:
    profile = Profile("c")
    for ts in (50, 10, 30, 20, 40):
        profile.append_event("visit", ts, {}, max_events=10, cutoff_ms=0)
    assert [r.ts for r in profile.events["visit"]] == [10, 20, 30, 40, 50]
    profile.append_event("buy", 60, {"n": 1}, max_events=4, cutoff_ms=15)
    assert [r.ts for r in profile.events["visit"]] == [30, 40, 50]
    assert not profile.append_event("buy", 5, {}, max_events=4, cutoff_ms=15)
    assert profile.oldest_event_ts() == 30
    view = profile.snapshot(cutoff_ms=40)
    assert [r.ts for r in view.events("visit")] == [50]


events = st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 1000)), max_size=60)


@given(events, st.integers(1, 20), st.integers(-1, 1000))
def test_retention_keeps_exactly_the_newest_events_after_the_cutoff(
    items: list[tuple[str, int]], max_events: int, cutoff: int
) -> None:
    profile = Profile("c")
    for event_type, ts in items:
        profile.append_event(event_type, ts, {}, max_events, cutoff)
    kept = sorted((r.ts, t) for t, recs in profile.events.items() for r in recs)
    assert len(kept) <= max_events
    assert all(ts > cutoff for ts, _ in kept)
    for recs in profile.events.values():
        assert [r.ts for r in recs] == sorted(r.ts for r in recs)
    # everything dropped for the count limit is no newer than what was kept
    eligible = sorted(ts for _, ts in items if ts > cutoff)
    if kept and len(eligible) > max_events:
        assert min(ts for ts, _ in kept) >= eligible[-max_events - 1]


int64 = st.integers(-(2**63), 2**63 - 1)  # the event edge refuses wider integers


@given(st.dictionaries(st.text(max_size=5), st.one_of(int64, st.text(), st.booleans())))
def test_encoding_round_trips(attrs: dict[str, object]) -> None:
    profile = Profile("c", dict(attrs), segments={"s1", "s2"}, wake=123)
    profile.append_event("buy", 10, {"amount": 3}, 100, 0)
    profile.seen("e1")
    back = Profile.decode("c", profile.encode())
    assert (back.attrs, back.events, back.segments, back.wake) == (
        profile.attrs,
        profile.events,
        profile.segments,
        profile.wake,
    )
    assert back.seen("e1")


@given(st.lists(st.text(max_size=8), max_size=400))
def test_seen_matches_a_plain_list_of_the_last_ids(ids: list[str]) -> None:
    profile = Profile("c")
    remembered: list[str] = []
    for event_id in ids:
        expected = event_id in remembered[-RECENT_IDS:]
        assert profile.seen(event_id) is expected
        if not expected:
            remembered.append(event_id)


def _whole(profile: Profile) -> bytes:
    """The profile packed in one go, as before the history was encoded incrementally."""
    events = {t: [[r.ts, r.props] for r in recs] for t, recs in profile.events.items() if recs}
    evaluated = {"k": True} if profile.evaluated else {}
    return msgpack.packb(
        {
            **evaluated,
            "a": profile.attrs,
            "e": events,
            "r": bytes(profile.recent_ids),
            "m": sorted(profile.segments),
            "w": profile.wake,
        },
        use_bin_type=True,
    )


steps = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(["a", "b"]), st.sampled_from([f"t{n}" for n in range(16)])),
        st.integers(0, 400),
        st.integers(0, 2**40),
        st.booleans(),
    ),
    min_size=40,
    max_size=120,
)


@settings(max_examples=examples(200), deadline=None)
@given(steps, st.integers(1, 80))
def test_incremental_encoding_gives_the_bytes_of_a_whole_encoding(
    items: list[tuple[str, int, int, bool]], max_events: int
) -> None:
    """Encoded after every step (so each type's bytes are appended to, cut and rebuilt in
    turn), through appends in and out of order, age and count retention and 16+ types;
    attributes set, changed and removed (the packed attributes are kept between encodings)
    and event ids remembered past 255 bytes (a wider bin header)."""
    profile = Profile("c", {"x": 1})
    for event_type, ts, value, encode in items:
        cutoff = max(-1, ts - 300)
        profile.append_event(event_type, ts, {"v": value}, max_events, cutoff)
        profile.segments.symmetric_difference_update({event_type})
        profile.seen(f"{event_type}-{ts}-{value}")
        if ts % 3 == 0:
            profile.upsert_attributes({event_type[:1]: None if ts % 2 else value % 5})
        if ts % 7 == 0:
            profile.mark_evaluated()
        if encode:
            assert profile.encode() == _whole(profile)
    blob = profile.encode()
    assert blob == _whole(profile)
    decoded = Profile.decode("c", blob)
    assert decoded.events == profile.events
    assert decoded.evaluated is profile.evaluated


def _decoded_whole(blob: bytes) -> Profile:
    """`blob` decoded in one go, every series made at once (as before decoding was lazy)."""
    raw = msgpack.unpackb(blob, raw=False, strict_map_key=False)
    events = {
        t: EventSeries([EventRecord(ts, props) for ts, props in recs], ordered=True)
        for t, recs in raw["e"].items()
    }
    return Profile("c", raw["a"], events, raw["r"], set(raw["m"]), raw.get("w"))


_TYPES = [f"t{n}" for n in range(5)]
history = st.lists(
    st.tuples(st.sampled_from(_TYPES), st.integers(0, 1000), st.integers(-5, 5)), max_size=30
)
reads = st.lists(st.tuples(st.sampled_from([*_TYPES, "never"]), st.integers(-1, 1000)), max_size=8)
changes = st.tuples(st.sets(st.sampled_from(["s1", "s2", "s3", "s4"])), st.one_of(st.none(), int64))


def _decoded(blob: bytes, walk: bool) -> Profile:
    """`Profile.decode`, its history walked and left packed (`walk`) or unpacked at once,
    whatever the blob's size (`state.profile._WALK_FROM`)."""
    with mock.patch.object(profile_module, "_WALK_FROM", 0 if walk else 1 << 62):
        return Profile.decode("c", blob)


@pytest.mark.parametrize("walk", [True, False], ids=["walked", "unpacked"])
@settings(max_examples=examples(300), deadline=None)
@given(history, reads, changes, st.integers(0, 3))
def test_lazy_decoding_agrees_with_decoding_everything(
    walk: bool,
    items: list[tuple[str, int, int]],
    asked: list[tuple[str, int]],
    change: tuple[set[str], int | None],
    then: int,
) -> None:
    """A decoded profile makes an event type's series when a rule first reads it and splices
    new memberships and timer onto the stored bytes: whatever is read in whatever order, and
    whatever changes after, it reads and encodes as the profile decoded all at once."""
    source = Profile("c", {"tier": "gold"}, segments={"s1", "s3"}, wake=77)
    for event_type, ts, value in items:
        source.append_event(event_type, ts, {"v": value}, 20, 0)
        source.seen(f"{event_type}{ts}{value}")
    blob = source.encode()
    lazy, whole = _decoded(blob, walk), _decoded_whole(blob)
    for event_type, cutoff in asked:  # some types read, in some order, at some cutoffs
        assert list(lazy.snapshot(cutoff).events(event_type)) == list(
            whole.snapshot(cutoff).events(event_type)
        )
        assert lazy.oldest_event_ts() == whole.oldest_event_ts()
    assert lazy.oldest_event_ts() == whole.oldest_event_ts()
    members, wake = change
    for profile in (lazy, whole):
        profile.segments = set(members)
        profile.wake = wake
        if then == 1:  # a touch after the reads: attributes, an event id, an event
            profile.upsert_attributes({"tier": "silver"})
        elif then == 2:
            profile.seen("new-id")
        elif then == 3:
            profile.append_event("t0", 999, {"v": 0}, 20, 0)
    assert lazy.encode() == whole.encode() == _whole(whole)
    assert lazy.events == whole.events
    assert (lazy.attrs, lazy.segments, lazy.wake, lazy.recent_ids) == (
        whole.attrs,
        whole.segments,
        whole.wake,
        whole.recent_ids,
    )


@pytest.mark.parametrize("walk", [True, False], ids=["walked", "unpacked"])
@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(_TYPES[:2]), st.one_of(int64, st.integers(2**63, 2**64 - 1))),
        max_size=50,
    ),
    st.lists(st.sampled_from(_TYPES[:2]), max_size=2),
)
@example([("t0", 2**64 - 1 - n) for n in range(20)], [])  # 16+ records: a wider array header
@example([("t1", -(2**40) - n) for n in range(20)], ["t1"])  # int64, read after
def test_lazy_oldest_event_ts_reads_any_stored_integer_timestamp(
    walk: bool, items: list[tuple[str, int]], read: list[str]
) -> None:
    """`oldest_event_ts` of a decoded profile reads each unread type's first timestamp from its
    bytes (fixints, 8 to 64 bits, signed or not, 16+ records: a wider array header) and
    agrees with the profile decoded at once, before and after some types are read."""
    cutoff = -(2**63) - 1
    source = Profile("c")
    for event_type, ts in items:
        source.append_event(event_type, ts, {}, 100, cutoff)
    blob = source.encode()
    lazy, whole = _decoded(blob, walk), _decoded_whole(blob)
    assert lazy.oldest_event_ts() == whole.oldest_event_ts() == source.oldest_event_ts()
    for event_type in read:
        assert list(lazy.snapshot(cutoff).events(event_type)) == list(
            whole.snapshot(cutoff).events(event_type)
        )
        assert lazy.oldest_event_ts() == whole.oldest_event_ts()
    assert lazy.encode() == blob


@pytest.mark.parametrize("walk", [True, False], ids=["walked", "unpacked"])
@pytest.mark.parametrize(
    "blob",
    [
        b" a profile",  # an int, then more bytes
        msgpack.packb({"a": {}, "e": {}, "r": b"", "m": []}, use_bin_type=True)[:-1],
        msgpack.packb({"a": {}, "e": {"t": [[1, {}]]}, "r": b"", "m": []}) + b"\x00",
        msgpack.packb({"a": {}, "e": {}, "r": b""}, use_bin_type=True),  # no "m"
    ],
)
def test_a_malformed_stored_profile_raises_what_unpacking_it_whole_raises(
    blob: bytes, walk: bool
) -> None:
    """The walk that leaves the history packed falls back to unpacking the blob at once, so a
    corrupt profile fails as before (the dead letter's reason names msgpack's error)."""
    with pytest.raises(Exception) as whole:
        _decoded_whole(blob)
    with pytest.raises(type(whole.value)) as lazy:
        _decoded(blob, walk)
    assert str(lazy.value) == str(whole.value)
