"""Schedules: cron and time parsing, and one-shot and recurring schedules end to end (one
worker for the module; the scheduler timer on the leader publishes the due commands)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from state._codec import pack, unpack
from streams.control.schedules import parse_at, parse_cron, parse_timezone
from streams.errors import CommandError

from .fixtures import Harness, read_until, segment

BERLIN = ZoneInfo("Europe/Berlin")


def _ms(*args: int, zone: ZoneInfo = BERLIN) -> int:
    return int(datetime(*args, tzinfo=zone).timestamp() * 1000)  # type: ignore[misc]


def _local(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, BERLIN).strftime("%Y-%m-%d %H:%M %z")


# -- parsing (no I/O) ---------------------------------------------------------------------
def test_cron_runs_on_local_wall_clock_across_dst_changes() -> None:
    spec = parse_cron("0 6,12,18 * * *", BERLIN)
    runs = [spec.next_after(_ms(2026, 3, 28, 20, 0))]
    for _ in range(3):
        runs.append(spec.next_after(runs[-1]))
    assert [_local(r) for r in runs] == [
        "2026-03-29 06:00 +0200",  # the night clocks went forward
        "2026-03-29 12:00 +0200",
        "2026-03-29 18:00 +0200",
        "2026-03-30 06:00 +0200",
    ]
    autumn = spec.next_after(_ms(2026, 10, 24, 20, 0))
    assert _local(autumn) == "2026-10-25 06:00 +0100"
    # 02:30 does not exist on 2026-03-29 in Berlin: it runs at 03:30 local, once
    gap = parse_cron("30 2 * * *", BERLIN)
    assert _local(gap.next_after(_ms(2026, 3, 28, 12, 0))) == "2026-03-29 03:30 +0200"
    # 02:30 happens twice on 2026-10-25: it runs once, at the first
    twice = parse_cron("30 2 * * *", BERLIN)
    first = twice.next_after(_ms(2026, 10, 25, 0, 0))
    assert _local(first) == "2026-10-25 02:30 +0200"
    assert _local(twice.next_after(first)) == "2026-10-26 02:30 +0100"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("61 * * * *", "invalid cron '61 * * * *' at cron"),
        ("0 6 * *", "has 4 fields; expected 5"),
        ("* * * * * *", "has 6 fields; expected 5"),
        ("0 25 * * *", "invalid cron"),
        ("0 0 31 2 *", "never runs"),
        ("every day", "has 2 fields"),
    ],
)
def test_bad_cron_is_refused_naming_the_path(expression: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_cron(expression, BERLIN)
    assert caught.value.code == "bad_cron"
    assert caught.value.path == "cron"
    assert fragment in caught.value.message


def test_bad_timezone_and_times() -> None:
    with pytest.raises(CommandError) as caught:
        parse_timezone("Europe/Berln")
    assert (caught.value.code, caught.value.path) == ("bad_timezone", "timezone")
    assert "'Europe/Berln'" in caught.value.message
    assert parse_timezone("UTC").key == "UTC"
    assert parse_at(1_700_000_000_000) == 1_700_000_000_000
    assert parse_at("1700000000000") == 1_700_000_000_000
    assert parse_at("2030-01-01T06:00:00+01:00") == _ms(2030, 1, 1, 6, 0)
    assert parse_at("2030-01-01T05:00:00") == _ms(2030, 1, 1, 5, 0, zone=ZoneInfo("UTC"))
    for bad in ("tomorrow", None, True, 1.5):
        with pytest.raises(CommandError):
            parse_at(bad)


# -- end to end ---------------------------------------------------------------------------
def _now() -> int:
    return int(time.time() * 1000)


def _stored(h: Harness, segment_id: str) -> dict[str, Any]:
    blob = h.redis.hget(h.keys.registry.segments, segment_id)
    assert blob is not None
    return dict(unpack(blob))


def _setup(h: Harness, segment_id: str, prefix: str, customers: int, **extra: Any) -> set[str]:
    """An inactive '<prefix>_tier == gold' segment and `customers` gold customers applied."""
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(f"{segment_id}-seen", {"attr": f"{prefix}_tier", "op": "exists"}),
        }
    )
    for i in range(customers):
        h.client.send_event(f"{prefix}{i}", "profile", {f"{prefix}_tier": "gold"})
    h.client.flush()
    everyone = {f"{prefix}{i}" for i in range(customers)}
    h.wait_members(f"{segment_id}-seen", everyone)
    where = {"attr": f"{prefix}_tier", "op": "eq", "value": "gold"}
    h.ok({"command": "create", "segment": segment(segment_id, where, **extra)})
    return everyone


def test_scheduled_activation_happens_within_a_second_and_is_removed(harness: Harness) -> None:
    h = harness
    everyone = _setup(h, "sched-on", "son", 12)
    at = _now() + 3000
    result = h.ok({"command": "schedule", "segment_id": "sched-on", "action": "activate", "at": at})
    schedule = result["schedule"]
    assert schedule["segment_id"] == "sched-on" and schedule["at"] == at
    sid = schedule["schedule_id"]
    assert h.redis.zscore(h.keys.registry.schedules_due, sid) == at
    reply = h.client.wait_reply(f"schedule:{sid}:{at}", timeout=30)
    assert reply["ok"], reply
    assert reply["result"]["changed"] is True
    assert reply["result"]["members"] == {"sched-on": 12}
    stored = _stored(h, "sched-on")
    assert stored["active"] is True
    # never early; late only by the scheduler's tick and the control agent's queue (the bound is
    # loose: a loaded 2-core machine delays both)
    assert 0 <= stored["modified_at"] - at < 5000, stored["modified_at"] - at
    assert h.members("sched-on") == everyone
    assert h.redis.hget(h.keys.registry.schedules, sid) is None
    assert h.redis.zscore(h.keys.registry.schedules_due, sid) is None
    # the action went through the control topic (the audit log), as run_schedule
    commands = [
        json.loads(m.value)
        for m in h.client.read_all(h.settings.control_topic, idle=0.5)
        if m.value[:1] == b"{"
    ]
    runs = [c for c in commands if c.get("command") == "run_schedule"]
    assert [c["request_id"] for c in runs if c["schedule_id"] == sid][:1] == [
        f"schedule:{sid}:{at}"
    ]


def test_scheduled_deactivation_and_cancel(harness: Harness) -> None:
    h = harness
    _setup(h, "sched-off", "sof", 5)
    h.ok({"command": "activate", "segment_id": "sched-off"})
    keep = h.ok(
        {"command": "schedule", "segment_id": "sched-off", "action": "activate", "at": "2099-01-01"}
    )["schedule"]
    at = _now() + 2000
    off = h.ok({"command": "schedule", "segment_id": "sched-off", "action": "deactivate", "at": at})
    canceled = h.ok(
        {"command": "schedule", "segment_id": "sched-off", "action": "deactivate", "at": at + 500}
    )["schedule"]
    removed = h.ok({"command": "unschedule", "schedule_id": canceled["schedule_id"]})
    assert removed["removed"] is True
    again = h.command({"command": "unschedule", "schedule_id": canceled["schedule_id"]})
    assert again["error"]["code"] == "not_found"
    # a probe due after the canceled one: once it ran, the canceled one would have run before it
    h.ok({"command": "create", "segment": segment("sched-probe", {"attr": "x", "op": "exists"})})
    probe = h.ok(
        {"command": "schedule", "segment_id": "sched-probe", "action": "activate", "at": at + 1000}
    )["schedule"]
    sid = off["schedule"]["schedule_id"]
    reply = h.client.wait_reply(f"schedule:{sid}:{at}", timeout=30)
    assert reply["ok"] and reply["result"]["job"]["exited"] == 5, reply
    assert h.members("sched-off") == set()
    probe_run = f"schedule:{probe['schedule_id']}:{at + 1000}"
    assert h.client.wait_reply(probe_run, timeout=30)["ok"]
    # the canceled one never ran: no command for it on the control topic (the audit log) and
    # no reply to one, up to the probe's run; the far one stays pending
    canceled_run = f"schedule:{canceled['schedule_id']}:"
    commands = read_until(
        h.settings.kafka_bootstrap,
        h.settings.control_topic,
        lambda got: any(c.get("request_id") == probe_run for c in got),
        decode=lambda value: json.loads(value) if value[:1] == b"{" else {},
    )
    assert [c for c in commands if str(c.get("request_id")).startswith(canceled_run)] == []
    replies = h.replies_through(probe_run)
    assert [r for r in replies if str(r["request_id"]).startswith(canceled_run)] == []
    pending = set(h.redis.hkeys(h.keys.registry.schedules))
    assert keep["schedule_id"].encode() in pending
    assert canceled["schedule_id"].encode() not in pending
    assert _stored(h, "sched-off")["active"] is False


def test_schedule_errors(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "segment": segment("sched-err", {"attr": "x", "op": "exists"})})

    def error(command: dict[str, Any]) -> dict[str, Any]:
        reply = h.command(command)
        assert reply["ok"] is False, reply
        return dict(reply["error"])

    unknown = error({"command": "schedule", "segment_id": "sched-er", "action": "activate",
                     "at": _now() + 60_000})  # fmt: skip
    assert (unknown["code"], unknown["path"]) == ("not_found", "segment_id")
    assert "did you mean 'sched-err'" in unknown["message"]
    past = error(
        {"command": "schedule", "segment_id": "sched-err", "action": "activate", "at": 1000}
    )
    assert (past["code"], past["path"]) == ("in_past", "at")
    iso_past = error({"command": "schedule", "segment_id": "sched-err", "action": "deactivate",
                      "at": "2001-01-01T00:00:00Z"})  # fmt: skip
    assert iso_past["code"] == "in_past"
    action = error({"command": "schedule", "segment_id": "sched-err", "action": "activat",
                    "at": _now() + 60_000})  # fmt: skip
    assert (action["code"], action["path"]) == ("invalid_value", "action")
    assert "did you mean 'activate'" in action["message"]
    cron = error({"command": "schedule_refresh", "segment_ids": ["sched-err"],
                  "cron": "0 6 * *", "timezone": "UTC"})  # fmt: skip
    assert (cron["code"], cron["path"]) == ("bad_cron", "cron")
    zone = error({"command": "schedule_refresh", "all": True, "cron": "0 6 * * *",
                  "timezone": "Mars/Olympus"})  # fmt: skip
    assert (zone["code"], zone["path"]) == ("bad_timezone", "timezone")
    missing = error({"command": "schedule_refresh", "segment_ids": ["sched-err", "nope"],
                     "cron": "0 6 * * *", "timezone": "UTC"})  # fmt: skip
    assert (missing["code"], missing["path"]) == ("not_found", "segment_ids[1]")
    gone = error({"command": "unschedule_refresh", "schedule_id": "nope"})
    assert gone["code"] == "not_found"
    assert h.redis.hlen(h.keys.registry.schedules) == h.redis.zcard(h.keys.registry.schedules_due)


def _make_due(h: Harness, schedule_id: str, due: int) -> None:
    """Move a refresh schedule's next run to `due` (as if its time had come)."""
    keys = h.keys.registry
    raw = dict(unpack(h.redis.hget(keys.refresh_schedules, schedule_id)))
    raw["next_at"] = due
    h.redis.hset(keys.refresh_schedules, schedule_id, pack(raw))
    h.redis.zadd(keys.refresh_due, {schedule_id: due})


