"""`segments jobs`, `job`, `job --watch`, `cancel` and `refresh --wait` against a worker."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ..fixtures import unique_env
from ..web.fixtures import TOKEN, ApiHarness, definition
from .fixtures import Run


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, redis_url: str) -> Iterator[ApiHarness]:
    env = unique_env(kafka_bootstrap, redis_url, LS_API_TOKEN=TOKEN, LS_TASK_CHUNK="5")
    h = ApiHarness(env, "jobs_cli")
    h.start()
    h.api.wait_ready()
    body = {"segment": definition("known", {"attr": "age", "op": "exists"}), "activate": True}
    h.api.ok("POST", "/segments", body, status=201)
    h.populate("known", {f"w{i:03d}": {"age": 18 + i % 50} for i in range(300)})
    yield h
    h.close()


def test_refresh_wait_shows_progress_then_jobs_and_job(run: Run) -> None:
    code, out, err = run("refresh", "known", "--wait")
    assert code == 0 and "refreshed 'known': 300 members" in out
    lines = err.splitlines()
    assert lines[0].startswith("job ") and "(refresh)" in lines[0]
    assert any(line.strip().startswith("p3 ") for line in lines)
    assert "300/300" in lines[-1] and "100%" in lines[-1]
    code, out, _ = run("jobs", "--segment", "known")
    assert code == 0
    rows = out.splitlines()
    assert rows[0].split()[:3] == ["JOB", "COMMAND", "STATUS"]
    assert rows[2].split()[1:3] == ["refresh", "Successful"]
    assert rows[-1].split()[1:3] == ["activate", "Successful"]
    job_id = rows[2].split()[0]
    code, out, _ = run("job", job_id)
    assert code == 0 and f"job {job_id} (refresh): Successful" in out
    assert "SEGMENT" in out and "known" in out
    code, out, _ = run("job", job_id, "--watch")  # finished: one picture and the tasks
    assert code == 0 and out.count("100%") == 5
    code, out, _ = run("job", job_id, "--json")
    assert json.loads(out)["tasks"][0]["status"] == "Successful"
    code, out, _ = run("jobs", "--status", "Failure")
    assert (code, out.strip()) == (0, "no jobs")


def test_cancel_errors(run: Run) -> None:
    code, _, err = run("cancel", "nope")
    assert code == 1 and "not_found" in err and "(HTTP 404)" in err
    code, out, _ = run("jobs", "--json")
    job_id = json.loads(out)["jobs"][0]["job_id"]
    code, _, err = run("cancel", job_id)
    assert code == 1 and "already_finished" in err and "(HTTP 409)" in err
    code, _, err = run("jobs", "--status", "whatever")
    assert code == 1 and "invalid_value at status" in err
