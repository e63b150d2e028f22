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
