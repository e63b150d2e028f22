"""Exports end to end: managed in the registry, run as jobs by the exporter agent (on demand,
after a scheduled refresh), skipped for their limit or a failed refresh, and kept in step
with segment deletes (one worker for the module)."""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack

from state import Job
from state._codec import pack, unpack
from state.export_registry import StoredExport
from streams.control.exports import export_view

from .fixtures import Harness, segment


def _job(h: Harness, job_id: str, timeout: float = 30) -> Job:
    """The job once finished."""
    deadline = time.monotonic() + timeout
    while True:
        blob = h.redis.hget(h.keys.registry.jobs, job_id)
        if blob is not None:
            job = Job.from_dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))
            if job.finished_at is not None or time.monotonic() > deadline:
                return job
        assert time.monotonic() < deadline, f"no job {job_id}"
        time.sleep(0.05)


def _files(directory: Path, pattern: str) -> list[Path]:
    return sorted(directory.rglob(pattern))


def _gold(h: Harness, segment_id: str, prefix: str, count: int) -> set[str]:
    where = {"attr": f"{prefix}_tier", "op": "eq", "value": "gold"}
    h.ok({"command": "create", "activate": True, "segment": segment(segment_id, where)})
    for i in range(count):
        h.client.send_event(f"{prefix}{i}", "profile", {f"{prefix}_tier": "gold", "n": i})
    h.client.send_event(f"{prefix}-silver", "profile", {f"{prefix}_tier": "silver"})
    h.client.flush()
    members = {f"{prefix}{i}" for i in range(count)}
    h.wait_members(segment_id, members)
    return members


def _files_export(export_id: str, segments: list[str], directory: Path, **extra: Any) -> dict:  # type: ignore[type-arg]
    destination = {"type": "files", "directory": str(directory), "format": "csv"}
    destination.update(extra.pop("destination", {}))
    return {"id": export_id, "name": export_id.title(), "segments": segments,
            "destination": destination, **extra}  # fmt: skip


