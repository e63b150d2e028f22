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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
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
from state.turn import turn_client
from state.warmup import WarmupReader

from .. import metrics
from ..clock import now_ms
from ..errors import BadMessage
from ..failures import InfrastructureError, StateBehindError, describe, is_infrastructure
from ..messages import (
    DeadLetter,
    Event,
    Incoming,
    SegmentOutcome,
    TaskMessage,
    TaskReport,
    decode_event,
    safe_text,
)
from ..publisher import Publisher
from ..settings import Settings
from ..shard import take_over
from . import hops
from .collector import ProfileFreezer
from .machine import EngineConfig, PartitionEngine, TaskStats, compiled_for
from .placement import WRONG_PARTITION, PlacementCheck
from .stages import STAGES
from .task_auth import verified_task
from .tasks import evaluate_chunk, skip_dependents

__all__ = ["EXPIRY_CHUNK", "PartitionRuntime"]

log = logging.getLogger(__name__)


class _Owner:
    """A partition this worker owns: its store, engine, committed meta and profile cache.

    The cache holds profiles exactly as committed (the owner is their only writer). Any
    failure while applying a batch discards the whole owner, cache included, so a profile
    changed by a batch that did not commit is never reused.

    A new owner's cache is warmed in the background (`PartitionRuntime._warm`) with profiles
    read from Redis. Such a read can race a commit: the commit may land after the read was sent
    and its profile be evicted again before the read's result arrives. So while a warm-up read
    is in flight the owner notes every customer committed or erased (`_fence`), and the read's
    profiles of those customers are dropped (`warmed`): the cache never holds a profile older
    than the last commit of its customer.
    """

    def __init__(
        self,
        store: PartitionStore,
        engine: PartitionEngine,
        meta: PartitionMeta,
        epoch: int,
        cache_size: int,
        freezer: ProfileFreezer | None = None,
    ):
        self.store = store
        self.engine = engine
        self.meta = meta
        self.epoch = epoch
        """This owner's claim on the partition; trims of the outbox check it."""
        self.lock = asyncio.Lock()
        self.confirming: asyncio.Future[None] | None = None
        self.acked = 0
        """Outbox entries (commits) at the head that Kafka acknowledged and no commit trimmed
        yet."""
        self.broken = False
        self.cache: OrderedDict[str, Profile] = OrderedDict()
        self.cache_size = cache_size
        self.freezer = freezer
        self.events_processed: Any = None
        """This partition's events counter, once looked up (not a label lookup per batch)."""
        self.warming: asyncio.Future[None] | None = None
        """The background warm-up of the cache, while it runs."""
        self._fence: set[str] | None = None
        """While a warm-up read is in flight: the customers committed or erased since it was
        sent (their profiles in the read may be older than the cache's or Redis')."""
        self.no_timer_before: int | None = None
        """No timer of the partition is due before this time (ms), as far as this owner knows:
        the earliest timer when the last poll found none due, lowered by every commit's timers
        since (`timers_committed`); None: unknown, the next poll reads Redis."""
        self._timers_low = _NO_TIMER
        """The earliest timer committed since the last poll's read was sent."""

    async def profiles(self, customer_ids: Sequence[str]) -> list[Profile | None]:
        """Profiles from the cache, the rest from Redis in one MGET.

        The cached ones are taken before the read: a backfill prefetches its next chunk while
        the current one commits, and that commit's `remember` may evict them meanwhile."""
        get = self.cache.get
        found = [get(c) for c in customer_ids]
        missing = [c for c, p in zip(customer_ids, found, strict=True) if p is None]
        STAGES.add("profile_misses", len(missing) / 1000)  # a count, not seconds
        if not missing:
            return found
        loaded = dict(zip(missing, await self.store.load_profiles(missing), strict=True))
        return [p if p is not None else loaded[c] for c, p in zip(customer_ids, found, strict=True)]

    def remember(self, profiles: Iterable[Profile]) -> None:
        """After a commit: keep the committed profiles, evicting the least recently used."""
        cache = self.cache
        fence = self._fence
        written = 0
        for profile in profiles:
            customer_id = profile.customer_id
            cache[customer_id] = profile
            cache.move_to_end(customer_id)
            if fence is not None:
                fence.add(customer_id)
            written += 1
        if self.freezer is not None and written:
            self.freezer.took(written)  # new and rewritten ones: both leave young objects
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    def drop(self, customer_ids: Iterable[str]) -> None:
        """After a commit that erased customers: their profiles are gone."""
        fence = self._fence
        for customer_id in customer_ids:
            self.cache.pop(customer_id, None)
            if fence is not None:
                fence.add(customer_id)

    def fence_open(self) -> None:
        """A warm-up read is about to be sent: note the commits from now on."""
        self._fence = set()

    def warmed(self, profiles: Sequence[Profile]) -> int:
        """A warm-up read's profiles (read after `fence_open`): cache those not cached and not
        committed or erased since, while there is room (never evicting), as the least recently
        used. Closes the fence; returns how many were cached."""
        fence, self._fence = self._fence, None
        if fence is None:
            return 0  # the fence was closed meanwhile (the warm-up stopped): nothing is known
        cache = self.cache
        taken = 0
        for profile in profiles:
            if len(cache) >= self.cache_size:
                break
            customer_id = profile.customer_id
            if customer_id in fence or customer_id in cache:
                continue
            cache[customer_id] = profile
            cache.move_to_end(customer_id, last=False)
            taken += 1
        if self.freezer is not None and taken:
            self.freezer.took(taken)
        return taken

    def timers_committed(self, timers: Iterable[int | None]) -> None:
        """After a commit: its timers (None: a timer removed) lower what is known."""
        low = min((at for at in timers if at is not None), default=_NO_TIMER)
        if low < self._timers_low:
            self._timers_low = low
        known = self.no_timer_before
        if known is not None and low < known:
            self.no_timer_before = low

    def timers_unknown(self) -> None:
        """A poll's read is about to be sent: the commits from now on may be missing from it."""
        self.no_timer_before = None
        self._timers_low = _NO_TIMER

    def timers_lost(self) -> None:
        """A commit with timers failed: Redis may hold some of them (a script stopped by an
        error keeps the writes it made, a lost reply says nothing), so nothing is known until a
        poll reads again, nor from a poll's read in flight."""
        self.no_timer_before = None
        self._timers_low = 0

    def timers_read(self, earliest: int | None, reread_by: int | None = None) -> None:
        """The poll found nothing due and then read the earliest timer (None: there is none):
        no timer is due before it, nor before any committed since the poll's read was sent;
        `reread_by`: read again from then on all the same (`TIMERS_REREAD_MS`)."""
        known = min(_NO_TIMER if earliest is None else earliest, self._timers_low)
        self.no_timer_before = known if reread_by is None else min(known, reread_by)

    def fence_close(self) -> None:
        """No warm-up read in flight any more."""
        self._fence = None

    def stop_warming(self) -> None:
        """Revoked or discarded: the warm-up stops (its read in flight is dropped)."""
        self._fence = None
        if self.warming is not None:
            self.warming.cancel()
            self.warming = None


