"""`forget` on the control topic: one customer's profile, history, timer and memberships leave
every partition, in the partitions' ordered processing; later events start a new profile."""

from __future__ import annotations

import time

import msgpack
import pytest

from tests import layout

from .fixtures import Harness, segment

pytestmark = pytest.mark.integration


def _held_by(h: Harness, customer_id: str) -> list[int]:
    """The partitions that hold anything of the customer: profile, index entry or timer."""
    held = []
    for p in range(h.settings.events_partitions):
        keys = h.keys.partition(p)
        if (
            h.redis.exists(keys.profile(customer_id))
            or customer_id in layout.customers(h.redis, keys)
            or h.redis.zscore(keys.timers, customer_id) is not None
        ):
            held.append(p)
    return held


def _profile(h: Harness, customer_id: str) -> dict[str, object]:
    for p in range(h.settings.events_partitions):
        blob = h.redis.get(h.keys.partition(p).profile(customer_id))
        if blob is not None:
            return layout.profile_map(blob)
    raise AssertionError(f"no profile for {customer_id!r}")


def test_forget_erases_one_customer_and_publishes_exited_erased(harness: Harness) -> None:
    h = harness
    buyer = {"event": "purchase", "agg": "count", "within": "1d", "op": "gte", "value": 1}
    for definition in (
        segment("fg-gold", {"attr": "tier", "op": "eq", "value": "gold"}),
        segment("fg-buyer", buyer),
        segment("fg-any", {"attr": "tier", "op": "exists"}),
    ):
        h.ok({"command": "create", "activate": True, "segment": definition})
    for customer_id in ("fg-1", "fg-2"):
        h.client.send_event(customer_id, "profile", {"tier": "gold", "email": f"{customer_id}@x"})
        h.client.send_event(customer_id, "purchase", {"amount": 10})
    h.client.flush()
    for segment_id in ("fg-gold", "fg-buyer", "fg-any"):
        h.wait_members(segment_id, {"fg-1", "fg-2"})
    assert len(_held_by(h, "fg-1")) == 1  # the owning partition, with a timer for the window
    assert any(
        h.redis.zscore(h.keys.partition(p).timers, "fg-1") is not None
        for p in range(h.settings.events_partitions)
    )

    result = h.ok({"command": "forget", "customer_id": "fg-1"})
    assert result["customer_id"] == "fg-1" and result["erased"] is True
    assert result["exited_segments"] == ["fg-any", "fg-buyer", "fg-gold"]
    assert result["job"]["exited"] == 3 and result["job"]["status"] == "Successful"
    assert _held_by(h, "fg-1") == []
    for segment_id in ("fg-gold", "fg-buyer", "fg-any"):
        assert h.members(segment_id) == {"fg-2"}
    segments = ("fg-gold", "fg-buyer", "fg-any")
    h.client.wait_for(
        lambda f: all(f.members.get(s) == {"fg-2"} for s in segments),
        what="the membership topic folds to fg-2 alone",
    )
    changes = [
        msgpack.unpackb(m.value, raw=False)
        for m in h.client.read_all(h.settings.membership_topic, idle=0.5)
        if m.key == b"fg-1"
    ]
    erased = sorted(c["segment_id"] for c in changes if c["cause"] == "erased")
    assert erased == ["fg-any", "fg-buyer", "fg-gold"]
    assert all(c["change"] == "exited" for c in changes if c["cause"] == "erased")

    # a later event starts a new profile: nothing of the old one comes back
    h.client.send_event("fg-1", "profile", {"tier": "silver"})
    h.client.flush()
    h.wait_members("fg-any", {"fg-1", "fg-2"})
    profile = _profile(h, "fg-1")
    assert profile["a"] == {"tier": "silver"} and profile["e"] == {}
    assert "fg-1" not in h.members("fg-gold") and "fg-1" not in h.members("fg-buyer")


def test_forget_of_an_unknown_customer_is_not_an_error(harness: Harness) -> None:
    result = harness.ok({"command": "forget", "customer_id": "fg-nobody"})
    assert result["erased"] is False and result["exited_segments"] == []
    assert result["job"]["partitions"] == harness.settings.events_partitions


@pytest.mark.parametrize(
    ("customer_id", "code"),
    [(None, "missing_field"), (7, "wrong_type"), ("x" * 2000, "invalid_value")],
)
def test_forget_needs_a_customer_id(harness: Harness, customer_id: object, code: str) -> None:
    command = {"command": "forget"}
    if customer_id is not None:
        command["customer_id"] = customer_id  # type: ignore[assignment]
    reply = harness.command(command, timeout=30)
    assert reply["ok"] is False
    assert reply["error"]["code"] == code and reply["error"]["path"] == "customer_id"


def test_forget_is_ordered_with_the_events_around_it(harness: Harness) -> None:
    """Events sent before the forget are erased with the profile; events after it stay."""
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("fg-vip", {"attr": "vip", "op": "eq", "value": True}),
        }
    )
    h.client.send_event("fg-3", "profile", {"vip": True, "old": 1})
    h.client.flush()
    request_id = "fg-order-" + str(time.time_ns())
    h.client.send_command({"command": "forget", "customer_id": "fg-3", "request_id": request_id})
    reply = h.client.wait_reply(request_id, timeout=60)
    assert reply["ok"], reply
    h.client.send_event("fg-3", "profile", {"vip": True, "new": 2})
    h.client.flush()
    h.wait_members("fg-vip", {"fg-3"})
    assert _profile(h, "fg-3")["a"] == {"vip": True, "new": 2}
