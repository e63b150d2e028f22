"""The worker on each `LS_EVENT_LOOP`: events in, memberships out, HTTP answering.

uvloop replaces asyncio's loop under faust, aiokafka (both the main loop and faust's consumer
thread's), redis-py and faust's aiohttp server: one worker per loop runs the events path end
to end and answers `/health`.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from .fixtures import Harness, segment, unique_env

LOOPS = {"asyncio": "asyncio.unix_events._UnixSelectorEventLoop", "uvloop": "uvloop.Loop"}


@pytest.fixture(scope="module", params=sorted(LOOPS))
def looped(
    kafka_bootstrap: str, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    env = unique_env(kafka_bootstrap, redis_url, LS_EVENT_LOOP=request.param)
    h = Harness(env, f"test_event_loop_{request.param}")
    h.start()
    yield h
    h.close()


def test_the_worker_runs_on_the_configured_loop(looped: Harness) -> None:
    h = looped
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("vip", {"attr": "tier", "op": "eq", "value": "vip"}),
        }
    )
    for i in range(12):
        h.client.send_event(f"v{i}", "profile", {"tier": "vip" if i % 2 else "basic"})
    h.client.flush()
    h.wait_members("vip", {f"v{i}" for i in range(12) if i % 2})
    entered = h.client.wait_for(
        lambda f: len(f.members.get("vip", set())) == 6, what="six vip entries on the topic"
    )
    assert entered.members["vip"] == {f"v{i}" for i in range(12) if i % 2}
    url = f"http://127.0.0.1:{h.settings.web_port}/health"
    health = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert health["redis"] and health["kafka"], health
    log = h.worker.log_path.read_text(errors="replace")
    assert f"events reader: event loop {LOOPS[h.settings.event_loop]}" in log
