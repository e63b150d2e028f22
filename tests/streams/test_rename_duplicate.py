"""Rename, duplicate and static<->dynamic end to end on the real broker and Redis."""

from __future__ import annotations

from typing import Any

from state._codec import unpack

from .fixtures import Harness, segment


def _stored(h: Harness, segment_id: str) -> dict[str, Any] | None:
    blob = h.redis.hget(h.keys.registry.segments, segment_id)
    return dict(unpack(blob)) if blob is not None else None


def _error(h: Harness, command: dict[str, Any]) -> dict[str, Any]:
    reply = h.command(command)
    assert reply["ok"] is False, reply
    return dict(reply["error"])


def test_rename_keeps_the_id_and_refuses_a_name_clash(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "activate": True,
          "segment": segment("rn-a", {"attr": "rn", "op": "exists"})})  # fmt: skip
    h.ok({"command": "create", "segment": segment("rn-b", {"attr": "rn", "op": "exists"})})
    h.client.send_event("rn1", "profile", {"rn": 1})
    h.client.flush()
    h.wait_members("rn-a", {"rn1"})
    result = h.ok({"command": "rename", "segment_id": "rn-a", "name": "Renamed A"})
    assert result["changed"] is True
    assert result["segment"]["id"] == "rn-a"
    assert result["segment"]["definition"]["name"] == "Renamed A"
    assert result["segment"]["version"] == 2
    stored = _stored(h, "rn-a")
    assert stored is not None and stored["definition"]["name"] == "Renamed A"
    assert stored["active"] is True
    assert h.members("rn-a") == {"rn1"}  # memberships stay under the same id
    again = h.ok({"command": "rename", "segment_id": "rn-a", "name": "Renamed A"})
    assert again["changed"] is False
    clash = _error(h, {"command": "rename", "segment_id": "rn-b", "name": "renamed a"})
    assert (clash["code"], clash["path"]) == ("name_clash", "name")
    assert "'rn-a'" in clash["message"]
    unknown = _error(h, {"command": "rename", "segment_id": "rn-c", "name": "X"})
    assert (unknown["code"], unknown["path"]) == ("not_found", "segment_id")
    empty = _error(h, {"command": "rename", "segment_id": "rn-b", "name": " "})
    assert (empty["code"], empty["path"]) == ("wrong_type", "name")
    # the segment still follows events after the rename
    h.client.send_event("rn2", "profile", {"rn": 2})
    h.client.flush()
    h.wait_members("rn-a", {"rn1", "rn2"})


def test_duplicate_makes_an_inactive_copy_optionally_edited(harness: Harness) -> None:
    h = harness
    where = {"attr": "dup", "op": "gte", "value": 5}
    h.ok({"command": "create", "activate": True,
          "segment": segment("dup-src", where, tags=["t"])})  # fmt: skip
    plain = h.ok({"command": "duplicate", "segment_id": "dup-src", "new_id": "dup-copy"})
    copy = plain["segment"]
    assert copy["id"] == "dup-copy" and copy["active"] is False and copy["version"] == 1
    assert copy["definition"]["name"] == "Dup Src (copy)"
    assert copy["definition"]["rules"] == [{"where": where}]
    assert copy["definition"]["tags"] == ["t"]
    second = h.ok({"command": "duplicate", "segment_id": "dup-src", "new_id": "dup-copy2"})
    assert second["segment"]["definition"]["name"] == "Dup Src (copy 2)"
    edited = h.ok(
        {
            "command": "duplicate",
            "segment_id": "dup-src",
            "new_id": "dup-edit",
            "name": "Edited copy",
            "segment": {"rules": [{"where": {"attr": "dup", "op": "lt", "value": 5}}]},
        }
    )["segment"]
    assert edited["definition"]["name"] == "Edited copy"
    assert edited["definition"]["rules"][0]["where"]["op"] == "lt"
    for i in range(8):
        h.client.send_event(f"dup{i}", "profile", {"dup": i})
    h.client.flush()
    h.wait_members("dup-src", {"dup5", "dup6", "dup7"})
    assert h.members("dup-edit") == set()  # inactive
    activated = h.ok({"command": "activate", "segment_id": "dup-edit"})
    assert activated["members"] == {"dup-edit": 5}
    exists = _error(h, {"command": "duplicate", "segment_id": "dup-src", "new_id": "dup-copy"})
    assert (exists["code"], exists["path"]) == ("already_exists", "new_id")
    clash = _error(h, {"command": "duplicate", "segment_id": "dup-src", "new_id": "dup-x",
                       "name": "EDITED COPY"})  # fmt: skip
    assert (clash["code"], clash["path"]) == ("name_clash", "name")
    rules = [{"where": {"attr": "dup", "op": "equals"}}]
    bad = _error(h, {"command": "duplicate", "segment_id": "dup-src", "new_id": "dup-y",
                     "segment": {"rules": rules}})  # fmt: skip
    assert (bad["code"], bad["path"]) == ("unknown_op", "segment.rules[0].where.op")
    unknown = _error(h, {"command": "duplicate", "segment_id": "dup-nope", "new_id": "dup-z"})
    assert unknown["code"] == "not_found"
    assert _stored(h, "dup-y") is None and _stored(h, "dup-z") is None


def test_static_to_dynamic_starts_incremental_evaluation_and_back(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "activate": True,
          "segment": segment("st-seen", {"attr": "st", "op": "exists"})})  # fmt: skip
    for i in range(3):
        h.client.send_event(f"st{i}", "profile", {"st": "vip"})
    h.client.flush()
    h.wait_members("st-seen", {"st0", "st1", "st2"})
    vip = {"attr": "st", "op": "eq", "value": "vip"}
    h.ok({"command": "create", "activate": True,
          "segment": segment("st-vip", vip, type="static")})  # fmt: skip
    assert h.members("st-vip") == {"st0", "st1", "st2"}
    # static: an event changes nothing
    h.client.send_event("st3", "profile", {"st": "vip"})
    h.client.send_event("st0", "profile", {"st": "basic"})
    h.client.flush()
    h.wait_members("st-seen", {"st0", "st1", "st2", "st3"})
    assert h.members("st-vip") == {"st0", "st1", "st2"}
    result = h.ok({"command": "set_type", "segment_id": "st-vip", "type": "dynamic"})
    assert result["segment"]["definition"]["type"] == "dynamic"
    assert result["segment"]["version"] == 2
    assert result["job"]["entered"] == 1 and result["job"]["exited"] == 1  # re-evaluated
    assert h.members("st-vip") == {"st1", "st2", "st3"}
    # dynamic now: events move customers at once
    h.client.send_event("st4", "profile", {"st": "vip"})
    h.client.send_event("st1", "profile", {"st": "basic"})
    h.client.flush()
    h.wait_members("st-vip", {"st2", "st3", "st4"})
    same = h.ok({"command": "set_type", "segment_id": "st-vip", "type": "dynamic"})
    assert same["changed"] is False
    back = h.ok({"command": "set_type", "segment_id": "st-vip", "type": "static"})
    assert back["segment"]["definition"]["type"] == "static"
    h.client.send_event("st2", "profile", {"st": "basic"})
    h.client.send_event("st5", "profile", {"st": "vip"})
    h.client.flush()
    h.wait_members("st-seen", {f"st{i}" for i in range(6)})
    assert h.members("st-vip") == {"st2", "st3", "st4"}
    bad = _error(h, {"command": "set_type", "segment_id": "st-vip", "type": "frozen"})
    assert (bad["code"], bad["path"]) == ("invalid_value", "type")
