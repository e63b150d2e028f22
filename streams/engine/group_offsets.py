"""The consumer group's committed offsets in Kafka, to detect a state that went backwards."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["GroupOffsets"]


class GroupOffsets:
    """Reads the offset the group committed for one events partition (Kafka's admin API)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._bootstrap = bootstrap.split(",")
        self._group = group
        self._topic = topic
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()

    async def committed(self, partition: int) -> int | None:
        """The next offset the group will read on `partition`, or None if it committed none."""
        tp = TopicPartition(self._topic, partition)
        async with self._lock:
            if self._admin is None:
                admin = AIOKafkaAdminClient(
                    bootstrap_servers=self._bootstrap, request_timeout_ms=5000
                )
                await admin.start()
                self._admin = admin
            try:
                found = await self._admin.list_consumer_group_offsets(self._group, partitions=[tp])
            except BaseException:
                await self.close()
                raise
        meta = found.get(tp)
        offset = None if meta is None else meta.offset
        return offset if offset is not None and offset >= 0 else None

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
