"""DictProfile, the in-memory ProfileView."""

from __future__ import annotations

from segment_rules import DictProfile, EventRecord, ProfileView


def test_dict_profile_reads_and_sorts() -> None:
    profile: ProfileView = DictProfile.build(
        {"country": "DE", "gone": None},
        [("buy", 30, {"n": 3}), ("buy", 10, {"n": 1}), ("view", 20, {})],
        ["vip"],
    )
    assert profile.attribute("country") == "DE"
    assert profile.attribute("gone") is None
    assert profile.attribute("missing") is None
    assert [e.ts for e in profile.events("buy")] == [10, 30]
    assert profile.events("nothing") == ()
    assert profile.in_segment("vip") and not profile.in_segment("other")


def test_event_record_is_a_named_tuple() -> None:
    record = EventRecord(5, {"a": 1})
    assert record.ts == 5 and record.props == {"a": 1}
    assert tuple(record) == (5, {"a": 1})


def test_dict_profile_keeps_its_own_memberships_and_sorted_events() -> None:
    """A value: later changes to the caller's containers do not reach it."""
    memberships = ["vip"]
    records = [EventRecord(2, {}), EventRecord(1, {})]
    profile = DictProfile({}, {"buy": records}, memberships)  # type: ignore[arg-type]
    memberships.append("late")
    records.append(EventRecord(0, {}))
    assert profile.memberships == frozenset({"vip"}) and not profile.in_segment("late")
    assert [e.ts for e in profile.events("buy")] == [1, 2]
