"""The jobs API end to end: list and filter jobs, a running job's per-partition progress,
cancel over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..fixtures import TaskGate, unique_env
from .fixtures import TOKEN, ApiHarness, definition


@pytest.fixture(scope="module")
def slow_api(kafka_bootstrap: str, redis_url: str) -> Iterator[ApiHarness]:
    """The API on a worker whose tasks commit one customer per chunk (slow, observable)."""
    env = unique_env(kafka_bootstrap, redis_url, LS_API_TOKEN=TOKEN, LS_TASK_CHUNK="1")
    h = ApiHarness(env, "jobs_api")
    h.start()
    h.api.wait_ready()
    h.api.ok(
        "POST",
        "/segments",
        {"segment": definition("everyone", {"attr": "age", "op": "exists"}), "activate": True},
        status=201,
    )
    h.populate("everyone", {f"q{i:04d}": {"age": 20} for i in range(1200)})
    yield h
    h.close()


def test_list_show_and_filter_jobs(slow_api: ApiHarness) -> None:
    api = slow_api.api
    api.ok(
        "POST",
        "/segments",
        {"segment": definition("young", {"attr": "age", "op": "lt", "value": 30})},
        status=201,
    )
    result = api.ok("POST", "/segments/refresh", {"segment_ids": ["everyone", "young"]})
    job_id = result["job"]["job_id"]
    assert result["job"]["status"] == "Successful"
    jobs = api.ok("GET", "/jobs")["jobs"]
    assert jobs[0]["job_id"] == job_id  # newest first
    assert jobs[0]["tasks"] == {"everyone": "Successful", "young": "Skipped"}
    assert jobs[-1]["command"] == "activate"
    assert [j["job_id"] for j in api.ok("GET", "/jobs?segment=young")["jobs"]] == [job_id]
    assert api.ok("GET", "/jobs?status=failure")["jobs"] == []
    assert {j["status"] for j in api.ok("GET", "/jobs?status=Successful")["jobs"]} == {"Successful"}
    status, body = api.call("GET", "/jobs?status=done")
    assert status == 400 and body["error"]["path"] == "status"
    shown = api.ok("GET", f"/jobs/{job_id}")
    assert shown["status"] == "Successful" and shown["request_id"].startswith("api-")
    assert shown["progress"]["done"] == shown["progress"]["total"] == 1200
    assert {p["status"] for p in shown["progress"]["partitions"]} == {"done"}
    tasks = {t["segment_id"]: t for t in shown["tasks"]}
    assert tasks["everyone"]["evaluated"] == 1200 and tasks["everyone"]["processing_ms"] >= 0
    assert [p["status"] for p in tasks["everyone"]["partitions"]] == ["done"] * 4
    assert tasks["young"]["status"] == "Skipped" and "inactive" in tasks["young"]["warnings"][0]
    status, body = api.call("GET", "/jobs/nope")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body = api.call("POST", f"/jobs/{job_id}/cancel")
    assert status == 409 and body["error"]["code"] == "already_finished"
    assert api.call("POST", f"/jobs/{job_id}/cancel", token=None)[0] == 401


def test_a_running_job_shows_progress_and_can_be_canceled(slow_api: ApiHarness) -> None:
    api = slow_api.api
    api.ok(
        "POST",
        "/segments",
        {
            "segment": definition("old", {"attr": "age", "op": "gte", "value": 40}, type="static"),
            "activate": True,
        },
        status=201,
    )
    gate = TaskGate(slow_api)  # every partition's task is held halfway until the cancel
    gate.close()
    try:
        answer: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: answer.update(
                r=api.call("POST", "/segments/refresh", {"segment_ids": ["old"]})
            )
        )
        thread.start()
        seen: dict[str, Any] | None = None
        deadline = time.monotonic() + 60
        while seen is None:
            assert time.monotonic() < deadline, "never saw the refresh running"
            jobs = api.ok("GET", "/jobs?segment=old&limit=1")["jobs"]
            if jobs and jobs[0]["command"] == "refresh":
                shown = api.ok("GET", f"/jobs/{jobs[0]['job_id']}")
                if shown["status"] == "Processing" and shown["progress"]["done"] > 0:
                    seen = shown
            time.sleep(0.05)
        assert seen["finished_at"] is None
        for shown_partition in seen["progress"]["partitions"]:
            if shown_partition["status"] == "processing":  # its customers, its gate included
                customers = gate.customers(shown_partition["partition"])
                assert shown_partition["total"] == len(customers), shown_partition
        assert {t["status"] for t in seen["tasks"]} == {"Processing"}
        assert "processing" in {p["status"] for p in seen["progress"]["partitions"]}
        canceled = api.ok("POST", f"/jobs/{seen['job_id']}/cancel")
    finally:
        gate.open()
    assert canceled["status"] == "Canceled" and canceled["canceled"] == ["old"]
    thread.join(60)
    status, body = answer["r"]
    assert status == 200 and body["job"]["status"] == "Canceled"
    final = api.ok("GET", f"/jobs/{seen['job_id']}")
    assert final["status"] == "Canceled" and final["canceled_at"] is not None
    assert final["tasks"][0]["status"] == "Canceled"
    assert 0 < final["progress"]["done"] <= sum(gate.stop.values()) < 1200
