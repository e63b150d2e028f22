"""Time passes: window-based memberships change with no new event, within a second."""

from __future__ import annotations

import time

from .fixtures import Harness, segment


def _now() -> int:
    return int(time.time() * 1000)


def test_aggregate_window_exit_is_published_on_time(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "recent-buyer",
                {"event": "purchase", "agg": "count", "within": "2s", "op": "gte", "value": 1},
            ),
        }
    )
    ts = _now()
    h.client.send_event("t1", "purchase", {"amount": 5}, ts=ts)
    h.client.flush()
    h.client.wait_for(lambda f: "t1" in f.members.get("recent-buyer", ()), what="t1 entered")
    fold = h.client.wait_for(
        lambda f: "t1" not in f.members.get("recent-buyer", ()),
        timeout=10,
        what="t1 exited by expiry",
    )
    exit_change = [
        c for c in fold.changes if c["segment_id"] == "recent-buyer" and c["change"] == "exited"
    ][-1]
    assert exit_change["cause"] == "expiry"
    due = ts + 2000  # the instant the purchase leaves the window
    assert due <= exit_change["at"] < due + 1000, exit_change["at"] - due
    assert h.members("recent-buyer") == set()


def test_window_keeps_member_while_newer_events_are_inside(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "two-visits",
                {"event": "visit", "agg": "count", "within": "3s", "op": "gte", "value": 2},
            ),
        }
    )
    ts = _now()
    h.client.send_event("t2", "visit", {}, ts=ts - 1000)
    h.client.send_event("t2", "visit", {}, ts=ts)
    h.client.send_event("t2", "visit", {}, ts=ts + 1000)
    h.client.flush()
    h.client.wait_for(lambda f: "t2" in f.members.get("two-visits", ()), what="t2 entered")
    # the first visit leaves at ts+2000, two remain until ts+3000
    fold = h.client.wait_for(
        lambda f: "t2" not in f.members.get("two-visits", ()), timeout=10, what="t2 exited"
    )
    exit_change = [c for c in fold.changes if c["segment_id"] == "two-visits"][-1]
    assert exit_change["cause"] == "expiry"
    assert ts + 3000 <= exit_change["at"] < ts + 4000


def test_within_last_on_a_date_attribute_expires(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "just-signed-up", {"attr": "signed_up", "op": "within_last", "value": "2s"}
            ),
        }
    )
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "older-account", {"attr": "signed_up", "op": "not_within_last", "value": "2s"}
            ),
        }
    )
    signed = _now()
    h.client.send_event("t3", "profile", {"signed_up": signed})
    h.client.flush()
    h.client.wait_for(lambda f: "t3" in f.members.get("just-signed-up", ()), what="t3 new")
    fold = h.client.wait_for(
        lambda f: "t3" in f.members.get("older-account", ()), timeout=10, what="t3 old"
    )
    assert "t3" not in fold.members.get("just-signed-up", set())
    entered = [
        c for c in fold.changes if c["segment_id"] == "older-account" and c["change"] == "entered"
    ][-1]
    assert entered["cause"] == "expiry"
    assert signed + 2000 <= entered["at"] < signed + 3000