def test_an_export_runs_on_demand_as_a_job_and_writes_exactly_the_members(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    members = _gold(h, "ex-gold", "exg", 6)
    export = _files_export("ex-files", ["ex-gold"], tmp_path, attributes=["n"])
    created = h.ok({"command": "create_export", "export": export})["export"]
    assert created["id"] == "ex-files" and created["segments"] == ["ex-gold"]
    assert _files(tmp_path, "*.csv") == []  # saving does not run it
    again = h.command({"command": "create_export", "export": export})
    assert again["error"]["code"] == "already_exists"
    unknown = _files_export("ex-x", ["ex-gol"], tmp_path)
    missing = h.command({"command": "create_export", "export": unknown})
    assert (missing["error"]["code"], missing["error"]["path"]) == (
        "not_found",
        "export.segments[0]",
    )
    started = h.ok({"command": "export", "export_id": "ex-files"})
    job = _job(h, started["job"]["job_id"])
    assert job.command == "export" and job.status == "Successful"
    task = job.tasks["ex-gold"]
    assert task.status == "Successful" and task.processing_ms is not None
    assert task.partitions[0]["count"] == 6
    (data,) = _files(tmp_path, "*.csv")
    with open(data, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["customer_id", "n"]
    assert {r[0] for r in rows[1:]} == members and len(rows) == 7
    # wait: the reply is the job's outcome
    waited = h.ok({"command": "export", "export_id": "ex-files", "wait": True})
    assert waited["job"]["status"] == "Successful"
    assert waited["tasks"]["ex-gold"]["status"] == "Successful"
    assert waited["tasks"]["ex-gold"]["count"] == 6


def test_a_kafka_export_and_one_skipped_for_its_limit(harness: Harness, tmp_path: Path) -> None:
    h = harness
    members = _gold(h, "ex-k", "exk", 4)
    topic = f"{h.settings.app_id}.export-{uuid.uuid4().hex[:6]}"
    export = {"id": "ex-kafka", "name": "Kafka", "segments": ["ex-k"],
              "destination": {"type": "kafka", "topic": topic}}  # fmt: skip
    h.ok({"command": "create_export", "export": export})
    result = h.ok({"command": "export", "export_id": "ex-kafka", "wait": True})
    assert result["tasks"]["ex-k"]["status"] == "Successful", result
    messages = [msgpack.unpackb(m.value, raw=False) for m in h.client.read_all(topic, idle=1)]
    assert [m["type"] for m in messages][:1] == ["begin"] and messages[-1]["type"] == "end"
    assert {m["customer_id"] for m in messages if m["type"] == "member"} == members
    limited = _files_export("ex-limit", ["ex-k"], tmp_path, destination={"max_profiles": 2})
    h.ok({"command": "create_export", "export": limited})
    result = h.ok({"command": "export", "export_id": "ex-limit", "wait": True})
    assert result["job"]["status"] == "Skipped"
    assert "over the destination's limit" in result["tasks"]["ex-k"]["warnings"][-1]
    assert _files(tmp_path, "*.csv") == []


def _make_due(h: Harness, schedule_id: str, due: int) -> None:
    keys = h.keys.registry
    raw = dict(unpack(h.redis.hget(keys.refresh_schedules, schedule_id)))
    raw["next_at"] = due
    h.redis.hset(keys.refresh_schedules, schedule_id, pack(raw))
    h.redis.zadd(keys.refresh_due, {schedule_id: due})


def test_a_scheduled_refresh_runs_the_exports_of_its_segments(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    members = _gold(h, "ex-sched", "exs", 3)
    h.ok({"command": "create_export", "export": _files_export("ex-after", ["ex-sched"], tmp_path)})
    rid = h.ok({"command": "schedule_refresh", "segment_ids": ["ex-sched"], "cron": "0 6 * * *",
                "timezone": "UTC"})["refresh_schedule"]["schedule_id"]  # fmt: skip
    due = int(time.time() * 1000) + 300
    _make_due(h, rid, due)
    reply = h.client.wait_reply(f"refresh-schedule:{rid}:{due}", timeout=30)
    assert reply["ok"], reply
    (run,) = reply["result"]["exports"]
    assert run["export_id"] == "ex-after"
    job = _job(h, run["job_id"])
    assert job.status == "Successful" and job.request_id.startswith("export-after:")
    (data,) = _files(tmp_path, "*.csv")
    assert {r[0] for r in list(csv.reader(open(data)))[1:]} == members  # noqa: SIM115
    h.ok({"command": "unschedule_refresh", "schedule_id": rid})


def _write_segment(h: Harness, definition: dict[str, Any]) -> None:
    now = int(time.time() * 1000)
    stored = {"id": definition["id"], "definition": definition, "version": 1, "active": True,
              "created_at": now, "modified_at": now}  # fmt: skip
    h.redis.hset(h.keys.registry.segments, definition["id"], msgpack.packb(stored))
    h.redis.hincrby(h.keys.registry.meta, "ver", 1)


def test_an_export_task_is_skipped_when_its_segments_refresh_failed(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    _gold(h, "ex-fine", "exf", 2)
    # a definition this version cannot compile: its refresh fails on every partition
    _write_segment(h, segment("ex-broken", {"attr": "k", "op": "roughly", "value": 3}))
    export = _files_export("ex-dep", ["ex-broken", "ex-fine"], tmp_path)
    h.ok({"command": "create_export", "export": export})
    schedule = {"command": "schedule_refresh", "segment_ids": ["ex-broken", "ex-fine"],
                "cron": "0 6 * * *", "timezone": "UTC"}  # fmt: skip
    rid = h.ok(schedule)["refresh_schedule"]["schedule_id"]
    due = int(time.time() * 1000) + 300
    _make_due(h, rid, due)
    reply = h.client.wait_reply(f"refresh-schedule:{rid}:{due}", timeout=30)
    assert reply["result"]["tasks"]["ex-broken"]["status"] == "Failure", reply
    (run,) = reply["result"]["exports"]
    job = _job(h, run["job_id"])
    assert job.tasks["ex-broken"].status == "Skipped"
    assert "refresh of segment 'ex-broken' ended Failure" in job.tasks["ex-broken"].warnings[0]
    assert job.tasks["ex-fine"].status == "Successful"
    assert [p.parent.parent.parent.parent.parent.name for p in _files(tmp_path, "*.csv")] == [
        "ex-fine"
    ]
    h.ok({"command": "unschedule_refresh", "schedule_id": rid})
    h.ok({"command": "delete_export", "export_id": "ex-dep"})
    h.redis.hdel(h.keys.registry.segments, "ex-broken")
    h.redis.hincrby(h.keys.registry.meta, "ver", 1)


def test_deleting_a_segment_removes_it_from_its_exports(harness: Harness, tmp_path: Path) -> None:
    h = harness
    for sid in ("ex-del", "ex-stay"):
        h.ok({"command": "create", "segment": segment(sid, {"attr": "d", "op": "exists"})})
    two = _files_export("ex-two", ["ex-del", "ex-stay"], tmp_path)
    h.ok({"command": "create_export", "export": two})
    h.ok({"command": "create_export", "export": _files_export("ex-one", ["ex-stay"], tmp_path)})
    result = h.ok({"command": "delete", "segment_id": "ex-del"})
    assert result["removed_from_exports"] == ["ex-two"]
    stored = unpack(h.redis.hget(h.keys.registry.exports, "ex-two"))
    assert stored["definition"]["segments"] == ["ex-stay"]
    # an active segment: the delete job's reply says it too
    h.ok({"command": "activate", "segment_id": "ex-stay"})
    result = h.ok({"command": "delete", "segment_id": "ex-stay"})
    assert result["removed_from_exports"] == ["ex-one", "ex-two"]


def test_an_export_runs_on_its_own_schedule(harness: Harness, tmp_path: Path) -> None:
    h = harness
    members = _gold(h, "ex-own", "exo", 2)
    schedule = {"cron": "0 6 * * *", "timezone": "Europe/Berlin"}
    export = _files_export("ex-cron", ["ex-own"], tmp_path, schedule=schedule)
    created = h.ok({"command": "create_export", "export": export})["export"]
    assert created["schedule"] == schedule and created["next_at"] > time.time() * 1000
    bad = _files_export("ex-badcron", ["ex-own"], tmp_path, schedule={"cron": "0 6 * *"})
    error = h.command({"command": "create_export", "export": bad})["error"]
    assert (error["code"], error["path"]) == ("bad_cron", "export.schedule.cron")
    keys = h.keys.registry
    due = int(time.time() * 1000) + 300
    raw = dict(unpack(h.redis.hget(keys.exports, "ex-cron")))
    raw["next_at"] = due
    h.redis.hset(keys.exports, "ex-cron", pack(raw))
    h.redis.zadd(keys.exports_due, {"ex-cron": due})
    reply = h.client.wait_reply(f"export-schedule:ex-cron:{due}", timeout=30)
    assert reply["ok"] and reply["result"]["ran"] is True, reply
    job = _job(h, reply["result"]["job"]["job_id"])
    assert job.status == "Successful"
    (data,) = _files(tmp_path, "*.csv")
    assert {r[0] for r in list(csv.reader(open(data)))[1:]} == members  # noqa: SIM115
    stored = unpack(h.redis.hget(keys.exports, "ex-cron"))
    assert stored["next_at"] > time.time() * 1000
    assert h.redis.zscore(keys.exports_due, "ex-cron") == stored["next_at"]


def test_an_export_left_without_segments_still_shows_masked(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "segment": segment("ex-last", {"attr": "l", "op": "exists"})})
    hook = {"id": "ex-lonely", "name": "Lonely", "segments": ["ex-last"],
            "destination": {"type": "webhook", "url": "https://x.example/h",
                            "secret": "a-long-secret"}}  # fmt: skip
    h.ok({"command": "create_export", "export": hook})
    assert h.ok({"command": "delete", "segment_id": "ex-last"})["removed_from_exports"] == [
        "ex-lonely"
    ]
    missing = h.command({"command": "update_export", "export": {"name": "no id"}})
    assert (missing["error"]["code"], missing["error"]["path"]) == ("missing_field", "export.id")
    result = h.ok({"command": "export", "export_id": "ex-lonely", "wait": True})
    assert result["tasks"] == {} and result["job"]["status"] == "Successful"
    stored = StoredExport.from_dict(unpack(h.redis.hget(h.keys.registry.exports, "ex-lonely")))
    view = export_view(stored)
    assert view["segments"] == [] and view["destination"]["secret"] == "***"
