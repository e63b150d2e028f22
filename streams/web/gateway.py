"""Sends control commands and waits for their replies, from any worker.

The control partition may be owned by another worker, so the API never calls the control
runtime: it publishes the command on the control topic with a fresh request id and reads
the replies topic (an aiokafka consumer with no group, on every partition, from the end).
The consumer starts with the first command and positions itself before anything is sent,
so no reply can slip by.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

import msgpack
from aiokafka import AIOKafkaConsumer

from ..settings import Settings
from .errors import ApiError

__all__ = ["ControlGateway"]

log = logging.getLogger(__name__)


class ControlGateway:
    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._start_lock = asyncio.Lock()
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def command(self, command: dict[str, Any]) -> dict[str, Any]:
        """Publish `command` with a fresh request id and return its reply's result.

        Raises ApiError: the reply's error (400/404/409) or 504 when no reply comes in time.
        """
        await self._ensure_started()
        request_id = f"api-{uuid.uuid4().hex}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            value = json.dumps({**command, "request_id": request_id}).encode()
            delivery = await self.app.producer.send(
                self.settings.control_topic, None, value, None, None, None
            )
            await delivery
            timeout = self.settings.api_command_timeout_s
            try:
                reply = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise ApiError(
                    504,
                    "timeout",
                    f"no reply to {command.get('command')!r} (request_id {request_id}) within "
                    f"{timeout:g}s (LS_API_COMMAND_TIMEOUT_S); the command may still apply: "
                    "check the segment before retrying",
                ) from None
        finally:
            self._waiting.pop(request_id, None)
        if not reply.get("ok"):
            raise ApiError.from_reply(reply.get("error") or {})
        return dict(reply.get("result") or {})

    async def _ensure_started(self) -> None:
        if self._reader is not None and not self._reader.done():
            return
        async with self._start_lock:
            if self._reader is not None and not self._reader.done():
                return
            await self._stop_consumer()
            consumer = AIOKafkaConsumer(
                self.settings.replies_topic,
                bootstrap_servers=self.settings.kafka_bootstrap.split(","),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
            )
            await consumer.start()
            try:
                for _ in range(200):
                    if consumer.assignment():
                        break
                    await asyncio.sleep(0.05)
                assigned = list(consumer.assignment())
                if not assigned:
                    raise ApiError(
                        504,
                        "timeout",
                        f"cannot read the replies topic {self.settings.replies_topic!r}: "
                        "it has no partitions (is the worker set up?)",
                    )
                await consumer.seek_to_end(*assigned)
                for tp in assigned:
                    await consumer.position(tp)
            except BaseException:
                await consumer.stop()
                raise
            self._consumer = consumer
            self._reader = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        async for message in consumer:
            try:
                reply = msgpack.unpackb(message.value, raw=False, strict_map_key=False)
                future = self._waiting.get(reply.get("request_id") or "")
            except Exception:
                log.warning("unreadable reply at offset %s ignored", message.offset)
                continue
            if future is not None and not future.done():
                future.set_result(reply)

    async def _stop_consumer(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
            self._consumer = None

    async def stop(self) -> None:
        await self._stop_consumer()