def test_refresh_schedule_runs_on_the_leader_and_skips_inactive_segments(
    harness: Harness,
) -> None:
    h = harness
    _setup(h, "cron-on", "cro", 4, type="static")
    h.ok({"command": "activate", "segment_id": "cron-on"})
    h.ok(
        {"command": "create", "segment": segment("cron-off", {"attr": "cro_tier", "op": "exists"})}
    )
    # a static segment does not follow events; the scheduled refresh brings it up to date
    h.client.send_event("cro9", "profile", {"cro_tier": "gold"})
    h.client.flush()
    h.wait_members("cron-on-seen", {f"cro{i}" for i in range(4)} | {"cro9"})
    assert "cro9" not in h.members("cron-on")
    created = h.ok(
        {
            "command": "schedule_refresh",
            "segment_ids": ["cron-on", "cron-off"],
            "cron": "0 6,12,18 * * *",
            "timezone": "Europe/Berlin",
        }
    )["refresh_schedule"]
    rid = created["schedule_id"]
    assert created["cron"] == "0 6,12,18 * * *" and created["timezone"] == "Europe/Berlin"
    assert _local(created["next_at"])[11:16] in ("06:00", "12:00", "18:00")
    due = _now() + 500
    _make_due(h, rid, due)
    reply = h.client.wait_reply(f"refresh-schedule:{rid}:{due}", timeout=30)
    assert reply["ok"], reply
    assert reply["result"]["segment_ids"] == ["cron-on"]
    assert reply["result"]["skipped_inactive"] == ["cron-off"]
    assert "cro9" in h.members("cron-on")
    assert h.members("cron-off") == set()  # not evaluated
    stored = dict(unpack(h.redis.hget(h.keys.registry.refresh_schedules, rid)))
    assert stored["last_run"]["due"] == due
    assert stored["last_run"]["skipped"] == ["cron-off"]
    assert stored["last_run"]["refreshed"] == ["cron-on"]
    assert stored["next_at"] > _now()
    assert _local(stored["next_at"])[11:16] in ("06:00", "12:00", "18:00")
    assert h.redis.zscore(h.keys.registry.refresh_due, rid) == stored["next_at"]
    removed = h.ok({"command": "unschedule_refresh", "schedule_id": rid})
    assert removed["removed"] is True
    assert h.redis.zscore(h.keys.registry.refresh_due, rid) is None


