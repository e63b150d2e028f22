"""`Client.wait_reply` against the real broker: it returns its reply as soon as it read it,
keeping the replies read before it for their own waits, and leaving what came after unread."""

from __future__ import annotations

import uuid

import msgpack
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from streams.client import Client
from streams.settings import Settings


def _reply(request_id: str) -> bytes:
    packed: bytes = msgpack.packb(
        {"request_id": request_id, "ok": True, "result": {"n": request_id}}
    )
    return packed


def test_wait_reply_returns_on_its_reply_and_leaves_later_ones_unread(
    kafka_bootstrap: str,
) -> None:
    topic = f"test-replies-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
    admin.create_topics([NewTopic(topic, 1, 1)])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap.split(","))
    client = Client(Settings.from_env({}, kafka_bootstrap=kafka_bootstrap, replies_topic=topic))
    try:
        for request_id in ("before", "mine", "after"):
            producer.send(topic, value=_reply(request_id))
        producer.flush()

        got = client.wait_reply("mine", timeout=30)
        assert got["result"] == {"n": "mine"}
        # the reply read before it waits for its own caller; the one after is not read yet
        assert set(client._pending_replies) == {"before"}
        assert client.wait_reply("before", timeout=30)["result"] == {"n": "before"}
        assert client.wait_reply("after", timeout=30)["result"] == {"n": "after"}
        assert client._pending_replies == {}
    finally:
        client.close()
        producer.close()
        admin.delete_topics([topic])
        admin.close()
