"""The partition engine without I/O: incremental evaluation, propagation, timers, tasks."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams.engine import EngineConfig, PartitionEngine, TaskStats
from streams.messages import Event

from ..hypothesis_profiles import examples

NOW = 1_800_000_000_000
DAY = 86_400_000


def _applied(segment_id: str, where: dict[str, Any], **extra: Any) -> AppliedSegment:
    definition = {"id": segment_id, "name": segment_id, "rules": [{"where": where}], **extra}
    return AppliedSegment(segment_id, 1, definition)


def _engine(*segments: AppliedSegment, max_events: int = 100) -> PartitionEngine:
    config = EngineConfig("membership", max_events, 30 * DAY)
    return PartitionEngine(0, config, {s.segment_id: s for s in segments})


def _batch() -> PartitionBatch:
    return PartitionBatch(KeySpace("t").partition(0), PartitionMeta(0, -1, 0, None))


def _event(event_type: str, props: dict[str, Any], ts: int = NOW, n: int = 0) -> Event:
    return Event(f"e{event_type}{n}{ts}{sorted(props.items())}", "c1", event_type, ts, props)


CATALOG = (
    _applied("by-country", {"attr": "country", "op": "eq", "value": "DE"}),
    _applied("by-age", {"attr": "age", "op": "gte", "value": 18}),
    _applied("buyers", {"event": "purchase", "agg": "count", "op": "gte", "value": 1}),
    _applied("de-buyers", {"all": [{"in_segment": "by-country"}, {"in_segment": "buyers"}]}),
    _applied("static-de", {"attr": "country", "op": "eq", "value": "DE"}, type="static"),
)


def _known(engine: PartitionEngine) -> Profile:
    """A customer the engine has seen (its first event evaluated every segment); the
    evaluation counts start from zero after it."""
    profile = Profile("c1")
    engine.apply_event(_batch(), profile, _event("signup", {}), NOW - 1)
    assert profile.evaluated
    engine.evaluations.clear()
    return profile


def test_a_new_customer_is_evaluated_against_every_segment_events_can_change() -> None:
    engine = _engine(
        *CATALOG,
        _applied("no-buys", {"event": "purchase", "agg": "count", "op": "lt", "value": 1}),
        _applied("not-de", {"not": {"attr": "country", "op": "eq", "value": "DE"}}),
    )
    profile = Profile("c1")
    batch = _batch()
    engine.apply_event(batch, profile, _event("page_view", {}), NOW)
    # page_view is in no rule, yet the rules true of an empty profile hold at once
    assert profile.segments == {"no-buys", "not-de"}
    assert batch.membership == {"no-buys": {"c1": True}, "not-de": {"c1": True}}
    assert set(engine.evaluations) == {sid for sid in engine.applied if sid != "static-de"}
    assert profile.evaluated and b"\xa1k\xc3" in profile.encode()
    again = Profile.decode("c1", profile.encode())
    assert again.evaluated and again.segments == profile.segments
    engine.evaluations.clear()
    engine.apply_event(_batch(), again, _event("page_view", {}, n=1), NOW)
    assert dict(engine.evaluations) == {}  # known now: nothing it can change


def test_a_profile_stored_without_the_evaluated_flag_is_evaluated_in_full_once() -> None:
    """Profiles stored before the flag existed (no ``"k"``) may miss memberships whose rules
    an empty history satisfies: their next event evaluates every segment."""
    engine = _engine(
        *CATALOG, _applied("no-buys", {"event": "purchase", "agg": "count", "op": "lt", "value": 1})
    )
    old = msgpack.packb(
        {"a": {}, "e": {"page_view": [[NOW - 5, {}]]}, "r": b"", "m": [], "w": None},
        use_bin_type=True,
    )
    profile = Profile.decode("c1", old)
    assert not profile.evaluated
    engine.apply_event(_batch(), profile, _event("page_view", {}), NOW)
    assert profile.segments == {"no-buys"} and profile.evaluated
    assert profile.encode().startswith(b"\x86\xa1k\xc3")


def test_an_attribute_change_evaluates_only_segments_reading_it() -> None:
    engine = _engine(*CATALOG)
    profile = _known(engine)
    engine.apply_event(_batch(), profile, _event("profile", {"age": 30}), NOW)
    assert dict(engine.evaluations) == {"by-age": 1}


def test_an_event_evaluates_only_segments_aggregating_its_type() -> None:
    engine = _engine(*CATALOG)
    profile = _known(engine)
    engine.apply_event(_batch(), profile, _event("page_view", {}), NOW)
    assert dict(engine.evaluations) == {}
    batch = _batch()
    engine.apply_event(batch, profile, _event("purchase", {"amount": 3}), NOW)
    # buyers changed, so its dependent de-buyers follows (and stays out: not in DE)
    assert dict(engine.evaluations) == {"buyers": 1, "de-buyers": 1}
    assert profile.segments == {"buyers"}
    assert batch.membership == {"buyers": {"c1": True}}


def test_membership_changes_propagate_in_dependency_order() -> None:
    engine = _engine(*CATALOG)
    profile = Profile("c1")
    batch = _batch()
    engine.apply_event(batch, profile, _event("purchase", {"amount": 3}), NOW)
    engine.apply_event(batch, profile, _event("profile", {"country": "DE"}), NOW)
    assert profile.segments == {"buyers", "by-country", "de-buyers"}  # never the static one
    seqs = [r.value for r in batch.outbox]
    assert len(seqs) == 3 and batch.seq == 3
    engine.apply_event(batch, profile, _event("profile", {"country": None}), NOW)
    assert profile.segments == {"buyers"}


def test_a_duplicate_event_id_is_not_applied_twice() -> None:
    engine = _engine(*CATALOG)
    profile = Profile("c1")
    event = _event("purchase", {"amount": 3})
    assert engine.apply_event(_batch(), profile, event, NOW)
    assert not engine.apply_event(_batch(), profile, event, NOW)
    assert len(profile.events["purchase"]) == 1


def test_timer_is_the_next_window_exit_and_expiry_applies_it() -> None:
    window = _applied(
        "recent", {"event": "visit", "agg": "count", "within": "1h", "op": "gte", "value": 2}
    )
    engine = _engine(window)
    profile = Profile("c1")
    batch = _batch()
    engine.apply_event(batch, profile, _event("visit", {}, ts=NOW - 600_000), NOW)
    engine.apply_event(batch, profile, _event("visit", {}, ts=NOW - 300_000, n=1), NOW)
    assert profile.segments == {"recent"}
    due = NOW - 600_000 + 3_600_000
    assert profile.wake == due and batch.timers == {"c1": due}
    later = _batch()
    engine.expire(later, profile, due - 1)
    assert profile.segments == {"recent"}
    engine.expire(later, profile, due)
    assert profile.segments == set()
    assert later.membership == {"recent": {"c1": False}}


def test_retention_is_a_window_too() -> None:
    engine = _engine(CATALOG[2])
    profile = Profile("c1")
    batch = _batch()
    engine.apply_event(batch, profile, _event("purchase", {}, ts=NOW - 29 * DAY), NOW)
    assert profile.segments == {"buyers"}
    assert profile.wake == NOW + DAY  # when the purchase is forgotten
    engine.expire(_batch(), profile, NOW + DAY)
    assert profile.segments == set() and "purchase" not in profile.events


def test_tasks_evaluate_static_segments_and_removal_exits_dependents() -> None:
    engine = _engine(*CATALOG)
    profile = Profile("c1", {"country": "DE"})
    stats = TaskStats()
    batch = _batch()
    engine.evaluate(batch, profile, ["by-country", "static-de"], NOW, "activate", stats)
    assert profile.segments == {"by-country", "static-de"}
    profile.segments.add("buyers")
    engine.evaluate(batch, profile, ["de-buyers"], NOW, "refresh", stats)
    assert "de-buyers" in profile.segments
    engine.remove_segment("by-country")
    engine.remove_member(batch, profile, "by-country", NOW, "deactivate", stats)
    assert profile.segments == {"static-de", "buyers"}
    assert stats.exited == 2 and stats.entered == 3


def test_an_event_after_a_missed_timer_applies_the_expiry_first() -> None:
    window = _applied(
        "recent", {"event": "visit", "agg": "count", "within": "1h", "op": "gte", "value": 1}
    )
    engine = _engine(window, CATALOG[1])
    profile = Profile("c1")
    engine.apply_event(_batch(), profile, _event("visit", {}, ts=NOW), NOW)
    assert profile.segments == {"recent"}
    later = NOW + 3_600_000 + 50  # the timer has not fired yet
    batch = _batch()
    engine.apply_event(batch, profile, _event("profile", {"age": 40}), later)
    assert profile.segments == {"by-age"}
    causes = [msgpack.unpackb(r.value)["cause"] for r in batch.outbox]
    assert causes == ["expiry", "event"]


TIMED = (
    _applied("w1", {"event": "visit", "agg": "count", "within": "10m", "op": "gte", "value": 2}),
    _applied(
        "w2", {"event": "buy", "agg": "sum", "prop": "n", "within": "1h", "op": "gt", "value": 3}
    ),
    _applied("w3", {"attr": "seen", "op": "within_last", "value": "30m"}),
)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["visit", "buy", "profile"]),
            st.integers(-3_600_000, 0),
            st.integers(0, 600_000),
        ),
        max_size=25,
    )
)
def test_incremental_timer_is_never_later_than_a_full_recompute(
    steps: list[tuple[str, int, int]],
) -> None:
    engine = _engine(*TIMED)
    profile = Profile("c1")
    now = NOW
    for n, (event_type, age, advance) in enumerate(steps):
        now += advance
        props: dict[str, Any] = {"n": 2} if event_type == "buy" else {}
        if event_type == "profile":
            props = {"seen": now + age}
        engine.apply_event(_batch(), profile, _event(event_type, props, ts=now + age, n=n), now)
        full = Profile.decode("c1", profile.encode())
        full.wake = None
        engine.schedule(_batch(), full, now)
        if full.wake is not None:
            assert profile.wake is not None and profile.wake <= full.wake


def test_a_recreated_segment_id_gets_its_new_definition() -> None:
    # regression: compiled definitions were cached by (id, version); a segment deleted and
    # created again under the same id restarts at version 1 and got the old rules.
    first = _engine(_applied("again", {"attr": "tier", "op": "eq", "value": "gold"}))
    second = _engine(_applied("again", {"attr": "tier", "op": "eq", "value": "silver"}))
    gold, silver = Profile("g", {"tier": "gold"}), Profile("s", {"tier": "silver"})
    assert first.segments["again"].evaluate(gold.snapshot(0), NOW)
    assert second.segments["again"].evaluate(silver.snapshot(0), NOW)
    assert not second.segments["again"].evaluate(gold.snapshot(0), NOW)


def test_a_task_leaves_a_due_timer_to_its_expiry() -> None:
    """`schedule` with the task's segments only: a timer already due stays (its expiry
    recomputes every segment); replacing it would lose the other segments' changes."""
    recent = _applied(
        "recent", {"event": "visit", "agg": "count", "op": "gte", "value": 1, "within": "1d"}
    )
    added = _applied(
        "week", {"event": "visit", "agg": "count", "op": "gte", "value": 1, "within": "7d"}
    )
    engine = _engine(recent)
    profile = Profile("c1")
    engine.apply_event(_batch(), profile, _event("visit", {}, ts=NOW - DAY // 2), NOW - DAY // 2)
    assert profile.wake == NOW + DAY // 2  # "recent" changes then
    engine.set_segment(added)
    later = NOW + DAY  # the timer is due, its expiry has not run yet
    batch = _batch()
    engine.schedule(batch, profile, later, changed={"week"})
    assert profile.wake == NOW + DAY // 2 and batch.timers == {}
    engine.expire(batch, profile, later)  # the expiry asks every timed segment
    assert profile.wake == NOW - DAY // 2 + 7 * DAY


def test_a_task_keeps_an_earlier_timer_and_adds_its_own() -> None:
    week = _applied(
        "week", {"event": "visit", "agg": "count", "op": "gte", "value": 1, "within": "7d"}
    )
    engine = _engine(
        _applied(
            "recent", {"event": "visit", "agg": "count", "op": "gte", "value": 1, "within": "1d"}
        )
    )
    profile = Profile("c1")
    engine.apply_event(_batch(), profile, _event("visit", {}, ts=NOW), NOW)
    assert profile.wake == NOW + DAY
    engine.set_segment(week)
    engine.schedule(_batch(), profile, NOW, changed={"week"})
    assert profile.wake == NOW + DAY  # still the earlier one
