"""The consumer group's committed offsets in Kafka, to detect a state that went backwards.

An offset past the partition's log end is no such evidence: no record was ever applied there
(the reader commits `last applied + 1`, at most the log end). Kafka answers a fetch from it with
"offset out of range" and the consumer starts over from the earliest offset, where the state
skips what it applied. It is logged and reported as no committed offset, so the partition is
not refused (a bench run once found every partition of the group committed one past its log
end, and the restarted worker refused them all).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["GroupOffsets", "LogEnd"]

log = logging.getLogger(__name__)

LogEnd = Callable[[int], Awaitable["int | None"]]
"""The log end offset (high watermark) of an events partition, or None if unknown."""


class GroupOffsets:
    """Reads the offset the group committed for one events partition (Kafka's admin API)."""

    def __init__(
        self, bootstrap: str, group: str, topic: str, log_end: LogEnd | None = None
    ) -> None:
        self._bootstrap = bootstrap.split(",")
        self._log_end = log_end
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
        offset: int | None = None if meta is None else meta.offset
        if offset is None or offset < 0:
            return None
        end = await self._end(partition) if self._log_end is not None else None
        if end is not None and offset > end:
            log.warning(
                "%s[%d]: the group's committed offset %d is past the log end %d; no record was "
                "applied there, so it is not compared with the state (the consumer starts over "
                "from the earliest offset and the state skips what it applied)",
                self._topic,
                partition,
                offset,
                end,
            )
            return None
        return offset

    async def _end(self, partition: int) -> int | None:
        assert self._log_end is not None
        try:
            return await self._log_end(partition)
        except Exception as exc:  # unknown: the offset is compared as it is
            log.warning("%s[%d]: log end unknown: %r", self._topic, partition, exc)
            return None

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
