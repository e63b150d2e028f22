"""Jobs end to end: one task per segment with its status, failures, skips and cancel."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from state import Job
from tests import layout

from .fixtures import Harness, TaskGate, segment, unique_env


@pytest.fixture(scope="module")
def jobs_harness(kafka_bootstrap: str, redis_url: str) -> Iterator[Harness]:
    """Chunks of one customer, so that a refresh of a few thousand customers takes a while."""
    h = Harness(unique_env(kafka_bootstrap, redis_url, LS_TASK_CHUNK="1"), "jobs")
    h.start()
    yield h
    h.close()


def _job(h: Harness, job_id: str) -> Job:
    blob = h.redis.hget(h.keys.registry.jobs, job_id)
    assert blob is not None
    return Job.from_dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))


def _job_of(h: Harness, request_id: str, timeout: float = 30) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for blob in h.redis.hvals(h.keys.registry.jobs):
            job = Job.from_dict(msgpack.unpackb(blob, raw=False, strict_map_key=False))
            if job.request_id == request_id:
                return job
        time.sleep(0.02)
    raise TimeoutError(f"no job for request {request_id!r}")


def _write_segments(h: Harness, *definitions: dict[str, Any]) -> None:
    """Store active segments as another version of livesegments would have (no validation
    by this one), then bump the registry's fence so the control agent reloads it."""
    now = int(time.time() * 1000)
    for definition in definitions:
        stored = {
            "id": definition["id"],
            "definition": definition,
            "version": 1,
            "active": True,
            "created_at": now,
            "modified_at": now,
        }
        h.redis.hset(h.keys.registry.segments, definition["id"], msgpack.packb(stored))
    h.redis.hincrby(h.keys.registry.meta, "ver", 1)


def _drop_segments(h: Harness, *segment_ids: str) -> None:
    h.redis.hdel(h.keys.registry.segments, *segment_ids)
    h.redis.hincrby(h.keys.registry.meta, "ver", 1)


def test_refresh_has_one_task_per_segment_and_skips_inactive_ones(jobs_harness: Harness) -> None:
    h = jobs_harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("j-all", {"attr": "k", "op": "exists"}),
        }
    )
    h.ok(
        {"command": "create", "segment": segment("j-draft", {"attr": "k", "op": "eq", "value": 1})}
    )
    for i in range(8):
        h.client.send_event(f"r{i}", "profile", {"k": i})
    h.client.flush()
    h.wait_members("j-all", {f"r{i}" for i in range(8)})
    result = h.ok({"command": "refresh", "segment_ids": ["j-all", "j-draft"]})
    # the reply as before, plus statuses
    assert result["segment_ids"] == ["j-all"] and result["skipped_inactive"] == ["j-draft"]
    assert result["job"]["evaluated"] >= 8 and result["job"]["status"] == "Successful"
    assert result["tasks"]["j-all"] == {"status": "Successful", "errors": []}
    assert result["tasks"]["j-draft"]["status"] == "Skipped"
    job = _job(h, result["job"]["job_id"])
    assert job.status == "Successful" and job.finished_at is not None
    task = job.tasks["j-all"]
    assert task.started_at is not None and task.ended_at is not None
    assert task.processing_ms is not None and task.processing_ms >= 0
    assert sorted(task.partitions) == [0, 1, 2, 3]
    assert sum(p["done"] for p in task.partitions.values()) == 8
    assert task.totals()["evaluated"] >= 8
    draft = job.tasks["j-draft"]
    assert draft.partitions == {} and "inactive" in draft.warnings[0]
    # a refresh of inactive segments only is still a job, Skipped, answered at once
    only = h.ok({"command": "refresh", "segment_ids": ["j-draft"]})
    assert _job(h, only["job"]["job_id"]).status == "Skipped"