_NO_TIMER = 2**63
"""Later than any timer (ms): a partition without any."""

TIMERS_REREAD_MS = 5_000
"""The longest an expiry poll trusts what it knows of the partition's timers before it reads
Redis again: the partition's commits are the only writers, but a timer written otherwise (a
restore, an operator's repair) still fires within this much of being due."""


CommittedOffset = Callable[[int], Awaitable["int | None"]]
"""The next offset the consumer group will read on an events partition (None: none)."""

_RECHECK_REFUSED_S = 1.0

EXPIRY_CHUNK = 100
"""Due customers expired per commit. The partition's lock is held meanwhile, so its events wait;
in between chunks they go. A chunk of one customer held it 15-48 ms on a busy machine (the
Redis round trips), so a chunk of 1,000 due at once (after a restart) would hold it far longer."""


class PartitionRuntime:
    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        publisher: Publisher,
        committed_offset: CommittedOffset | None = None,
        placement: PlacementCheck | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self._turn_redis = turn_client(redis) if settings.redis_turn_pipeline else redis
        """The partitions' client: their MGETs and commits of one loop turn share a pipeline."""
        self.publisher = publisher
        self.keyspace = KeySpace(settings.key_prefix)
        self.registry = RegistryStore(redis, self.keyspace)
        self.config = EngineConfig(
            settings.membership_topic, settings.history_max_events, settings.history_max_age_ms
        )
        self._owners: dict[int, _Owner] = {}
        self._loading: dict[int, asyncio.Lock] = {}
        self._committed_offset = committed_offset
        self._refused: dict[int, tuple[float, StateBehindError]] = {}
        """Partitions whose state is behind Kafka: when last checked, and why refused."""
        self.freezer = ProfileFreezer(settings.freeze_every)
        self._warm_turn = asyncio.Lock()
        """One warm-up chunk in flight per worker, whatever the partitions warming."""
        self.placement = placement
        """Checks that a new customer came on their partition (`wrong_partition`); None: off."""

    # -- ownership ------------------------------------------------------------------------
    def forget(self, partitions: Sequence[int]) -> None:
        """Drop cached state of revoked partitions; the next owner reloads from Redis."""
        for partition in partitions:
            owner = self._owners.pop(partition, None)
            if owner is not None:
                owner.stop_warming()

    def warming(self) -> list[int]:
        """The owned partitions whose profile cache is still being warmed (`_warm`): their
        first events after an assignment may wait for Redis reads, and the warm-up takes up to
        half the event loop meanwhile."""
        return sorted(p for p, owner in self._owners.items() if owner.warming is not None)

    def refused(self, partition: int) -> bool:
        """True while a partition is refused because its state went backwards."""
        return partition in self._refused

    async def owner(self, partition: int) -> _Owner:
        owner = self._owners.get(partition)
        if owner is not None:
            return owner
        refused = self._refused.get(partition)
        if refused is not None and time.monotonic() - refused[0] < _RECHECK_REFUSED_S:
            raise refused[1]
        lock = self._loading.setdefault(partition, asyncio.Lock())
        async with lock:
            owner = self._owners.get(partition)
            if owner is None:
                owner = await self._load(partition)
                self._owners[partition] = owner
                if self.settings.profile_warmup_chunk and owner.cache_size:
                    owner.warming = asyncio.ensure_future(self._warm(owner))
        return owner

    async def _warm(self, owner: _Owner) -> None:
        """Fill a new owner's profile cache from Redis, as Kafka Streams restores a state store
        before it processes: the partition's customers in first-seen order, a chunk at a time,
        until the cache is full, every customer is read, or the owner is revoked or discarded.
        One chunk in flight per worker; after each, a pause as long as its decoding took, so
        the warm-up takes at most half the loop's time (its reads' round trips cost none).
        Reads go on the plain client, not the commit pipeline. A failed read stops the
        warm-up only: the cache then fills as events come."""
        partition = owner.store.partition
        reader = WarmupReader(self.redis, owner.store.keys)
        chunk = self.settings.profile_warmup_chunk
        cached = 0
        started = time.monotonic()
        try:
            # one listing (a pipeline of the ordinal index's buckets), then a read per chunk
            listed = await reader.ids(owner.cache_size)
            for at in range(0, len(listed), chunk):
                if self._owners.get(partition) is not owner or len(owner.cache) >= owner.cache_size:
                    break
                async with self._warm_turn:
                    ids = [c for c in listed[at : at + chunk] if c not in owner.cache]
                    owner.fence_open()
                    values = await reader.read(ids)
                    if self._owners.get(partition) is not owner:
                        break
                    clock = time.monotonic()
                    cached += owner.warmed(reader.decode(ids, values))
                    spent = time.monotonic() - clock
                    STAGES.add("warm_chunk", spent)
                await asyncio.sleep(spent)
        except Exception as exc:
            log.warning(
                "partition %d: warming the profile cache stopped after %d profiles (%s); it "
                "fills as events come",
                partition,
                cached,
                safe_text(describe(exc), 500),
            )
        else:
            log.info(
                "partition %d: profile cache warmed with %d profiles in %.1f s (%d cached)",
                partition,
                cached,
                time.monotonic() - started,
                len(owner.cache),
            )
        finally:
            if owner.warming is asyncio.current_task():
                owner.warming = None
            owner.fence_close()

    async def _load(self, partition: int) -> _Owner:
        store = PartitionStore(self._turn_redis, self.keyspace, partition)
        meta = await store.load_meta()
        await self._check_not_behind(partition, meta.offset)
        # From now on a previous owner (a zombie, or this worker before a rebalance) can
        # neither commit nor trim the outbox.
        ver, epoch = await take_over(store, meta.ver, self.publisher, f"partition {partition}")
        meta = PartitionMeta(ver, meta.offset, meta.seq, meta.task)
        catalog = await store.load_catalog()
        log.info(
            "partition %d: resuming after offset %d (%d segments applied)",
            partition,
            meta.offset,
            len(catalog),
        )
        engine = PartitionEngine(partition, self.config, catalog)
        return _Owner(store, engine, meta, epoch, self.settings.profile_cache_size, self.freezer)

    async def _check_not_behind(self, partition: int, state_offset: int) -> None:
        """Refuse a partition whose state ends before what the group committed in Kafka.

        Kafka's committed offset never passes what the state applied (`agents.events`), so
        a state behind it lost applied events (Redis flushed, or a stale replica promoted).
        """
        if self._committed_offset is None:
            return
        committed = await self._committed_offset(partition)
        if committed is not None and committed > state_offset + 1:
            error = StateBehindError(partition, state_offset, committed)
            if partition not in self._refused:
                log.error("%s", error)
            self._refused[partition] = (time.monotonic(), error)
            raise error
        if self._refused.pop(partition, None) is not None:
            log.info("partition %d: state no longer behind Kafka; processing again", partition)

    def _discard(self, owner: _Owner) -> None:
        owner.stop_warming()
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
                hops.mark(partition, "locked")
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
        """Apply a run of events; a message that makes the run fail is isolated and dead-lettered.

        Any failure that is not infrastructure (`failures.is_infrastructure`) while applying,
        encoding or committing a run is the fault of one or more of its messages: the run is
        split in halves, each applied on freshly loaded state (cached profiles may hold the
        failed attempt's changes), down to single messages, which are dead-lettered
        (`unprocessable`). Infrastructure failures propagate: the caller retries the batch.
        """
        messages = [m for m in messages if m.offset > owner.meta.offset]
        if not messages:
            return
        try:
            await self._apply_run(owner, messages)
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            owner.cache.clear()
            if len(messages) == 1:
                await self._commit_dead_letter(owner, messages[0], "unprocessable", describe(exc))
                return
            log.warning(
                "%s[%d] events %d..%d failed (%s: %s); isolating the message at fault",
                self.settings.events_topic,
                owner.store.partition,
                messages[0].offset,
                messages[-1].offset,
                type(exc).__name__,
                safe_text(str(exc), 300),
            )
            middle = len(messages) // 2
            await self._apply_events(owner, messages[:middle])
            await self._apply_events(owner, messages[middle:])

    async def _commit_dead_letter(
        self, owner: _Owner, message: Incoming, code: str, reason: str
    ) -> None:
        """Commit `message` as a dead letter on its own (its offset, nothing else)."""
        now = now_ms()
        batch = PartitionBatch(owner.store.keys, owner.meta)
        letter = self._letter(message, code, reason, now)
        batch.outbox.append(letter.to_record(self.settings.dlq_topic))
        batch.offset = message.offset
        await self._commit(owner, batch)
        self._dead_lettered([letter])

    def _decode(self, message: Incoming, now: int) -> Event | DeadLetter:
        settings = self.settings
        try:
            return decode_event(
                message.value,
                message.key,
                now_ms=now,
                max_bytes=settings.max_message_bytes,
                max_future_ms=settings.max_future_ms,
            )
        except BadMessage as exc:
            return self._letter(message, exc.code, exc.message, now)
        except Exception as exc:  # a decoder fault not classified at the edge yet
            if is_infrastructure(exc):
                raise
            return self._letter(message, "unprocessable", describe(exc), now)

    async def _apply_run(self, owner: _Owner, messages: Sequence[Incoming]) -> None:
        clock = time.monotonic()
        now = now_ms()
        batch = PartitionBatch(owner.store.keys, owner.meta)
        decoded = []
        letters = []
        for message in messages:
            event = self._decode(message, now)
            if isinstance(event, DeadLetter):
                batch.outbox.append(event.to_record(self.settings.dlq_topic))
                letters.append(event)
                continue
            decoded.append(event)
        ids = list(dict.fromkeys(e.customer_id for e in decoded))
        STAGES.add("decode", time.monotonic() - clock)
        clock = time.monotonic()
        loaded = await owner.profiles(ids)
        STAGES.add("profile_load", time.monotonic() - clock)
        hops.mark(owner.store.partition, "loaded")
        clock = time.monotonic()
        profiles: dict[str, Profile] = {}
        for customer_id, profile in zip(ids, loaded, strict=True):
            if profile is None:
                profile = Profile(customer_id)
                batch.new_customers.append(customer_id)
            profiles[customer_id] = profile
        placement = self.placement
        if batch.new_customers and placement is not None:
            decoded = self._refuse_misplaced(
                placement, owner.store.partition, batch, messages, decoded, letters, now
            )
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
        STAGES.add("apply", time.monotonic() - clock)
        hops.mark(owner.store.partition, "applied")
        await self._commit(owner, batch, hops.trace_of(owner.store.partition))
        self._dead_lettered(letters)
        counter = owner.events_processed
        if counter is None:
            counter = owner.events_processed = metrics.EVENTS_PROCESSED.labels(
                str(owner.store.partition)
            )
        counter.inc(applied)

    def _refuse_misplaced(
        self,
        placement: PlacementCheck,
        partition: int,
        batch: PartitionBatch,
        messages: Sequence[Incoming],
        decoded: list[Event],
        letters: list[DeadLetter],
        now: int,
    ) -> list[Event]:
        """Dead-letter (`wrong_partition`) the events of new customers whose key belongs on
        another partition (`placement`); return the events left to apply."""
        refused = placement.refused(batch.new_customers, partition)
        if not refused:
            return decoded
        batch.new_customers = [c for c in batch.new_customers if c not in refused]
        lettered = {letter.offset for letter in letters}
        sources = [m for m in messages if m.offset not in lettered]  # in step with `decoded`
        kept = []
        for message, event in zip(sources, decoded, strict=True):
            reason = refused.get(event.customer_id)
            if reason is None:
                kept.append(event)
                continue
            letter = self._letter(message, WRONG_PARTITION, reason, now)
            batch.outbox.append(letter.to_record(self.settings.dlq_topic))
            letters.append(letter)
        return kept

    def _letter(self, message: Incoming, code: str, reason: str, now: int) -> DeadLetter:
        return DeadLetter(
            self.settings.events_topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            code,
            reason,
            now,
        )

    @staticmethod
    def _dead_lettered(letters: Sequence[DeadLetter]) -> None:
        """Log and count dead letters once their commit went through."""
        for letter in letters:
            log.warning(
                "%s[%d]@%d: dead letter (%s): %s",
                letter.topic,
                letter.partition,
                letter.offset,
                letter.code,
                safe_text(letter.reason, 500),
            )
            metrics.DLQ_MESSAGES.labels(letter.code).inc()

    async def _commit(
        self, owner: _Owner, batch: PartitionBatch, trace: hops.BatchTrace | None = None
    ) -> None:
        """Commit, hand the outbox to the producer, and confirm it in the background.

        The next batch does not wait for Kafka's acknowledgement; confirmations run in
        commit order and count the entries Kafka acknowledged, which the next commit trims
        from the head of the outbox (or the idle trim in `expire_due`).
        """
        batch.delivered = owner.acked
        clock = time.monotonic()
        try:
            ver = await owner.store.commit(owner.meta.ver, batch)
        except BaseException:
            if batch.timers:
                owner.timers_lost()
            raise
        STAGES.add("commit", time.monotonic() - clock)
        if trace is not None:
            trace.mark("committed")
        clock = time.monotonic()
        owner.acked -= batch.delivered
        owner.meta = PartitionMeta(ver, batch.offset, batch.seq, batch.task)
        owner.remember(batch.profiles.values())
        if batch.timers:
            owner.timers_committed(batch.timers.values())
        owner.engine.flush_metrics()
        if batch.outbox:
            try:
                futures = await self.publisher.send(batch.outbox)
            except Exception as exc:
                # Committed but not handed to the producer: only a reload publishes the outbox
                # in order (later confirmations trim from its head), whatever the error was.
                owner.broken = True
                self._discard(owner)
                raise InfrastructureError(
                    f"partition {owner.store.partition}: publishing committed records failed: "
                    f"{describe(exc)}"
                ) from exc
            STAGES.add("publish_send", time.monotonic() - clock)
            if trace is not None:
                trace.mark("sent")
            owner.confirming = asyncio.ensure_future(
                self._confirm(owner, batch.outbox, futures, owner.confirming, trace)
            )
        elif trace is not None:
            trace.finish()

    async def _confirm(
        self,
        owner: _Owner,
        records: Sequence[OutboxRecord],
        futures: list[asyncio.Future[Any]],
        previous: asyncio.Future[None] | None,
        trace: hops.BatchTrace | None = None,
    ) -> None:
        """Count the commit's outbox entry once Kafka acknowledged its records; one it can never
        accept is dropped (logged and counted by the publisher) and counts as done, so it cannot
        hold the outbox forever."""
        if previous is not None:
            await previous
        if owner.broken:
            return
        try:
            clock = time.monotonic()
            await self.publisher.settle(records, futures)
            STAGES.add("publish_ack", time.monotonic() - clock)
            if trace is not None:
                trace.mark("acked")
                trace.finish()
            owner.acked += 1  # the commit's one outbox entry
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
            await self._commit_dead_letter(owner, message, exc.code, exc.message)
            return
        job_id = task.job_id
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
        segments = list(task.segments)
        for applied in segments:
            if applied.segment_id in failed:
                continue
            try:
                compiled_for(applied)
            except Exception as exc:  # e.g. written by another version of livesegments
                failed[applied.segment_id] = (
                    f"version {applied.version} does not compile on this worker: {exc}"
                )
        skip_dependents(segments, failed, skipped)
        usable = [a for a in segments if a.segment_id not in failed and a.segment_id not in skipped]
        for applied in usable:
            engine.set_segment(applied)
        refresh_ids = [a.segment_id for a in usable]
        await self._task_chunks(owner, message, task, progress, stats, usable, refresh_ids)

    async def _task_chunks(
        self,
        owner: _Owner,
        message: Incoming,
        task: TaskMessage,
        progress: dict[str, Any],
        stats: TaskStats,
        usable: list[AppliedSegment],
        refresh_ids: list[str],
    ) -> None:
        """The chunks of `_run_task`: the next chunk is read from Redis, and the previous one
        committed, while this one is evaluated (other customers, so nothing those write; the
        commits stay in order), and only the task's segments are asked for a customer's next
        timer."""
        engine = owner.engine
        action, job_id = task.action, task.job_id
        segments = list(task.segments)
        failed: dict[str, str] = progress["failed"]
        skipped: dict[str, str] = progress["skipped"]
        removed = task.remove
        cause = task.cause
        erase = task.customer_id if action == "forget" else None
        chunk = self.settings.task_chunk
        where = f"partition {owner.store.partition}: {action} job {job_id}"

        async def fetch(after: str | None) -> tuple[list[str], list[Profile | None]]:
            ids = await owner.store.customers_after(after, chunk)
            return ids, await owner.profiles(ids)

        prefetched: asyncio.Future[tuple[list[str], list[Profile | None]]] | None = None
        committing: asyncio.Future[None] | None = None
        """The previous chunk's commit, in flight while this chunk is evaluated."""
        previous: PartitionBatch | None = None
        try:
            while True:
                canceled = task.cancelable and await self.registry.job_canceled(job_id)
                now = now_ms()
                meta = owner.meta
                if previous is not None:  # what the commit in flight makes the meta
                    meta = PartitionMeta(meta.ver, previous.offset, previous.seq, previous.task)
                batch = PartitionBatch(owner.store.keys, meta)
                for applied in usable:
                    batch.catalog_set[applied.segment_id] = applied
                if isinstance(erase, str):  # forget: one customer, at most on this partition
                    ids = [] if progress["done"] else [erase]
                    loaded = await owner.profiles(ids)
                elif canceled:
                    ids, loaded = [], []
                else:
                    if prefetched is None:
                        prefetched = asyncio.ensure_future(fetch(progress["cursor"]))
                    ids, loaded = await prefetched
                    prefetched = None
                    if len(ids) == chunk:
                        prefetched = asyncio.ensure_future(fetch(ids[-1]))
                        await asyncio.sleep(0)  # let it send its request
                if isinstance(erase, str):
                    for profile in loaded:
                        if profile is not None:
                            progress["exited_segments"] = engine.erase(batch, profile, now, stats)
                            progress["erased"] = True
                else:
                    evaluate_chunk(
                        engine,
                        batch,
                        loaded,
                        (now, cause),
                        removed,
                        segments,
                        refresh_ids,
                        stats,
                        progress,
                    )
                metrics.TASK_CUSTOMERS.labels(action).inc(len(ids))
                progress["done"] += len(ids)
                progress["at"] = now
                progress["stats"] = stats.as_dict()
                if len(ids) == chunk:
                    progress["cursor"] = ids[-1]
                    batch.task = {**progress, "failed": dict(failed), "skipped": dict(skipped)}
                    if committing is not None:
                        await committing  # commits stay in order
                    committing = asyncio.ensure_future(self._commit(owner, batch))
                    previous = batch
                    continue
                if committing is not None:
                    await committing
                    committing = None
                if not canceled:
                    for segment_id in removed:
                        engine.remove_segment(segment_id)
                        batch.catalog_del.append(segment_id)
                        batch.drop_members.append(segment_id)
                batch.task = None
                batch.offset = message.offset
                done = _report(task, owner.store.partition, progress, stats, canceled, now_ms())
                batch.outbox.append(
                    OutboxRecord(self.settings.control_topic, job_id.encode(), done.encode())
                )
                await self._commit(owner, batch)
                owner.drop(batch.erased)
                log.info(
                    "%s %s: %s%s%s",
                    where,
                    "canceled" if canceled else "done",
                    stats.as_dict(),
                    f"; failed {failed}" if failed else "",
                    f"; skipped {skipped}" if skipped else "",
                )
                return
        finally:
            if prefetched is not None:  # left unused by an error
                prefetched.cancel()
            if committing is not None and not committing.done():  # an error meanwhile:
                await asyncio.wait([committing])  # a commit is whole; let it end first
            if committing is not None and not committing.cancelled():
                committing.exception()  # retrieved: the error raised here is the one to see

    # -- time -----------------------------------------------------------------------------
    async def trim_idle(self, owner: _Owner) -> None:
        """Trim acknowledged outbox records when no commit came along to do it."""
        if not owner.acked or owner.lock.locked():
            return
        async with owner.lock:
            delivered = owner.acked
            if delivered and await owner.store.trim_outbox(delivered, owner.epoch):
                owner.acked -= delivered

    async def expire_due(self, partition: int, limit: int = EXPIRY_CHUNK) -> int:
        """Re-evaluate customers whose time-window timer is due; returns how many.

        Redis is read only once the earliest timer this owner knows of is due: a poll that
        finds none due reads the earliest timer (`_Owner.timers_read`), and every commit's
        timers lower it, and it reads again at least every `TIMERS_REREAD_MS`; at 1,000
        events/s the eight partitions' polls were 40 Redis round trips a second that found
        nothing (`docs/performance.md`, session 13)."""
        owner = await self.owner(partition)
        await self.trim_idle(owner)
        now = now_ms()
        known = owner.no_timer_before
        if known is not None and now < known:
            return 0
        owner.timers_unknown()
        due = await owner.store.due_customers(now, limit)
        if not due:
            earliest = await owner.store.earliest_timer()
            owner.timers_read(earliest, now + TIMERS_REREAD_MS)
            return 0
        async with owner.lock:
            if owner is not self._owners.get(partition):
                return 0
            clock = time.monotonic()
            try:
                await self._expire(owner, due)
            except FencedError as exc:
                log.warning("%s; reloading partition %d", exc, partition)
                self._discard(owner)
                return 0
            except Exception as exc:
                if is_infrastructure(exc):
                    self._discard(owner)
                    raise
                owner.cache.clear()  # cached profiles may hold the failed attempt's changes
                await self._expire_one_by_one(owner, due)
            except BaseException:
                self._discard(owner)
                raise
            STAGES.add("expiry_locked", time.monotonic() - clock)
        metrics.EXPIRIES.inc(len(due))
        STAGES.add("expiry_customers", len(due) / 1000)
        return len(due)

    async def _expire(self, owner: _Owner, due: Sequence[str]) -> None:
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
        await self._commit(owner, batch)

    async def _expire_one_by_one(self, owner: _Owner, due: Sequence[str]) -> None:
        """After a failed expiry batch: each customer alone; one that still fails loses its
        timer (logged), so it cannot block the partition's other timers forever. Its next
        event evaluates it again."""
        for customer_id in due:
            try:
                await self._expire(owner, [customer_id])
            except Exception as exc:
                if is_infrastructure(exc):
                    self._discard(owner)
                    raise
                owner.cache.clear()
                log.error(
                    "partition %d: expiry of customer %r failed (%s); its timer is dropped",
                    owner.store.partition,
                    safe_text(customer_id, 200),
                    safe_text(describe(exc), 500),
                )
                batch = PartitionBatch(owner.store.keys, owner.meta)
                batch.timers[customer_id] = None
                await self._commit(owner, batch)

    def applied_offset(self, partition: int) -> int | None:
        """The last offset applied on a partition this worker has loaded, else None."""
        owner = self._owners.get(partition)
        return owner.meta.offset if owner is not None else None

    async def meta(self, partition: int) -> PartitionMeta:
        return replace((await self.owner(partition)).meta)


# -- task helpers -------------------------------------------------------------------------
def _report(
    task: TaskMessage,
    partition: int,
    progress: dict[str, Any],
    stats: TaskStats,
    canceled: bool,
    ended_at: int,
) -> TaskReport:
    """The `_task_done` report: totals, and each segment's outcome and figures."""
    failed: dict[str, str] = progress["failed"]
    skipped: dict[str, str] = progress["skipped"]
    outcomes: dict[str, SegmentOutcome] = {}
    for sid in [s.segment_id for s in task.segments] + list(task.remove):
        if sid in failed:
            status, error = "failed", failed[sid]
        elif sid in skipped:
            status, error = "skipped", skipped[sid]
        elif canceled:
            status, error = "canceled", None
        else:
            status, error = "done", None
        outcomes[sid] = SegmentOutcome(status, error, **stats.of(sid))
    return TaskReport(
        task.job_id,
        partition,
        {k: getattr(stats, k) for k in ("evaluated", "entered", "exited")},
        outcomes,
        progress["started_at"],
        ended_at,
        progress["done"],
        progress["total"],
        canceled,
        bool(progress.get("erased")) if task.action == "forget" else None,
        tuple(progress.get("exited_segments") or ()),
    )
