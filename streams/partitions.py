"""Runs the engine for the events partitions this worker owns: load, apply, commit, publish.

Each partition is processed serially under its own lock (events, tasks and expiries alike).
A batch's state and the offset of its last message are committed in one fenced Redis
transaction together with the messages to publish (the outbox); the outbox is published
after the commit and trimmed once Kafka acknowledged it. After a crash the worker skips
messages at or below the committed offset and publishes what the outbox still holds, so the
memberships are those of an uninterrupted run and no change is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import msgpack
from redis.asyncio import Redis

from state import (
    AppliedSegment,
    FencedError,
    KeySpace,
    OutboxRecord,
    PartitionBatch,
    PartitionMeta,
    PartitionStore,
    Profile,
)

from . import metrics
from .engine import EngineConfig, PartitionEngine, TaskStats
from .errors import BadMessage
from .messages import TASK_HEADER, decode_event, encode
from .publisher import Publisher
from .settings import Settings

__all__ = ["Incoming", "PartitionRuntime"]

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message of the events topic, as the agent received it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def is_task(self) -> bool:
        return any(name == TASK_HEADER for name, _ in self.headers)


class _Owner:
    """A partition this worker owns: its store, engine, committed meta and profile cache.

    The cache holds profiles exactly as committed (the owner is their only writer). Any
    failure while applying a batch discards the whole owner, cache included, so a profile
    changed by a batch that did not commit is never reused.
    """

    def __init__(
        self, store: PartitionStore, engine: PartitionEngine, meta: PartitionMeta, cache_size: int
    ):
        self.store = store
        self.engine = engine
        self.meta = meta
        self.lock = asyncio.Lock()
        self.confirming: asyncio.Future[None] | None = None
        self.broken = False
        self.cache: OrderedDict[str, Profile] = OrderedDict()
        self.cache_size = cache_size

    async def profiles(self, customer_ids: Sequence[str]) -> list[Profile | None]:
        """Profiles from the cache, the rest from Redis in one MGET."""
        cache = self.cache
        missing = [c for c in customer_ids if c not in cache]
        loaded = dict(zip(missing, await self.store.load_profiles(missing), strict=True))
        return [cache.get(c) or loaded[c] for c in customer_ids]

    def remember(self, profiles: Iterable[Profile]) -> None:
        """After a commit: keep the committed profiles, evicting the least recently used."""
        cache = self.cache
        for profile in profiles:
            cache[profile.customer_id] = profile
            cache.move_to_end(profile.customer_id)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)


class PartitionRuntime:
    def __init__(self, settings: Settings, redis: Redis, publisher: Publisher) -> None:
        self.settings = settings
        self.redis = redis
        self.publisher = publisher
        self.keyspace = KeySpace(settings.key_prefix)
        self.config = EngineConfig(
            settings.membership_topic, settings.history_max_events, settings.history_max_age_ms
        )
        self._owners: dict[int, _Owner] = {}
        self._loading: dict[int, asyncio.Lock] = {}

    # -- ownership ------------------------------------------------------------------------
    def forget(self, partitions: Sequence[int]) -> None:
        """Drop cached state of revoked partitions; the next owner reloads from Redis."""
        for partition in partitions:
            self._owners.pop(partition, None)

    async def owner(self, partition: int) -> _Owner:
        owner = self._owners.get(partition)
        if owner is not None:
            return owner
        lock = self._loading.setdefault(partition, asyncio.Lock())
        async with lock:
            owner = self._owners.get(partition)
            if owner is None:
                owner = await self._load(partition)
                self._owners[partition] = owner
        return owner

    async def _load(self, partition: int) -> _Owner:
        store = PartitionStore(self.redis, self.keyspace, partition)
        meta = await store.load_meta()
        catalog = await store.load_catalog()
        pending = await store.outbox()
        if pending:  # committed before a crash, maybe not published: publish again
            await self.publisher.publish(pending)
            await store.trim_outbox(len(pending))
            log.info("partition %d: republished %d outbox records", partition, len(pending))
        log.info(
            "partition %d: resuming after offset %d (%d segments applied)",
            partition,
            meta.offset,
            len(catalog),
        )
        engine = PartitionEngine(partition, self.config, catalog)
        return _Owner(store, engine, meta, self.settings.profile_cache_size)

    def _discard(self, owner: _Owner) -> None:
        if self._owners.get(owner.store.partition) is owner:
            del self._owners[owner.store.partition]

    # -- events and tasks -----------------------------------------------------------------
    async def process(self, partition: int, messages: Sequence[Incoming]) -> None:
        """Apply messages of one partition in order; a fenced commit reloads and retries once."""
        for _attempt in range(2):
            owner = await self.owner(partition)
            async with owner.lock:
                if owner is not self._owners.get(partition):
                    continue  # reloaded meanwhile
                try:
                    await self._process(owner, messages)
                    return
                except FencedError as exc:
                    log.warning("%s; reloading partition %d", exc, partition)
                    self._discard(owner)
                except BaseException:
                    self._discard(owner)  # its cached profiles may hold uncommitted changes
                    raise
        log.warning("partition %d: fenced twice, leaving the batch to its new owner", partition)

    async def _process(self, owner: _Owner, messages: Sequence[Incoming]) -> None:
        started = time.perf_counter()
        run: list[Incoming] = []
        for message in messages:
            if message.offset <= owner.meta.offset:
                continue  # applied before a restart or rebalance
            if message.is_task:
                await self._apply_events(owner, run)
                run = []
                await self._run_task(owner, message)
            else:
                run.append(message)
        await self._apply_events(owner, run)
        metrics.PROCESSING_LATENCY.observe(time.perf_counter() - started)

    async def _apply_events(self, owner: _Owner, messages: Sequence[Incoming]) -> None:
        if not messages:
            return
        settings = self.settings
        now = now_ms()
        batch = PartitionBatch(owner.store.keys, owner.meta)
        decoded = []
        for message in messages:
            try:
                event = decode_event(
                    message.value,
                    message.key,
                    now_ms=now,
                    max_bytes=settings.max_message_bytes,
                    max_future_ms=settings.max_future_ms,
                )
            except BadMessage as exc:
                batch.outbox.append(self._dead_letter(message, exc, now))
                continue
            decoded.append(event)
        ids = list(dict.fromkeys(e.customer_id for e in decoded))
        loaded = await owner.profiles(ids)
        profiles: dict[str, Profile] = {}
        for customer_id, profile in zip(ids, loaded, strict=True):
            if profile is None:
                profile = Profile(customer_id)
                batch.new_customers.append(customer_id)
            profiles[customer_id] = profile
        engine = owner.engine
        applied = 0
        for event in decoded:
            profile = profiles[event.customer_id]
            if engine.apply_event(batch, profile, event, now):
                applied += 1
            else:
                metrics.DUPLICATES.inc()
            batch.profiles[event.customer_id] = profile
        batch.offset = messages[-1].offset
        await self._commit(owner, batch)
        metrics.EVENTS_PROCESSED.labels(str(owner.store.partition)).inc(applied)

    def _dead_letter(self, message: Incoming, exc: BadMessage, now: int) -> OutboxRecord:
        log.warning(
            "%s[%d]@%d: dead letter (%s): %s",
            self.settings.events_topic,
            message.partition,
            message.offset,
            exc.code,
            exc.reason,
        )
        metrics.DLQ_MESSAGES.labels(exc.code).inc()
        value = encode(
            {
                "topic": self.settings.events_topic,
                "partition": message.partition,
                "offset": message.offset,
                "key": message.key,
                "value": message.value,
                "code": exc.code,
                "reason": exc.reason,
                "at": now,
            }
        )
        return OutboxRecord(self.settings.dlq_topic, message.key, value)

    async def _commit(self, owner: _Owner, batch: PartitionBatch) -> None:
        """Commit, hand the outbox to the producer, and confirm it in the background.

        The next batch does not wait for Kafka's acknowledgement; confirmations run in
        commit order and trim the outbox only after every earlier record was acknowledged.
        """
        ver = await owner.store.commit(owner.meta.ver, batch)
        owner.meta = PartitionMeta(ver, batch.offset, batch.seq, batch.task)
        owner.remember(batch.profiles.values())
        if batch.outbox:
            futures = await self.publisher.send(batch.outbox)
            owner.confirming = asyncio.ensure_future(
                self._confirm(owner, futures, owner.confirming)
            )

    async def _confirm(
        self,
        owner: _Owner,
        futures: list[asyncio.Future[Any]],
        previous: asyncio.Future[None] | None,
    ) -> None:
        if previous is not None:
            await previous
        if owner.broken:
            return
        try:
            await asyncio.gather(*futures)
            await owner.store.trim_outbox(len(futures))
        except Exception:
            # Left in the outbox: the reload publishes it again (consumers drop repeats by seq).
            log.exception("partition %d: publishing failed; reloading", owner.store.partition)
            owner.broken = True
            self._discard(owner)

    async def drain(self) -> None:
        """Wait until everything committed so far is acknowledged (tests, shutdown)."""
        for owner in list(self._owners.values()):
            if owner.confirming is not None:
                await owner.confirming

    # -- tasks ----------------------------------------------------------------------------
    async def _run_task(self, owner: _Owner, message: Incoming) -> None:
        """Apply a segment task to every customer of the partition, in committed chunks."""
        task: dict[str, Any] = msgpack.unpackb(message.value or b"\x80", raw=False)
        action = task["action"]
        engine = owner.engine
        resume = owner.meta.task
        if resume is not None and resume.get("offset") == message.offset:
            cursor, stats = resume["cursor"], TaskStats(**resume["stats"])
        else:
            cursor, stats = None, TaskStats()
        segments = [
            AppliedSegment(s["id"], s["version"], s["definition"]) for s in task["segments"]
        ]
        removed: list[str] = task.get("remove", [])
        cause = task["cause"]
        for applied in segments:
            engine.set_segment(applied)
        refresh_ids = [a.segment_id for a in segments]
        chunk = self.settings.task_chunk
        while True:
            now = now_ms()
            batch = PartitionBatch(owner.store.keys, owner.meta)
            for applied in segments:
                batch.catalog_set[applied.segment_id] = applied
            ids = await owner.store.customers_after(cursor, chunk)
            profiles = await owner.profiles(ids)
            for profile in profiles:
                if profile is None:
                    continue
                for segment_id in removed:
                    engine.remove_member(batch, profile, segment_id, now, cause, stats)
                engine.evaluate(batch, profile, refresh_ids, now, cause, stats)
                engine.schedule(batch, profile, now)
            metrics.TASK_CUSTOMERS.labels(action).inc(len(ids))
            if len(ids) == chunk:
                cursor = ids[-1]
                batch.task = {"offset": message.offset, "cursor": cursor, "stats": stats.as_dict()}
                await self._commit(owner, batch)
                continue
            for segment_id in removed:
                engine.remove_segment(segment_id)
                batch.catalog_del.append(segment_id)
                batch.drop_members.append(segment_id)
            batch.task = None
            batch.offset = message.offset
            done = {
                "command": "_task_done",
                "job_id": task["job_id"],
                "partition": owner.store.partition,
                "stats": stats.as_dict(),
            }
            batch.outbox.append(
                OutboxRecord(self.settings.control_topic, task["job_id"].encode(), encode(done))
            )
            await self._commit(owner, batch)
            log.info(
                "partition %d: %s %s done: %s",
                owner.store.partition,
                action,
                refresh_ids or removed,
                stats.as_dict(),
            )
            return

    # -- time -----------------------------------------------------------------------------
    async def expire_due(self, partition: int, limit: int = 1000) -> int:
        """Re-evaluate customers whose time-window timer is due; returns how many."""
        owner = await self.owner(partition)
        now = now_ms()
        due = await owner.store.due_customers(now, limit)
        if not due:
            return 0
        async with owner.lock:
            if owner is not self._owners.get(partition):
                return 0
            now = now_ms()
            batch = PartitionBatch(owner.store.keys, owner.meta)
            for customer_id, profile in zip(due, await owner.profiles(due), strict=True):
                if profile is None:
                    batch.timers[customer_id] = None
                    continue
                owner.engine.expire(batch, profile, now)
                if profile.wake is not None and profile.wake <= now:  # never spin on a timer
                    profile.wake = None
                    batch.timers[profile.customer_id] = None
                    batch.profiles[profile.customer_id] = profile
            try:
                await self._commit(owner, batch)
            except FencedError as exc:
                log.warning("%s; reloading partition %d", exc, partition)
                self._discard(owner)
                return 0
            except BaseException:
                self._discard(owner)
                raise
        metrics.EXPIRIES.inc(len(due))
        return len(due)

    async def meta(self, partition: int) -> PartitionMeta:
        return replace((await self.owner(partition)).meta)