def test_a_definition_that_does_not_compile_fails_and_its_dependents_are_skipped(
    jobs_harness: Harness,
) -> None:
    """A stored definition this version cannot compile (written by another version, with an
    operator it does not know) fails on every partition; the worker goes on, the segment using
    it is Skipped, an unrelated segment of the same refresh succeeds."""
    h = jobs_harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("j-ok", {"attr": "k", "op": "exists"}),
        }
    )
    bad = segment("j-bad", {"attr": "k", "op": "roughly", "value": 3})
    user = segment("j-uses-bad", {"in_segment": "j-bad"})
    _write_segments(h, bad, user)
    try:
        result = h.ok({"command": "refresh", "segment_ids": ["j-uses-bad", "j-ok", "j-bad"]})
        assert result["job"]["status"] == "Failure"
        tasks = result["tasks"]
        assert tasks["j-bad"]["status"] == "Failure"
        assert "does not compile" in tasks["j-bad"]["errors"][0]
        assert "roughly" in tasks["j-bad"]["errors"][0]
        assert "(partitions 0, 1, 2, 3)" in tasks["j-bad"]["errors"][0]
        assert tasks["j-uses-bad"]["status"] == "Skipped"
        assert tasks["j-ok"]["status"] == "Successful"
        job = _job(h, result["job"]["job_id"])
        assert "uses segment 'j-bad'" in job.tasks["j-uses-bad"].warnings[-1]
        assert h.members("j-bad") == set() and h.worker.alive()
        assert (
            h.ok({"command": "refresh", "segment_ids": ["j-ok"]})["job"]["status"] == "Successful"
        )
    finally:
        _drop_segments(h, "j-bad", "j-uses-bad")
    assert h.ok({"command": "refresh", "all": True})["job"]["status"] == "Successful"


def test_cancel_stops_a_refresh_between_chunks_and_leaves_the_rest_as_it_was(
    jobs_harness: Harness,
) -> None:
    h = jobs_harness
    static = segment("j-static", {"attr": "age", "op": "gte", "value": 40}, type="static")
    h.ok({"command": "create", "activate": True, "segment": static})
    # the same rule, dynamic: it shows when the events below are applied
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("j-old", {"attr": "age", "op": "gte", "value": 40}),
        }
    )
    customers = {f"c{i:04d}" for i in range(400)}
    for customer_id in customers:
        h.client.send_event(customer_id, "profile", {"age": 60})
    h.client.flush()
    h.wait_members("j-old", customers, timeout=60)
    assert h.members("j-static") == set()  # static: events do not move anyone in
    gate = TaskGate(h)
    gate.close()
    try:
        refresh_id = uuid.uuid4().hex
        h.client.send_command(
            {"command": "refresh", "segment_ids": ["j-static"], "request_id": refresh_id}
        )
        job = _job_of(h, refresh_id)
        held = gate.wait_held("j-static")  # this partition cannot finish before the cancel
        canceled = h.ok({"command": "cancel", "job_id": job.job_id})
    finally:
        gate.open()
    assert canceled == {
        "job_id": job.job_id,
        "status": "Canceled",
        "canceled": ["j-static"],
        "changed": True,
    }
    reply = h.client.wait_reply(refresh_id, timeout=120)  # exactly one reply, still ok
    assert reply["ok"] and reply["result"]["job"]["status"] == "Canceled"
    assert reply["result"]["tasks"]["j-static"]["status"] == "Canceled"
    job = _job(h, job.job_id)
    assert job.status == "Canceled" and job.canceled_at is not None
    assert job.done[held]["done"] == gate.stop[held] > 0  # held there, then stopped
    for partition, report in job.done.items():
        ids = gate.customers(partition)
        members = layout.members(h.redis, h.keys.partition(partition), "j-static")
        # the customers reached (in id order) were refreshed; the others kept their state
        assert report["done"] <= gate.stop[partition] < len(ids), partition
        assert members == {i for i in ids[: report["done"]] if i in customers}, partition
    again = h.command({"command": "cancel", "job_id": job.job_id})
    assert again["error"]["code"] == "already_finished"
    # a new refresh completes what the canceled one left
    assert h.ok({"command": "refresh", "segment_ids": ["j-static"]})["members"] == {"j-static": 400}


def test_cancel_is_refused_for_unknown_and_removing_jobs(jobs_harness: Harness) -> None:
    h = jobs_harness
    assert h.command({"command": "cancel", "job_id": "nope"})["error"]["code"] == "not_found"
    assert h.command({"command": "cancel"})["error"]["code"] == "missing_field"
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("j-gone", {"attr": "z", "op": "exists"}),
        }
    )
    request_id = uuid.uuid4().hex
    h.client.send_command(
        {"command": "deactivate", "segment_id": "j-gone", "request_id": request_id}
    )
    job = _job_of(h, request_id)
    reply = h.command({"command": "cancel", "job_id": job.job_id})
    assert reply["error"]["code"] in ("not_cancelable", "already_finished")
    assert h.client.wait_reply(request_id)["ok"]
