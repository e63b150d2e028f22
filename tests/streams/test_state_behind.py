"""A partition whose state in Redis went backwards (flushed, stale failover) is refused, and
/health says so: processing it would silently skip the events Kafka says were applied."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from streams.engine.group_offsets import GroupOffsets

from .dlq import profile, wait_attrs
from .fixtures import Harness, unique_env
from .health import wait_health


@pytest.fixture
def own_harness(kafka_bootstrap: str, redis_url: str) -> Iterator[Harness]:
    h = Harness(unique_env(kafka_bootstrap, redis_url, LS_EVENTS_PARTITIONS="2"), "state_behind")
    try:
        h.start()
        yield h
    finally:
        h.close()


def _committed(h: Harness) -> dict[int, int]:
    """The offsets the worker's group committed in Kafka, by partition."""
    s = h.settings

    async def read() -> dict[int, int]:
        offsets = GroupOffsets(s.kafka_bootstrap, s.app_id, s.events_topic)
        try:
            found = {p: await offsets.committed(p) for p in range(2)}
        finally:
            await offsets.close()
        return {p: o for p, o in found.items() if o is not None}

    return asyncio.run(read())


def _flush_own_keys(h: Harness) -> None:
    """Delete every Redis key of this test's prefix (never anything else)."""
    prefix = h.settings.key_prefix
    for pattern in (f"{{{prefix}:*", f"{prefix}:*"):
        keys = list(h.redis.scan_iter(match=pattern, count=1000))
        if keys:
            h.redis.unlink(*keys)


def test_state_flushed_under_a_running_worker_is_refused_and_degraded(
    own_harness: Harness,
) -> None:
    h = own_harness
    expected = {f"before-{i}": {"n": i} for i in range(10)}
    for customer, attrs in expected.items():
        h.client.send_event(customer, "profile", attrs)
    h.client.flush()
    wait_attrs(h, expected)
    deadline = time.monotonic() + 60  # faust commits the applied offsets every few seconds
    while sum(_committed(h).values()) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sum(_committed(h).values()) >= len(expected)

    _flush_own_keys(h)
    h.client.send_event("after-flush", "profile", {"n": 99})
    h.client.flush()
    body = wait_health(
        h,
        lambda status, body: (
            status == 503 and any(s["refused"] and "offset" in s["error"] for s in body["stalls"])
        ),
    )
    refused = [s for s in body["stalls"] if s["refused"]]
    assert refused[0]["where"].startswith("partition ")
    assert "StateBehindError" in refused[0]["error"]
    assert "docs/operations.md" in refused[0]["error"]
    # the refused partition applied nothing on top of the lost state
    assert profile(h, "after-flush") is None
    log = h.worker.log_path.read_text(errors="replace")
    assert "committed offset" in log and "Refusing to process" in log
