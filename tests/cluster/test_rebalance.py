"""Rebalance under load: workers join, are SIGKILLed and stop while events stream, and an
activation and a refresh run across the rebalances; the result equals the reference."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator

import pytest

from .group import Group
from .services import PrivateCluster
from .workload import LATE, SEGMENTS, check_against_reference, reference, stream, wait_caught_up
from .workload import workload as make_workload

CUSTOMERS = 250
EVENTS = 4000

pytestmark = pytest.mark.timeout(600)  # the folder's first test also starts the cluster


@pytest.fixture
def group(private_cluster: PrivateCluster) -> Iterator[Group]:
    group = Group(private_cluster, "rebalance")
    yield group
    group.close()


def test_workers_added_killed_and_stopped_mid_stream_give_the_reference_result(
    group: Group,
) -> None:
    h = group.h
    events = make_workload(seed=23, customers=CUSTOMERS, events=EVENTS)
    cut = [0, len(events) // 5, len(events) // 2, 3 * len(events) // 4, len(events)]
    first, second, third, fourth = (events[a:b] for a, b in itertools.pairwise(cut))
    # start 1
    group.start()
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    stream(h, first, seconds=2)
    # add 2, while the stream goes on
    group.add()
    victim = group.add()
    stream(h, second, seconds=6)
    assert len(group.wait_assigned()) == 3
    # kill one (SIGKILL) mid-stream: its partitions wait for the session timeout, then move
    stream(h, third[: len(third) // 2], seconds=2)
    victim.kill(signal.SIGKILL)
    stream(h, third[len(third) // 2 :], seconds=2)
    # add one
    group.add()
    assert len(group.wait_assigned()) == 3
    wait_caught_up(h)
    # an activation and a refresh, then stop one gracefully while they run: their tasks on
    # the stopped worker's partitions finish on the partitions' next owners
    h.client.send_command(
        {"command": "create", "request_id": "late", "activate": True, "segment": LATE}
    )
    h.client.send_command({"command": "refresh", "all": True, "request_id": "refresh"})
    graceful = next(w for w in group.alive() if w is not h.worker)
    graceful.stop()
    so_far = reference([*SEGMENTS, LATE], first + second + third)
    activated = h.client.wait_reply("late", timeout=240)
    assert activated["ok"], activated
    assert activated["result"]["members"] == {LATE["id"]: len(so_far[LATE["id"]])}
    refreshed = h.client.wait_reply("refresh", timeout=240)
    assert refreshed["ok"], refreshed
    assert refreshed["result"]["job"]["status"] == "Successful"
    assert refreshed["result"]["members"] == {sid: len(m) for sid, m in so_far.items()}
    # the stream goes on with the two workers left
    stream(h, fourth, seconds=4)
    assert len(group.wait_assigned()) == 2
    wait_caught_up(h)
    expected = check_against_reference(h, [*SEGMENTS, LATE], events)
    print(
        f"rebalance: {len(events)} events ({CUSTOMERS} customers), workers started 4, "
        f"SIGKILLed 1 mid-stream, stopped 1 during an activation and a refresh; "
        f"{sum(map(len, expected.values()))} memberships in {len(expected)} segments; "
        "mismatches: 0"
    )
