"""Infrastructure failures are retried with capped backoff and visible in /health and the
metrics while they last; a stopping worker exits within a bound even then (private
services: this test stops Redis and kills Kafka)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator

import pytest

from ..private_services import PrivateServices
from ..private_services import private_services as private_services
from .dlq import wait_attrs
from .fixtures import Harness, unique_env
from .health import metrics_text, wait_health

SHUTDOWN_BOUND_S = 15.0
"""LS_SHUTDOWN_TIMEOUT_S (10 s by default) plus the time to exit."""


@pytest.fixture
def private_harness(private_services: PrivateServices) -> Iterator[Harness]:
    env = unique_env(
        private_services.kafka_bootstrap,
        private_services.redis_url,
        LS_STALL_THRESHOLD_S="1",
        LS_EVENTS_PARTITIONS="2",
    )
    h = Harness(env, "test_stalls")
    try:
        h.start()
        yield h
    finally:
        h.worker.stop()


def _stalled(status: int, body: dict[str, object]) -> bool:
    stalls = body.get("stalls") or []
    return status == 503 and any(
        str(s["where"]).startswith("partition ") and "Connection" in str(s["error"])
        for s in stalls  # type: ignore[attr-defined]
    )


def test_a_redis_outage_is_degraded_in_health_then_recovers_and_sigterm_is_bounded(
    private_harness: Harness, private_services: PrivateServices
) -> None:
    h = private_harness
    wait_health(h, lambda status, body: status == 200 and body["status"] == "ok")
    private_services.stop("redis")
    h.client.send_event("during-outage", "profile", {"n": 1})
    h.client.flush()
    body = wait_health(h, _stalled)
    assert body["status"] == "degraded" and body["redis"] is False
    retries = re.findall(
        r'livesegments_retries_total\{cause="(\w+)",plane="events"\} (\S+)', metrics_text(h)
    )
    assert retries and sum(float(n) for _, n in retries) >= 1

    private_services.start("redis")
    wait_health(h, lambda status, body: status == 200 and not body["stalls"])
    wait_attrs(h, {"during-outage": {"n": 1}})

    # now stall it again and take Kafka away too: SIGTERM must still stop the worker
    private_services.stop("redis")
    h.client.send_event("before-stop", "profile", {"n": 2})
    h.client.flush()
    wait_health(h, _stalled)
    private_services.kill_kafka()
    assert h.worker.proc is not None
    started = time.monotonic()
    h.worker.proc.send_signal(signal.SIGTERM)
    h.worker.proc.wait(SHUTDOWN_BOUND_S + 30)
    took = time.monotonic() - started
    assert took <= SHUTDOWN_BOUND_S, f"the worker took {took:.1f}s to stop after SIGTERM"
