"""The control outbox after a failed publish: republished before the next command, never trimmed
by it (a private broker whose events topic refuses every record for a while)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from state import unpack_records

from ..private_services import PrivateServices, private_services  # noqa: F401
from .fixtures import Harness, segment, unique_env

pytestmark = pytest.mark.integration


@pytest.fixture
def private_harness(private_services: PrivateServices) -> Iterator[Harness]:  # noqa: F811
    env = unique_env(private_services.kafka_bootstrap, private_services.redis_url)
    h = Harness(env, "control_outbox")
    try:
        h.start()
        yield h
    finally:
        h.close()


def _max_message_bytes(h: Harness, topic: str, size: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=h.settings.kafka_bootstrap.split(","))
    try:
        config = {"max.message.bytes": str(size)}
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)])
    finally:
        admin.close()


def _wait(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)


def test_failed_publish_of_tasks_is_republished_and_the_job_completes(
    private_harness: Harness,
) -> None:
    h = private_harness
    partitions = h.settings.events_partitions
    h.client.send_event("ob-1", "profile", {"tier": "gold"})
    h.client.flush()
    profiles = [h.keys.partition(p).profile("ob-1") for p in range(partitions)]
    _wait(lambda: h.redis.exists(*profiles) == 1, "ob-1 applied")
    # the events topic now refuses every record: the activate's task messages cannot be sent
    _max_message_bytes(h, h.settings.events_topic, 1)
    activate, draft = uuid.uuid4().hex, uuid.uuid4().hex
    gold = segment("ob-gold", {"attr": "tier", "op": "eq", "value": "gold"})
    h.client.send_command(
        {"command": "create", "segment": gold, "activate": True, "request_id": activate}
    )
    h.client.send_command(
        {
            "command": "create",
            "segment": segment("ob-draft", {"attr": "x", "op": "exists"}),
            "request_id": draft,
        }
    )
    outbox = h.keys.registry.outbox
    # committed, not delivered: the activate's task messages wait in the registry's outbox
    # (one entry per commit)
    _wait(
        lambda: sum(map(len, unpack_records(h.redis.lrange(outbox, 0, -1)))) >= partitions,
        "the tasks committed to the outbox",
    )
    time.sleep(0)  # the worker is retrying the publish meanwhile
    _max_message_bytes(h, h.settings.events_topic, 1_048_588)
    reply = h.client.wait_reply(activate, timeout=90)
    assert reply["ok"], reply
    assert reply["result"]["job"]["status"] == "Successful"
    assert reply["result"]["members"] == {"ob-gold": 1}
    assert h.client.wait_reply(draft, timeout=30)["ok"]
    _wait(lambda: h.redis.llen(outbox) == 0, "the outbox trimmed once delivered")
    assert h.members("ob-gold") == {"ob-1"}
