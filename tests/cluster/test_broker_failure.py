"""Broker failure: the broker leading most events partitions is SIGKILLed mid-stream and
brought back; with replication 3, min.insync.replicas 2 and idempotent acks=all producers,
nothing is lost and nothing applied twice."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack
import pytest

from .group import Group
from .services import PrivateCluster
from .workload import SEGMENTS, check_against_reference, progress, stream, wait_caught_up
from .workload import workload as make_workload

CUSTOMERS = 200
EVENTS = 3000

pytestmark = pytest.mark.timeout(600)  # the folder's first test also starts the cluster


@pytest.fixture
def group(private_cluster: PrivateCluster) -> Iterator[Group]:
    group = Group(private_cluster, "broker-failure")
    yield group
    group.close()


def test_killing_the_busiest_broker_mid_stream_loses_nothing_and_applies_nothing_twice(
    group: Group, private_cluster: PrivateCluster
) -> None:
    h = group.h
    topic = h.settings.events_topic
    events = make_workload(seed=31, customers=CUSTOMERS, events=EVENTS)
    before, during, after = (
        events[: len(events) // 3],
        events[len(events) // 3 : 2 * len(events) // 3],
        events[2 * len(events) // 3 :],
    )
    group.start()
    group.add()
    for definition in SEGMENTS:
        h.ok({"command": "create", "activate": True, "segment": definition})
    # the worker created its topics with replication 3 and min.insync.replicas 2 (settings)
    for name in (topic, h.settings.membership_topic, h.settings.control_topic):
        assert all(r == ([1, 2, 3], [1, 2, 3]) for r in private_cluster.replicas(name).values())
        assert private_cluster.topic_config(name, "min.insync.replicas") == "2"
    stream(h, before, seconds=3)
    busiest = private_cluster.busiest_leader(topic)
    led = sorted(p for p, node in private_cluster.leaders(topic).items() if node == busiest)
    # mid-stream: a batch is still in the producer and the workers are behind
    in_flight, rest = during[: len(during) // 3], during[len(during) // 3 :]
    for customer, event in in_flight:
        h.client.send_raw(topic, customer.encode(), msgpack.packb(event))
    applied, total = progress(h)
    private_cluster.kill_broker(busiest)
    stream(h, rest, seconds=4)
    assert busiest not in private_cluster.leaders(topic).values()  # the others took over
    private_cluster.restart_brokers()
    stream(h, after, seconds=3)
    wait_caught_up(h)
    expected = check_against_reference(h, SEGMENTS, events)
    print(
        f"broker failure: {len(events)} events ({CUSTOMERS} customers), node {busiest} "
        f"SIGKILLed while leading partitions {led} with {len(in_flight)} events in the "
        f"producer and {total - applied} of {total} in Kafka not yet applied, then restarted; "
        f"{sum(map(len, expected.values()))} memberships; "
        "mismatches: 0"
    )
