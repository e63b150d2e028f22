"""Analysis jobs on a worker of their own: events keep being applied while a model trains,
and a canceled analysis ends Canceled without writing its segment."""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .fixtures import ApiHarness, definition

pytestmark = pytest.mark.integration

CUSTOMERS = 1500
TRAINING = "training and scoring"
# while this file exists, the worker's similar-customers analyses keep running in the pool
# and their jobs stay in TRAINING (the test-only hold LS_ANALYSIS_HOLD_FILE)
HOLD = Path(tempfile.gettempdir()) / f"ls-analysis-hold-{uuid.uuid4().hex}"
WORKER_ENV = {"LS_ANALYSIS_HOLD_FILE": str(HOLD)}


@pytest.fixture(scope="module")
def population(api_harness: ApiHarness) -> ApiHarness:
    """1,500 customers with a few attributes; `young` (age < 30) is the source segment."""
    h = api_harness
    for sid, where in (
        ("known", {"attr": "age", "op": "exists"}),
        ("young", {"attr": "age", "op": "lt", "value": 30}),
    ):
        h.api.ok("POST", "/segments", {"segment": definition(sid, where), "activate": True}, 201)
    rng = random.Random(7)
    profiles = {
        f"p{i:05d}": {
            "age": rng.randint(18, 70),
            "country": rng.choice(("DE", "FR", "IT", "ES")),
            "ltv": rng.randint(0, 2000),
            "newsletter": rng.random() < 0.4,
        }
        for i in range(CUSTOMERS)
    }
    h.populate("known", profiles)
    return h


def _job(h: ApiHarness, job_id: str) -> dict[str, Any]:
    body: dict[str, Any] = h.api.ok("GET", f"/jobs/{job_id}")
    return body


def test_events_are_applied_while_a_model_trains(population: ApiHarness) -> None:
    """The hold keeps the analysis running in the pool (the model trained, the call not
    returned) until the test has seen an event applied: no race with a fast training. Were
    the training run in the worker's event loop, the event would wait for the hold: red."""
    h = population
    HOLD.touch()
    try:
        job = h.api.ok("POST", "/segments/young/similar", {"min_score": 0.0}, status=202)
        deadline = time.monotonic() + 120
        while (_job(h, job["job_id"]).get("progress") or {}).get("stage") != TRAINING:
            assert time.monotonic() < deadline, _job(h, job["job_id"])
            time.sleep(0.05)
        rows = h.api.ok("GET", "/jobs?limit=20")["jobs"]
        assert next(r for r in rows if r["job_id"] == job["job_id"])["status"] == "Processing"
        h.client.send_event("live-0", "profile", {"age": 99})
        h.client.flush()
        h.wait_members("known", h.members("known") | {"live-0"}, timeout=30)
        during = _job(h, job["job_id"])
        assert during["finished_at"] is None, during
        assert during["progress"]["stage"] == TRAINING, during
    finally:
        HOLD.unlink(missing_ok=True)
    deadline = time.monotonic() + 120
    while (state := _job(h, job["job_id"]))["finished_at"] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["status"] == "Successful", state


def test_a_canceled_analysis_ends_canceled_and_writes_nothing(population: ApiHarness) -> None:
    h = population
    job = h.api.ok("POST", "/segments/young/similar", {"segment_id": "young-canceled"}, status=202)
    h.api.ok("POST", f"/jobs/{job['job_id']}/cancel")
    deadline = time.monotonic() + 120
    while (state := _job(h, job["job_id"]))["finished_at"] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["status"] == "Canceled", state
    assert [t["status"] for t in state["tasks"]] == ["Canceled"]
    assert h.api.call("GET", "/segments/young-canceled")[0] == 404


def test_an_analysis_left_by_a_killed_worker_runs_again_on_the_next(
    population: ApiHarness,
) -> None:
    h = population
    job = h.api.ok("POST", "/segments/young/similar", {"segment_id": "young-after-crash"}, 202)
    deadline = time.monotonic() + 60
    while _job(h, job["job_id"]).get("progress") is None:  # the runner started it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    h.worker.kill()  # SIGKILL: the analysis dies with the worker, its job stays unfinished
    h.start()  # the next owner of the control partition takes over and runs it again
    h.api.wait_ready()
    deadline = time.monotonic() + 180
    while (state := _job(h, job["job_id"]))["finished_at"] is None:
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    assert state["status"] == "Successful", state
    chosen = set(h.api.ok("GET", "/segments/young-after-crash")["definition"]["members"])
    h.wait_members("young-after-crash", chosen, timeout=60)
