"""Leader-only duties with three workers: a one-shot schedule fires exactly once and trend
snapshots are not duplicated, also when the leader is SIGKILLed."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator

import pytest

from state.trends import TrendStore
from streams.agents.scheduler import Scheduler
from tests.streams.fixtures import segment

from .group import Group
from .services import PrivateCluster
from .workload import stream
from .workload import workload as make_workload

INTERVAL_MS = 1000

pytestmark = pytest.mark.timeout(600)  # the folder's first test also starts the cluster


@pytest.fixture
def group(private_cluster: PrivateCluster) -> Iterator[Group]:
    group = Group(private_cluster, "leader", LS_TREND_INTERVAL_S=str(INTERVAL_MS / 1000))
    yield group
    group.close()


def _now() -> int:
    return int(time.time() * 1000)


def _trend(group: Group, segment_id: str) -> list[int]:
    """The instants of the segment's trend points, oldest first."""
    key = TrendStore(None, group.h.keys).key(segment_id)  # type: ignore[arg-type]
    return [int(score) for _, score in group.h.redis.zrange(key, 0, -1, withscores=True)]


def test_schedules_and_trend_snapshots_run_once_across_a_leader_kill(group: Group) -> None:
    h = group.h
    group.start()
    group.add()
    group.add()
    assert len(group.wait_assigned()) == 3
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("everyone", {"attr": "n", "op": "exists"}),
        }
    )
    for sid in ("first", "second"):
        h.ok({"command": "create", "segment": segment(sid, {"attr": "n", "op": "gte", "value": 0})})
    stream(h, make_workload(seed=5, customers=30, events=60), seconds=0.5)
    old = group.leader()

    def schedule(segment_id: str, at: int) -> str:
        result = h.ok(
            {"command": "schedule", "segment_id": segment_id, "action": "activate", "at": at}
        )
        return f"schedule:{result['schedule']['schedule_id']}:{at}"

    first = schedule("first", _now() + 1500)
    assert h.client.wait_reply(first, timeout=60)["ok"]  # fired by the first leader
    second = schedule("second", _now() + 2000)
    old.kill(signal.SIGKILL)  # before `second` is due: the next leader must fire it
    killed_at = _now()
    # the old leader's scheduler publishes a due command again while it is still pending
    # (a retry mid-flight when it died): the control agent must apply it once
    sid, due = first.split(":")[1:]
    (command,) = Scheduler.commands(None, [(sid, int(due))], [])  # type: ignore[arg-type]
    h.client.send_command(command, raw=json.dumps(command, sort_keys=True).encode())
    assert h.client.wait_reply(second, timeout=120)["ok"]
    new = group.leader()
    assert new is not old
    replies = [r["request_id"] for r in h.replies_through(h.barrier())]
    assert (replies.count(first), replies.count(second)) == (1, 1), replies
    # trend snapshots: the new leader takes them on, one point per interval at most
    deadline = time.monotonic() + 60
    while not [t for t in _trend(group, "everyone") if t > killed_at + 2 * INTERVAL_MS]:
        assert time.monotonic() < deadline, "no trend point after the leader was killed"
        time.sleep(0.2)
    points = _trend(group, "everyone")
    assert all(t % INTERVAL_MS == 0 for t in points), points
    assert len(points) == len(set(points))
    assert len(points) <= (points[-1] - points[0]) // INTERVAL_MS + 1, points
    print(
        f"leader duties: 3 workers, leader {old.name} SIGKILLed, {new.name} took over; "
        f"schedules fired {replies.count(first)} and {replies.count(second)} time(s); "
        f"{len(points)} trend points over {(points[-1] - points[0]) // 1000 + 1} s"
    )
