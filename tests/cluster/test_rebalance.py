"""Rebalance under load: workers join, are SIGKILLed and stop while events stream, and an
activation and a refresh run across the rebalances; the result equals the reference."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from .group import Group
from .services import PrivateCluster
from .workload import LATE, SEGMENTS, check_against_reference, reference, stream, wait_caught_up
from .workload import workload as make_workload

CUSTOMERS = 250
EVENTS = 4000


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
    first, second, third, fourth = (
        events[: len(events) // 5],
        events[len(events) // 5 : len(events) // 2],
        events[len(events) // 2 : 3 * len(events) // 4],
        events[3 * len(events) // 4 :],
    )
    # start 1
    group.start()
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    stream(h, first, seconds=2)
    # add 2, while the stream goes on
    group.add()
    victim = group.add()
    stream(h, second, seconds=6)
    owned = group.wait_assigned()
    assert len(owned) == 3, owned
    wait_caught_up(h)
    # kill one (SIGKILL), and issue an activation and a refresh during the rebalance that
    # follows (the victim's partitions wait for the session timeout), then add one
    victim.kill(signal.SIGKILL)
    h.client.send_command(
        {"command": "create", "request_id": "late", "activate": True, "segment": LATE}
    )
    h.client.send_command({"command": "refresh", "all": True, "request_id": "refresh"})
    group.add()
    so_far = reference([*SEGMENTS, LATE], first + second)
    activated = h.client.wait_reply("late", timeout=240)
    assert activated["ok"], activated
    assert activated["result"]["members"] == {LATE["id"]: len(so_far[LATE["id"]])}
    refreshed = h.client.wait_reply("refresh", timeout=240)
    assert refreshed["ok"], refreshed
    assert refreshed["result"]["job"]["status"] == "Successful"
    assert refreshed["result"]["members"] == {sid: len(m) for sid, m in so_far.items()}
    # stream on while the group settles, then stop one gracefully mid-stream
    stream(h, third, seconds=4)
    group.wait_assigned()
    graceful = next(w for w in group.alive() if w is not h.worker)
    stream(h, fourth[: len(fourth) // 2], seconds=2)
    graceful.stop()
    stream(h, fourth[len(fourth) // 2 :], seconds=3)
    owned = group.wait_assigned()
    assert len(owned) == 2, owned
    wait_caught_up(h)
    expected = check_against_reference(h, [*SEGMENTS, LATE], events)
    print(
        f"rebalance: {len(events)} events ({CUSTOMERS} customers), workers started 4, "
        f"SIGKILLed 1, stopped 1; {sum(map(len, expected.values()))} memberships in "
        f"{len(expected)} segments; mismatches: 0"
    )
