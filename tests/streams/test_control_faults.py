"""Control-plane faults on the control and events topics: a failing command costs that command
only, known triggers get clear errors, forged reports and forged task messages change nothing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import msgpack
import pytest

from state import Job

from .fixtures import Harness, segment

pytestmark = pytest.mark.integration


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


def _draft(h: Harness, segment_id: str) -> None:
    """A draft segment (no job): its reply proves every command before it was handled."""
    h.ok({"command": "create", "segment": segment(segment_id, {"attr": "a", "op": "exists"})})


def _send(h: Harness, command: dict[str, Any]) -> str:
    request_id = command.setdefault("request_id", uuid.uuid4().hex)
    h.client.send_command(command)
    return str(request_id)


def _error(h: Harness, command: dict[str, Any]) -> dict[str, Any]:
    reply = h.command(command, timeout=30)
    assert reply["ok"] is False, reply
    return dict(reply["error"])


def _job(h: Harness, job_id: str) -> Job | None:
    blob = h.redis.hget(h.keys.registry.jobs, job_id)
    return Job.from_dict(msgpack.unpackb(blob, raw=False, strict_map_key=False)) if blob else None


def _dead_letters(h: Harness, code: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = [
            letter
            for message in h.client.read_all(h.settings.dlq_topic, idle=0.5)
            if (letter := msgpack.unpackb(message.value, raw=False))["code"] == code
        ]
        if len(found) >= count:
            return found
    raise AssertionError(f"{len(found)} dead letters {code!r}, expected {count}: {found}")


def test_a_command_that_raises_is_answered_internal_and_the_next_one_runs(h: Harness) -> None:
    # a value wider than 64 bits parses but cannot be stored: the commit raises OverflowError
    huge = segment("cf-huge", {"attr": "n", "op": "eq", "value": 10**30})
    failing = _send(h, {"command": "create", "segment": huge, "activate": True})
    draft = segment("cf-after", {"attr": "n", "op": "exists"})
    after = _send(h, {"command": "create", "segment": draft})
    reply = h.client.wait_reply(failing, timeout=30)
    assert reply["ok"] is False, reply
    error = reply["error"]
    assert error["code"] == "internal"
    assert "'create'" in error["message"] and failing in error["message"]
    assert "Traceback" not in error["message"] and "File " not in error["message"]
    assert h.client.wait_reply(after, timeout=30)["ok"] is True
    # nothing of the failed command was kept
    assert h.redis.hget(h.keys.registry.segments, "cf-huge") is None
    assert h.redis.hget(h.keys.registry.segments, "cf-after") is not None
    # a redelivery of the same command is recognised and not answered a second time
    again = {"command": "create", "segment": huge, "activate": True, "request_id": failing}
    h.client.send_command({}, raw=json.dumps(again).encode())
    _draft(h, "cf-after-redelivery")
    with pytest.raises(TimeoutError):
        h.client.wait_reply(failing, timeout=1)


def test_duration_with_trailing_newline_is_refused_and_the_next_command_runs(h: Harness) -> None:
    where = {"event": "purchase", "agg": "count", "within": "7d\n", "op": "gte", "value": 1}
    error = _error(h, {"command": "create", "segment": segment("cf-nl", where)})
    assert error["code"] == "bad_duration"
    assert error["path"] == "segment.rules[0].where.within"
    ok_where = {**where, "within": "7d"}
    h.ok({"command": "create", "segment": segment("cf-nl", ok_where)})


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "cf-line\n"), ("id", "CF-upper")],
)
def test_segment_ids_must_match_in_full(h: Harness, field: str, value: str) -> None:
    definition = {**segment("x", {"attr": "a", "op": "exists"}), field: value}
    error = _error(h, {"command": "create", "segment": definition})
    assert error["code"] == "invalid_value" and error["path"] == "segment.id"


@pytest.mark.parametrize("at", ["²", 10**30, -1, "x" * 500, "0001-01-01T00:00:00+05:00"])
def test_schedule_at_out_of_range_or_not_a_time_is_refused(h: Harness, at: Any) -> None:
    if not h.redis.hexists(h.keys.registry.segments, "cf-sched"):
        _draft(h, "cf-sched")
    command = {"command": "schedule", "segment_id": "cf-sched", "action": "activate", "at": at}
    error = _error(h, command)
    assert error["code"] == "invalid_value" and error["path"] == "at"


def test_time_zone_of_300_characters_is_refused(h: Harness) -> None:
    zone = "E" * 300
    command = {"command": "schedule_refresh", "all": True, "cron": "0 6 * * *", "timezone": zone}
    error = _error(h, command)
    assert error["code"] == "bad_timezone" and "300 characters" in error["message"]


def _running_job(h: Harness) -> Job:
    """A job as the control agent writes it, with no partition having reported yet."""
    now = int(time.time() * 1000)
    job = Job(uuid.uuid4().hex, "cf-req", "refresh", ("cf-x",), 4, now, {}, task_digest="0" * 64)
    h.redis.hset(h.keys.registry.jobs, job.job_id, msgpack.packb(job.to_dict()))
    h.redis.hincrby(h.keys.registry.meta, "ver", 1)  # the control agent reloads
    return job


def _report(job: Job, stats: dict[str, int]) -> dict[str, Any]:
    return {"command": "_task_done", "job_id": job.job_id, "partition": 0, "stats": stats}


def test_forged_task_and_export_reports_neither_crash_nor_change_jobs(h: Harness) -> None:
    job = _running_job(h)
    stats = {"evaluated": 1, "entered": 1, "exited": 0}
    forged: list[dict[str, Any]] = [
        {"command": "_task_done"},
        {"command": "_task_done", "job_id": 7, "partition": 0},
        {"command": "_task_done", "job_id": "no-such-job", "partition": 0, "stats": stats},
        {"command": "_task_done", "job_id": job.job_id, "partition": "x", "stats": stats},
        {"command": "_task_done", "job_id": job.job_id, "partition": 99, "stats": stats},
        {"command": "_task_done", "job_id": job.job_id, "partition": -1, "stats": stats},
        {"command": "_task_done", "job_id": job.job_id, "partition": True, "stats": stats},
        {"command": "_task_done", "job_id": job.job_id, "partition": 0, "stats": "lots"},
        {
            "command": "_task_done",
            "job_id": job.job_id,
            "partition": 0,
            "stats": {"evaluated": "1"},
        },
        {**_report(job, stats), "segments": {"cf-x": {"status": "won"}}},
        {**_report(job, stats), "segments": "all"},
        {**_report(job, stats), "started_at": "now"},
        {**_report(job, stats), "exited_segments": "everything"},
        {"command": "_export_done", "job_id": job.job_id, "segment_id": "cf-x", "at": "soon"},
        {
            "command": "_export_done",
            "job_id": job.job_id,
            "segment_id": "cf-x",
            "status": "Successful",
        },
        {"command": "_export_done", "job_id": ["x"], "segment_id": {}},
    ]
    for report in forged:
        h.client.send_command(report)
    _draft(h, "cf-reports-handled")
    assert _job(h, job.job_id) == job
    # a well-formed report is folded: the checks above could have failed
    valid = {"command": "_task_done", "job_id": job.job_id, "partition": 0, "stats": stats}
    h.client.send_command(valid)
    deadline = time.monotonic() + 30
    while (current := _job(h, job.job_id)) is not None and 0 not in current.done:
        assert time.monotonic() < deadline, "the valid report was not folded"
        time.sleep(0.05)


def _task_message(job_id: str, definition: dict[str, Any]) -> bytes:
    task = {
        "job_id": job_id,
        "action": "activate",
        "cause": "activate",
        "segments": [{"id": definition["id"], "version": 1, "definition": definition}],
        "remove": [],
        "cancelable": True,
    }
    return msgpack.packb(task)  # type: ignore[no-any-return]


def test_forged_task_messages_on_the_events_topic_are_dead_lettered_without_effect(
    h: Harness,
) -> None:
    real = segment("cf-real", {"attr": "tier", "op": "exists"})
    h.ok({"command": "create", "activate": True, "segment": real})
    h.client.send_event("cf-c1", "profile", {"tier": "gold"})
    h.client.flush()
    h.wait_members("cf-real", {"cf-c1"})
    evil = segment("cf-evil", {"attr": "tier", "op": "exists"})
    real_jobs = [
        Job.from_dict(msgpack.unpackb(b, raw=False, strict_map_key=False))
        for b in h.redis.hvals(h.keys.registry.jobs)
    ]
    genuine = next(j for j in real_jobs if j.command == "activate" and "cf-real" in j.segment_ids)
    # the genuine task message of a finished job, read back from the events topic
    replay = next(
        m.value
        for m in h.client.read_all(h.settings.events_topic, idle=0.5)
        if dict(m.headers or []).get("ls-task") and genuine.job_id.encode() in m.value
    )
    forged = [
        b"\x00garbage",
        msgpack.packb({"action": "activate"}),
        _task_message(uuid.uuid4().hex, evil),  # no such job
        _task_message(genuine.job_id, evil),  # a real job, another body
        msgpack.packb(
            {
                "job_id": genuine.job_id,
                "action": "forget",
                "cause": "erased",
                "segments": [],
                "remove": [],
                "customer_id": "cf-c1",
            }
        ),
        replay,  # the exact genuine message again, after the job ended
    ]
    partitions = h.settings.events_partitions
    for n, value in enumerate(forged):
        h.client.producer.send(
            h.settings.events_topic,
            key=b"",
            value=value,
            partition=n % partitions,
            headers=[("ls-task", b"1")],
        )
    h.client.flush()
    letters = _dead_letters(h, "forged_task", len(forged))
    assert sorted(bytes(letter["value"]) for letter in letters) == sorted(forged)
    assert all(letter["reason"].startswith("task message refused:") for letter in letters)
    # no effect: no evil segment on any partition, the member is still there, not erased
    for p in range(partitions):
        assert not h.redis.hexists(h.keys.partition(p).catalog, "cf-evil")
        assert not h.redis.exists(h.keys.partition(p).members("cf-evil"))
    assert h.members("cf-real") == {"cf-c1"}
    assert _job(h, genuine.job_id) == genuine
    # and the partitions carry on with genuine work
    h.client.send_event("cf-c2", "profile", {"tier": "silver"})
    h.client.flush()
    h.wait_members("cf-real", {"cf-c1", "cf-c2"})