def test_delete_drops_the_segments_schedules(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "segment": segment("sched-del", {"attr": "d", "op": "exists"})})
    h.ok({"command": "create", "segment": segment("sched-keep", {"attr": "d", "op": "exists"})})
    once = h.ok({"command": "schedule", "segment_id": "sched-del", "action": "activate",
                 "at": _now() + 3_600_000})["schedule"]  # fmt: skip
    both = h.ok({"command": "schedule_refresh", "segment_ids": ["sched-del", "sched-keep"],
                 "cron": "0 6 * * *", "timezone": "UTC"})["refresh_schedule"]  # fmt: skip
    only = h.ok({"command": "schedule_refresh", "segment_ids": ["sched-del"],
                 "cron": "0 6 * * *", "timezone": "UTC"})["refresh_schedule"]  # fmt: skip
    h.ok({"command": "delete", "segment_id": "sched-del"})
    keys = h.keys.registry
    assert h.redis.hget(keys.schedules, once["schedule_id"]) is None
    assert h.redis.hget(keys.refresh_schedules, only["schedule_id"]) is None
    kept = dict(unpack(h.redis.hget(keys.refresh_schedules, both["schedule_id"])))
    assert kept["segment_ids"] == ["sched-keep"]


def test_a_schedule_missed_while_the_worker_was_down_runs_once_on_restart(
    harness: Harness,
) -> None:
    h = harness
    _setup(h, "sched-late", "sla", 3)
    at = _now() + 1500
    sid = h.ok({"command": "schedule", "segment_id": "sched-late", "action": "activate", "at": at})[
        "schedule"
    ]["schedule_id"]
    h.worker.stop()
    while _now() < at + 1000:
        time.sleep(0.2)
    assert _stored(h, "sched-late")["active"] is False
    h.start()
    reply = h.client.wait_reply(f"schedule:{sid}:{at}", timeout=60)
    assert reply["ok"], reply
    assert _stored(h, "sched-late")["active"] is True
    h.wait_members("sched-late", {"sla0", "sla1", "sla2"})
    replies = h.replies_through(h.barrier())  # every reply to a command sent before the barrier
    assert [r["request_id"] for r in replies].count(f"schedule:{sid}:{at}") == 1
