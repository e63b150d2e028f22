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
    RegistryStore,
)

from . import metrics
from .engine import EngineConfig, PartitionEngine, SegmentFailed, TaskStats, compiled_for
from .errors import BadMessage
from .messages import TASK_HEADER, decode_event, encode
from .publisher import Publisher
from .settings import Settings
from .task_auth import verified_task

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
        self,
        store: PartitionStore,
        engine: PartitionEngine,
        meta: PartitionMeta,
        epoch: int,
        cache_size: int,
    ):
        self.store = store
        self.engine = engine
        self.meta = meta
        self.epoch = epoch
        """This owner's claim on the partition; trims of the outbox check it."""
        self.lock = asyncio.Lock()
        self.confirming: asyncio.Future[None] | None = None
        self.acked = 0
        """Outbox records at the head that Kafka acknowledged and no commit trimmed yet."""
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
        self.registry = RegistryStore(redis, self.keyspace)
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
        # Claim the partition first: from now on a previous owner (a zombie, or this worker
        # before a rebalance) can neither commit nor trim the outbox.
        ver, epoch = await store.claim(meta.ver)
        meta = PartitionMeta(ver, meta.offset, meta.seq, meta.task)
        catalog = await store.load_catalog()
        pending = await store.outbox()
        if pending:  # committed before a crash, maybe not published: publish again
            await self.publisher.publish(pending)
            await store.trim_outbox(len(pending), epoch)
            log.info("partition %d: republished %d outbox records", partition, len(pending))
        log.info(
            "partition %d: resuming after offset %d (%d segments applied)",
            partition,
            meta.offset,
            len(catalog),
        )
        engine = PartitionEngine(partition, self.config, catalog)
        return _Owner(store, engine, meta, epoch, self.settings.profile_cache_size)

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
        commit order and count the records Kafka acknowledged, which the next commit trims
        from the head of the outbox (or the idle trim in `expire_due`).
        """
        batch.delivered = owner.acked
        ver = await owner.store.commit(owner.meta.ver, batch)
        owner.acked -= batch.delivered
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
            owner.acked += len(futures)
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
        """Apply a job's task to every customer of the partition, in committed chunks.

        Each chunk commits the cursor with the customers done of the partition's total, so a
        restart resumes and readers see the progress. A segment whose definition does not
        compile here, or whose evaluation raises, fails on this partition without stopping the
        others; the job's segments that use it (`in_segment`) are skipped. A canceled job
        stops between chunks: the customers not reached keep their memberships.
        """
        try:
            task, _job = await verified_task(self.registry, owner.store.partition, message.value)
        except BadMessage as exc:  # not issued by the control plane: no effect but a dead letter
            batch = PartitionBatch(owner.store.keys, owner.meta)
            batch.offset = message.offset
            batch.outbox.append(self._dead_letter(message, exc, now_ms()))
            await self._commit(owner, batch)
            return
        action, job_id = task["action"], task["job_id"]
        engine = owner.engine
        resume = owner.meta.task
        if resume is not None and resume.get("offset") == message.offset:
            progress = dict(resume)
            stats = TaskStats(**resume["stats"])
        else:
            progress = {
                "offset": message.offset,
                "job_id": job_id,
                "cursor": None,
                "done": 0,
                "total": await owner.store.customer_count(),
                "started_at": now_ms(),
                "failed": {},
                "skipped": {},
            }
            stats = TaskStats()
        for name, default in (("job_id", job_id), ("done", 0), ("started_at", now_ms())):
            progress.setdefault(name, default)  # a cursor written by an older version
        if "total" not in progress:
            progress["total"] = await owner.store.customer_count()
        progress["failed"] = dict(progress.get("failed") or {})  # not the committed meta's
        progress["skipped"] = dict(progress.get("skipped") or {})
        failed: dict[str, str] = progress["failed"]
        skipped: dict[str, str] = progress["skipped"]
        segments = [
            AppliedSegment(s["id"], s["version"], s["definition"]) for s in task["segments"]
        ]
        for applied in segments:
            if applied.segment_id in failed:
                continue
            try:
                compiled_for(applied)
            except Exception as exc:  # e.g. written by another version of livesegments
                failed[applied.segment_id] = (
                    f"version {applied.version} does not compile on this worker: {exc}"
                )
        _skip_dependents(segments, failed, skipped)
        usable = [a for a in segments if a.segment_id not in failed and a.segment_id not in skipped]
        for applied in usable:
            engine.set_segment(applied)
        removed: list[str] = task.get("remove", [])
        cause = task["cause"]
        erase = task.get("customer_id") if action == "forget" else None
        refresh_ids = [a.segment_id for a in usable]
        chunk = self.settings.task_chunk
        cancelable = bool(task.get("cancelable"))
        where = f"partition {owner.store.partition}: {action} job {job_id}"
        while True:
            canceled = cancelable and await self.registry.job_canceled(job_id)
            now = now_ms()
            batch = PartitionBatch(owner.store.keys, owner.meta)
            for applied in usable:
                batch.catalog_set[applied.segment_id] = applied
            if isinstance(erase, str):  # forget: one customer, at most on this partition
                ids = [] if progress["done"] else [erase]
            else:
                ids = (
                    [] if canceled else await owner.store.customers_after(progress["cursor"], chunk)
                )
            for profile in await owner.profiles(ids):
                if profile is None:
                    continue
                if isinstance(erase, str):
                    progress["exited_segments"] = engine.erase(batch, profile, now, stats)
                    progress["erased"] = True
                    continue
                for segment_id in removed:
                    engine.remove_member(batch, profile, segment_id, now, cause, stats)
                when = (now, cause)
                _evaluate(engine, batch, profile, segments, refresh_ids, when, stats, progress)
                engine.schedule(batch, profile, now)
            metrics.TASK_CUSTOMERS.labels(action).inc(len(ids))
            progress["done"] += len(ids)
            progress["at"] = now
            progress["stats"] = stats.as_dict()
            if len(ids) == chunk:
                progress["cursor"] = ids[-1]
                batch.task = progress
                await self._commit(owner, batch)
                continue
            if not canceled:
                for segment_id in removed:
                    engine.remove_segment(segment_id)
                    batch.catalog_del.append(segment_id)
                    batch.drop_members.append(segment_id)
            batch.task = None
            batch.offset = message.offset
            done = _report(task, owner.store.partition, progress, stats, canceled, now_ms())
            batch.outbox.append(
                OutboxRecord(self.settings.control_topic, job_id.encode(), encode(done))
            )
            await self._commit(owner, batch)
            for customer_id in batch.erased:
                owner.cache.pop(customer_id, None)
            log.info(
                "%s %s: %s%s%s",
                where,
                "canceled" if canceled else "done",
                stats.as_dict(),
                f"; failed {failed}" if failed else "",
                f"; skipped {skipped}" if skipped else "",
            )
            return

    # -- time -----------------------------------------------------------------------------
    async def trim_idle(self, owner: _Owner) -> None:
        """Trim acknowledged outbox records when no commit came along to do it."""
        if not owner.acked or owner.lock.locked():
            return
        async with owner.lock:
            delivered = owner.acked
            if delivered and await owner.store.trim_outbox(delivered, owner.epoch):
                owner.acked -= delivered

    async def expire_due(self, partition: int, limit: int = 1000) -> int:
        """Re-evaluate customers whose time-window timer is due; returns how many."""
        owner = await self.owner(partition)
        await self.trim_idle(owner)
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

    def applied_offset(self, partition: int) -> int | None:
        """The last offset applied on a partition this worker has loaded, else None."""
        owner = self._owners.get(partition)
        return owner.meta.offset if owner is not None else None

    async def meta(self, partition: int) -> PartitionMeta:
        return replace((await self.owner(partition)).meta)


# -- task helpers -------------------------------------------------------------------------
def _evaluate(
    engine: PartitionEngine,
    batch: PartitionBatch,
    profile: Profile,
    segments: list[AppliedSegment],
    refresh_ids: list[str],
    when: tuple[int, str],
    stats: TaskStats,
    progress: dict[str, Any],
) -> None:
    """Evaluate the task's segments for one customer. A segment that raises fails on this
    partition: it leaves `refresh_ids` with its dependents, and the others go on (what was
    recorded before the error is a correct evaluation of other segments)."""
    now, cause = when
    failed: dict[str, str] = progress["failed"]
    skipped: dict[str, str] = progress["skipped"]
    while refresh_ids:
        try:
            engine.evaluate(batch, profile, refresh_ids, now, cause, stats)
            return
        except SegmentFailed as exc:
            if exc.segment_id not in refresh_ids:
                raise  # a dependent outside the task fails as it would for an event
            log.warning("%s (customer %r)", exc, profile.customer_id)
            failed[exc.segment_id] = (
                f"evaluating customer {profile.customer_id!r} raised "
                f"{type(exc.cause).__name__}: {exc.cause}"
            )
            _skip_dependents(segments, failed, skipped)
            refresh_ids[:] = [s for s in refresh_ids if s not in failed and s not in skipped]


def _skip_dependents(
    segments: Sequence[AppliedSegment], failed: dict[str, str], skipped: dict[str, str]
) -> None:
    """Skip the task's segments that use (`in_segment`) a failed or skipped one.

    `segments` come in dependency order (the control agent sorts them), so one pass sees
    every dependency before its dependents."""
    for applied in segments:
        sid = applied.segment_id
        if sid in failed or sid in skipped:
            continue
        uses = compiled_for(applied).segments
        for dep in sorted(uses):
            if dep in failed or dep in skipped:
                what = "failed" if dep in failed else "was skipped"
                skipped[sid] = f"not evaluated: it uses segment {dep!r}, whose task {what}"
                break


def _report(
    task: dict[str, Any],
    partition: int,
    progress: dict[str, Any],
    stats: TaskStats,
    canceled: bool,
    ended_at: int,
) -> dict[str, Any]:
    """The `_task_done` report: totals (as before), and each segment's outcome and figures."""
    failed: dict[str, str] = progress["failed"]
    skipped: dict[str, str] = progress["skipped"]
    outcomes: dict[str, dict[str, Any]] = {}
    ids = [s["id"] for s in task["segments"]] + list(task.get("remove", []))
    for sid in ids:
        if sid in failed:
            status, error = "failed", failed[sid]
        elif sid in skipped:
            status, error = "skipped", skipped[sid]
        elif canceled:
            status, error = "canceled", None
        else:
            status, error = "done", None
        outcomes[sid] = {"status": status, "error": error, **stats.of(sid)}
    return {
        "command": "_task_done",
        "job_id": task["job_id"],
        "partition": partition,
        "stats": {k: getattr(stats, k) for k in ("evaluated", "entered", "exited")},
        "segments": outcomes,
        "started_at": progress["started_at"],
        "ended_at": ended_at,
        "done": progress["done"],
        "total": progress["total"],
        "canceled": canceled,
        "erased": bool(progress.get("erased")),
        "exited_segments": list(progress.get("exited_segments") or []),
    }
