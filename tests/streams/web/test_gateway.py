"""ControlGateway on the real broker, with a stand-in for the control agent."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgpack
import pytest
from aiokafka import AIOKafkaProducer

from streams.settings import Settings
from streams.topics import ensure_topics
from streams.web.errors import ApiError
from streams.web.gateway import ControlGateway

from ..fixtures import cleanup, unique_env


class _Producer:
    """Forwards sends to Kafka; when `answer` is set, replies to each command like the agent."""

    def __init__(self, producer: AIOKafkaProducer, replies_topic: str, answer: bool) -> None:
        self.producer = producer
        self.replies_topic = replies_topic
        self.answer = answer

    async def send(self, topic: str, key: Any, value: bytes, *rest: Any) -> Any:
        future = await self.producer.send(topic, value, key=key)
        if self.answer:
            command = json.loads(value)
            reply = {"request_id": command["request_id"], "ok": True, "result": {"echo": command}}
            await self.producer.send_and_wait(self.replies_topic, msgpack.packb(reply))
        return future


class _App:
    def __init__(self, producer: _Producer) -> None:
        self.producer = producer


async def test_reply_is_matched_and_silence_is_a_504(kafka_bootstrap: str, redis_url: str) -> None:
    env = unique_env(kafka_bootstrap, redis_url, LS_API_COMMAND_TIMEOUT_S="1")
    settings = Settings.from_env(env)
    ensure_topics(settings)
    kafka = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await kafka.start()
    try:
        answering = _Producer(kafka, settings.replies_topic, answer=True)
        gateway = ControlGateway(_App(answering), settings)
        result = await gateway.command({"command": "refresh", "all": True})
        assert result["echo"]["command"] == "refresh"
        assert result["echo"]["request_id"].startswith("api-")
        answering.answer = False
        with pytest.raises(ApiError) as caught:
            await gateway.command({"command": "delete", "segment_id": "x" + uuid.uuid4().hex})
        assert (caught.value.status, caught.value.code) == (504, "timeout")
        assert "LS_API_COMMAND_TIMEOUT_S" in caught.value.message
        await gateway.stop()
    finally:
        await kafka.stop()
        cleanup(env)
