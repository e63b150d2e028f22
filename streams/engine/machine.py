"""The state machine of one events partition, without I/O.

It applies events, time-window expiries and segment tasks to the profiles loaded for a batch,
records every write in a `PartitionBatch`, and never evaluates a segment that the change
cannot affect: an attribute change re-evaluates the active dynamic segments that read that
attribute, an event the segments that aggregate that event type, and a membership change the
dynamic segments that use the changed segment through `in_segment`, in dependency order.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from segment_rules import (
    NO_LIMITS,
    AppendEffect,
    CompiledSegment,
    ProfileView,
    compile_segment,
    parse_definition,
)
from state import AppliedSegment, OutboxRecord, PartitionBatch, Profile, ProfileSnapshot

from .. import metrics
from ..messages import Event, encode_change_packed, pack_value

__all__ = [
    "EngineConfig",
    "PartitionEngine",
    "SegmentFailed",
    "TaskStats",
    "compiled_for",
]

_COMPILED: dict[str, CompiledSegment] = {}
Evaluator = Callable[[ProfileView, int], bool]
PropTest = Callable[[Mapping[str, object]], bool]


def compiled_for(applied: AppliedSegment) -> CompiledSegment:
    """Compile each distinct definition once for the whole worker.

    Keyed by the definition itself, not (id, version): a deleted segment's id can come back
    with another definition and version 1 again.
    """
    key = json.dumps(applied.definition, sort_keys=True)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = compile_segment(parse_definition(applied.definition, NO_LIMITS))
        _COMPILED[key] = compiled
    return compiled


@dataclass(frozen=True)
class EngineConfig:
    membership_topic: str
    history_max_events: int
    history_max_age_ms: int


class SegmentFailed(Exception):
    """Evaluating one segment raised; `segment_id` names it, the cause is chained."""

    def __init__(self, segment_id: str, cause: BaseException) -> None:
        super().__init__(f"segment {segment_id!r} failed: {type(cause).__name__}: {cause}")
        self.segment_id = segment_id
        self.cause = cause


_FIGURES = ("evaluated", "entered", "exited")
_FLUSH_EVALUATIONS = 4096
"""Evaluations and changes counted before they are added to the metrics between two flushes
(the runtime flushes after each commit; a batch of 500 events makes ~7,000 evaluations in the
benchmark: 256 flushed ~27 times a batch, each flush one locked `inc` per label)."""


@dataclass
class TaskStats:
    """What a task did on one partition: totals, and the same figures per segment."""

    evaluated: int = 0
    entered: int = 0
    exited: int = 0
    segments: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, segment_id: str, figure: str) -> None:
        if figure == "evaluated":
            self.evaluated += 1
        elif figure == "entered":
            self.entered += 1
        else:
            self.exited += 1
        per = self.segments.get(segment_id)
        if per is None:
            per = self.segments[segment_id] = dict.fromkeys(_FIGURES, 0)
        per[figure] += 1

    def add_evaluated(self, segment_ids: Iterable[str], customers: int) -> None:
        """`count(sid, "evaluated")` for each of `segment_ids`, `customers` times over."""
        for segment_id in segment_ids:
            self.evaluated += customers
            per = self.segments.get(segment_id)
            if per is None:
                per = self.segments[segment_id] = dict.fromkeys(_FIGURES, 0)
            per["evaluated"] += customers

    def of(self, segment_id: str) -> dict[str, int]:
        return dict(self.segments.get(segment_id) or dict.fromkeys(_FIGURES, 0))

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluated": self.evaluated,
            "entered": self.entered,
            "exited": self.exited,
            "segments": {sid: dict(f) for sid, f in self.segments.items()},
        }


@dataclass
class _Index:
    """Which active segments to evaluate for which change; rebuilt when the catalog changes."""

    rank: dict[str, int] = field(default_factory=dict)
    by_attr: dict[str, list[str]] = field(default_factory=dict)
    by_event: dict[str, list[str]] = field(default_factory=dict)
    dependents: dict[str, list[str]] = field(default_factory=dict)
    dynamic: list[str] = field(default_factory=list)
    """Every segment events can change (not static), in rank order: a new customer's seeds."""
    timed: list[str] = field(default_factory=list)
    timed_set: frozenset[str] = frozenset()
    aggregates: bool = False
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    """Segment id -> its compiled evaluation function (no method call per evaluation)."""
    on_append: dict[str, list[tuple[str, AppendEffect]]] = field(default_factory=dict)
    """Event type -> (segment id, what one appended event of the type can change of it),
    the segments of `by_event`, in the same order."""
    append_timers: dict[str, _AppendTimer] = field(default_factory=dict)
    """Event type -> the timer edges one appended event of the type can add."""


@dataclass
class _AppendTimer:
    """The `within` windows over one event type of every timed segment, each distinct
    (window, filter) once, and the timed segments whose next change must be asked in full
    (a filter that depends on time)."""

    edges: list[tuple[int, PropTest | None]] = field(default_factory=list)
    full: list[str] = field(default_factory=list)


class PartitionEngine:
    def __init__(
        self,
        partition: int,
        config: EngineConfig,
        catalog: dict[str, AppliedSegment],
        *,
        incremental: bool = True,
    ) -> None:
        self.partition = partition
        self.config = config
        self.incremental = incremental
        """False: every event evaluates all the segments of its type and asks each for its
        next change (what the incremental path must agree with; tests and benchmarks)."""
        self.applied: dict[str, AppliedSegment] = dict(catalog)
        self.segments: dict[str, CompiledSegment] = {
            sid: compiled_for(a) for sid, a in catalog.items()
        }
        self._index = self._build_index()
        self.evaluations: dict[str, int] = {}
        """Evaluations per segment id since start (metrics, and tests of incrementality).
        Plain dicts here: a `Counter`'s item assignment goes through its Python-level
        `__delitem__`'s slot, ~4 % of the engine's time when these were Counters."""
        self._changes: dict[tuple[bool, str], int] = {}
        """Membership changes not yet added to the metrics (`flush_metrics`)."""
        self._evaluated: dict[str, int] = {}
        """Evaluations per cause not yet added to the metrics: flushed by `flush_metrics`
        (the runtime calls it after each commit) or once `_FLUSH_EVALUATIONS` evaluations and
        changes piled up (the lock of each `inc` costs more than a short evaluation)."""
        self._unflushed = 0
        """Evaluations and membership changes counted since the last flush."""
        self._change_customer = ""
        self._change_key = b""
        self._change_packed = b""
        """The customer of the last membership change, its key and its packed id: an event's
        changes (2.5 an event in the benchmark) pack them once."""
        self._change_now: int | None = None
        self._change_at = b""
        """The instant of the last membership change and its packed bytes (a batch has one)."""

    # -- catalog --------------------------------------------------------------------------
    def set_segment(self, applied: AppliedSegment) -> None:
        self.applied[applied.segment_id] = applied
        self.segments[applied.segment_id] = compiled_for(applied)
        self._index = self._build_index()

    def remove_segment(self, segment_id: str) -> None:
        self.applied.pop(segment_id, None)
        self.segments.pop(segment_id, None)
        self._index = self._build_index()

    def _build_index(self) -> _Index:
        index = _Index()
        pending = dict(self.segments)
        done: set[str] = set()
        order: list[str] = []
        while pending:  # dependencies first; the control agent rejects cycles
            ready = sorted(
                sid
                for sid, seg in pending.items()
                if all(d in done or d not in pending for d in seg.segments)
            )
            if not ready:  # pragma: no cover - cycles are refused before they get here
                ready = sorted(pending)
            for sid in ready:
                order.append(sid)
                done.add(sid)
                del pending[sid]
        index.rank = {sid: i for i, sid in enumerate(order)}
        seen_edges: set[tuple[str, int, str]] = set()
        for sid in order:
            seg = self.segments[sid]
            index.evaluators[sid] = seg.evaluator
            for dep in seg.segments:
                if not seg.is_static:
                    index.dependents.setdefault(dep, []).append(sid)
            if seg.is_static:
                continue
            index.dynamic.append(sid)
            for name in seg.attributes:
                index.by_attr.setdefault(name, []).append(sid)
            for event_type in seg.event_types:
                index.by_event.setdefault(event_type, []).append(sid)
                effect = seg.on_append[event_type]
                index.on_append.setdefault(event_type, []).append((sid, effect))
                if seg.time_dependent:
                    timer = index.append_timers.setdefault(event_type, _AppendTimer())
                    if not effect.exact_timer:
                        timer.full.append(sid)
                    for window, text, passes in effect.windows:
                        if (event_type, window, text) not in seen_edges:
                            seen_edges.add((event_type, window, text))
                            timer.edges.append((window, passes))
            if seg.event_types:
                index.aggregates = True
            if seg.time_dependent:
                index.timed.append(sid)
        index.timed_set = frozenset(index.timed)
        return index

    # -- applying changes -----------------------------------------------------------------
    def apply_event(self, batch: PartitionBatch, profile: Profile, event: Event, now: int) -> bool:
        """Apply one event; False when it was a duplicate (event_id already applied).

        A customer not `evaluated` yet (new, or stored before that flag) is evaluated against
        every segment events can change, and its timer asked of every timed segment: its
        memberships are then the rules' results (a new customer enters `count(buy) lt 1` at
        its first visit). After that, an event appended to a customer's history without
        dropping any (the common case) evaluates only the segments whose measures it moves
        (`AppendEffect.can_change`, the customer's first event of a type included) and merges
        the timer edges it adds with the stored wake-up (`_schedule_appended`); the stored
        results and timer of the others still hold (`segment_rules._append`). A profile event
        evaluates the segments of the attributes it changed."""
        if profile.seen(event.event_id):
            return False
        if profile.wake is not None and profile.wake <= now:
            self.expire(batch, profile, now)  # a window moved before the timer fired
        cutoff = now - self.config.history_max_age_ms
        index = self._index
        config = self.config
        seeds: list[str]
        ordered = False
        appended = False
        first = not profile.evaluated
        event_type = event.type
        if event_type == "profile":
            seeds = []
            for name in profile.upsert_attributes(event.properties):
                seeds.extend(index.by_attr.get(name, ()))
        else:
            series = profile.events.get(event_type)
            before = len(series) if series is not None else 0
            kept = profile.append_event(
                event_type,
                event.ts,
                event.properties,
                config.history_max_events,
                cutoff,
                prune=False,  # the types that lose events are seeds too
            )
            seeds = index.by_event.get(event_type, [])
            pruned = profile.prune(config.history_max_events, cutoff)
            series = profile.events.get(event_type) if kept else None
            # one more of its type and none of its type dropped (else measures moved both ways)
            appended = self.incremental and series is not None and len(series) == before + 1
            if appended and not first:
                props = event.properties
                members = profile.segments
                seeds = [
                    sid
                    for sid, effect in index.on_append.get(event_type, ())
                    if effect.can_change(props, sid in members)
                ]
            if pruned:  # other types that lost events: all their segments
                seeds = list(seeds)
                for dropped_type in pruned:
                    seeds.extend(index.by_event.get(dropped_type, ()))
            else:
                ordered = True  # one list of the index: in rank order, no repeats
        if first:  # every segment, in rank order; the timer asked in full
            profile.mark_evaluated()
            seeds, ordered, appended = index.dynamic, True, False
        view: ProfileSnapshot | None = None
        if seeds:
            view = profile.snapshot(cutoff)
            self.evaluate(batch, profile, seeds, now, "event", view=view, ordered=ordered)
        if appended:
            self._schedule_appended(batch, profile, now, event, view)
        else:
            self.schedule(batch, profile, now, changed=None if first else seeds, view=view)
        return True

    def expire(self, batch: PartitionBatch, profile: Profile, now: int) -> None:
        """Re-evaluate what time can change for a customer whose timer is due."""
        cutoff = now - self.config.history_max_age_ms
        seeds = set(self._index.timed)
        for event_type in profile.prune(self.config.history_max_events, cutoff):
            seeds.update(self._index.by_event.get(event_type, ()))
        self.evaluate(batch, profile, seeds, now, "expiry")
        self.schedule(batch, profile, now)

    def evaluate(
        self,
        batch: PartitionBatch,
        profile: Profile,
        seeds: Iterable[str],
        now: int,
        cause: str,
        stats: TaskStats | None = None,
        view: ProfileSnapshot | None = None,
        ordered: bool = False,
    ) -> None:
        """Evaluate `seeds`, then the dynamic dependents of every membership that changed.

        Seeds are evaluated in dependency order (a sorted list); a heap is made only when a
        membership change brings in dependents. `view` is the profile's snapshot at `now` when
        the caller already has one (the events must not have changed since it was taken);
        `ordered`: `seeds` is a list of known segment ids in rank order, without repeats.
        """
        index = self._index
        rank = index.rank
        order: list[str]
        if ordered:
            order = seeds  # type: ignore[assignment]
        else:
            order = [s for s in seeds if s in rank]
            if len(order) > 1:
                order = sorted(set(order), key=rank.__getitem__)
        if not order:
            return
        if view is None:
            view = profile.snapshot(now - self.config.history_max_age_ms)
        evaluators = index.evaluators
        members = profile.segments
        dependents = index.dependents
        done: list[str] = []
        extra: list[tuple[int, str]] = []
        seen: set[str] | None = None
        at, size = 0, len(order)
        while True:
            if extra and (at >= size or extra[0][0] < rank[order[at]]):
                sid = heapq.heappop(extra)[1]
            elif at < size:
                sid = order[at]
                at += 1
            else:
                break
            try:
                member = evaluators[sid](view, now)
            except Exception as exc:
                raise SegmentFailed(sid, exc) from exc
            done.append(sid)
            if stats is not None:
                stats.count(sid, "evaluated")
            if member == (sid in members):
                continue
            self._record(batch, profile, sid, member, now, cause, stats)
            following = dependents.get(sid)
            if following:
                if seen is None:
                    seen = set(order)
                for dependent in following:
                    if dependent not in seen:
                        seen.add(dependent)
                        heapq.heappush(extra, (rank[dependent], dependent))
        evaluations = self.evaluations
        for sid in done:
            evaluations[sid] = evaluations.get(sid, 0) + 1
        evaluated = self._evaluated
        evaluated[cause] = evaluated.get(cause, 0) + len(done)
        self._unflushed += len(done)
        if self._unflushed >= _FLUSH_EVALUATIONS:
            self.flush_metrics()

    # -- tasks (backfills) -----------------------------------------------------------------
    def ordered(self, segment_ids: Iterable[str]) -> list[str]:
        """The known ones of `segment_ids`, without repeats, in dependency (rank) order."""
        rank = self._index.rank
        return sorted({s for s in segment_ids if s in rank}, key=rank.__getitem__)

    def independent(self, order: Sequence[str]) -> bool:
        """True when no segment of `order` has dynamic dependents (`in_segment`) nor uses
        another of `order`: `evaluate` of `order` then records exactly the flips `flips` finds
        with the memberships before, in the same (rank) order, and evaluates nothing else."""
        index = self._index
        among = set(order)
        return all(
            not index.dependents.get(sid) and not (self.segments[sid].segments & among)
            for sid in order
        )

    def flips(
        self, profile: Profile, order: Sequence[str], view: ProfileView, now: int
    ) -> list[str] | None:
        """The segments of `order` (known segment ids in rank order) whose evaluation differs
        from the customer's membership, in order; None when none does: nothing to write.
        Side-effect free (evaluators are pure), so a caller may run `evaluate` on the same
        seeds after it, which evaluates them again and records."""
        evaluators = self._index.evaluators
        members = profile.segments
        found: list[str] | None = None
        for sid in order:
            try:
                member = evaluators[sid](view, now)
            except Exception as exc:
                raise SegmentFailed(sid, exc) from exc
            if member != (sid in members):
                if found is None:
                    found = [sid]
                else:
                    found.append(sid)
        return found

    def record_flips(
        self,
        batch: PartitionBatch,
        profile: Profile,
        flips: Sequence[str],
        now: int,
        cause: str,
        stats: TaskStats,
    ) -> None:
        """Record what `flips` found of an `independent` order (its evaluations are counted
        by `count_unchanged`): what `evaluate` records for the same evaluation."""
        members = profile.segments
        for sid in flips:
            self._record(batch, profile, sid, sid not in members, now, cause, stats)

    def count_unchanged(
        self,
        order: Sequence[str],
        customers: int,
        cause: str,
        stats: TaskStats,
        flush: bool = False,
    ) -> None:
        """Count the evaluations of `customers` for whom `flips` was None, as `evaluate`
        would have counted them one by one; the metrics are updated with `flush` (the end of a
        chunk) or by the next `evaluate`."""
        if customers:
            stats.add_evaluated(order, customers)
            evaluations = self.evaluations
            for sid in order:
                evaluations[sid] = evaluations.get(sid, 0) + customers
            evaluated = self._evaluated
            evaluated[cause] = evaluated.get(cause, 0) + customers * len(order)
            self._unflushed += customers * len(order)
        if flush:
            self.flush_metrics()

    def task_timers(
        self, segment_ids: Iterable[str]
    ) -> list[Callable[[ProfileView, int], int | None]]:
        """The `next_change` functions of the time-dependent ones of `segment_ids` (a task
        asks only its own segments for a customer's timer: `schedule_task`)."""
        timed = self._index.timed_set
        return [self.segments[sid].next_change for sid in segment_ids if sid in timed]

    def schedule_task(
        self,
        batch: PartitionBatch,
        profile: Profile,
        now: int,
        timers: Sequence[Callable[[ProfileView, int], int | None]],
        view: ProfileView,
    ) -> None:
        """`schedule(batch, profile, now, changed=<the task's segments>, view=view)`, with the
        timed segments' functions looked up once per chunk (`task_timers`)."""
        wake = profile.wake
        if wake is not None and wake <= now:
            return  # due: its expiry recomputes everything
        old = wake
        for next_change in timers:
            at = next_change(view, now)
            if at is not None and (wake is None or at < wake):
                wake = at
        if self._index.aggregates:
            oldest = profile.oldest_event_ts()
            if oldest is not None:
                forget = oldest + self.config.history_max_age_ms
                if forget > now and (wake is None or forget < wake):
                    wake = forget
        if wake != old:
            profile.wake = wake
            batch.timers[profile.customer_id] = wake
            batch.profiles[profile.customer_id] = profile

    def flush_metrics(self) -> None:
        """Add the evaluations and membership changes counted so far to the metrics, one call
        per label (the runtime calls it after each commit: the metrics are never a commit
        behind)."""
        self._unflushed = 0
        changes = self._changes
        if changes:
            for (member, cause), count in changes.items():
                metrics.membership_changes(member, cause).inc(count)
            changes.clear()
        evaluated = self._evaluated
        if evaluated:
            for cause, count in evaluated.items():
                metrics.evaluations(cause).inc(count)
            evaluated.clear()

    def remove_member(
        self,
        batch: PartitionBatch,
        profile: Profile,
        segment_id: str,
        now: int,
        cause: str,
        stats: TaskStats,
    ) -> None:
        """Exit a customer from a segment that is going away, then update its dependents."""
        if segment_id not in profile.segments:
            return
        self._record(batch, profile, segment_id, False, now, cause, stats)
        self.evaluate(batch, profile, self._index.dependents.get(segment_id, ()), now, cause, stats)
        self.flush_metrics()

    def erase(
        self, batch: PartitionBatch, profile: Profile, now: int, stats: TaskStats
    ) -> list[str]:
        """Forget a customer: exit every segment (cause `erased`), then delete the profile, its
        history, timer and index entry. Returns the segments exited."""
        left = sorted(profile.segments)
        for segment_id in left:
            self._record(batch, profile, segment_id, False, now, "erased", stats)
        customer_id = profile.customer_id
        batch.profiles.pop(customer_id, None)
        batch.timers.pop(customer_id, None)
        batch.erase(profile)
        self.flush_metrics()
        return left

    def _record(
        self,
        batch: PartitionBatch,
        profile: Profile,
        segment_id: str,
        member: bool,
        now: int,
        cause: str,
        stats: TaskStats | None,
    ) -> None:
        customer_id = profile.customer_id
        if member:
            profile.segments.add(segment_id)
        else:
            profile.segments.discard(segment_id)
        batch.set_member(segment_id, customer_id, member)
        if stats is not None:
            stats.count(segment_id, "entered" if member else "exited")
        if customer_id != self._change_customer or not self._change_key:
            self._change_customer = customer_id
            self._change_key = customer_id.encode()
            self._change_packed = pack_value(customer_id)
        if now != self._change_now:
            self._change_now = now
            self._change_at = pack_value(now)
        value = encode_change_packed(
            segment_id, self._change_packed, member, self._change_at, cause, batch.next_seq()
        )
        batch.outbox.append(OutboxRecord(self.config.membership_topic, self._change_key, value))
        changes = self._changes
        label = (member, cause)
        changes[label] = changes.get(label, 0) + 1
        self._unflushed += 1
        batch.profiles[customer_id] = profile

    def schedule(
        self,
        batch: PartitionBatch,
        profile: Profile,
        now: int,
        changed: Collection[str] | None = None,
        view: ProfileSnapshot | None = None,
    ) -> None:
        """Set the customer's timer to the next instant time alone may change a membership.

        With `changed` (the segments an event or a task could affect), only those are asked
        and the earlier timer is kept: it may then fire early, and the expiry recomputes
        everything, but it is never late. A timer already due is left alone: its expiry
        recomputes everything anyway. `view`: as for `evaluate`.
        """
        wake: int | None = None
        index = self._index
        timed: Iterable[str] = index.timed
        if changed is not None:
            if profile.wake is not None:
                if profile.wake <= now:
                    return
                wake = profile.wake
            timed_set = index.timed_set
            timed = [sid for sid in changed if sid in timed_set]
        if timed:
            if view is None:
                view = profile.snapshot(now - self.config.history_max_age_ms)
            segments = self.segments
            for sid in timed:
                at = segments[sid].next_change(view, now)
                if at is not None and (wake is None or at < wake):
                    wake = at
        self._set_wake(batch, profile, now, wake)

    def _schedule_appended(
        self,
        batch: PartitionBatch,
        profile: Profile,
        now: int,
        event: Event,
        view: ProfileSnapshot | None,
    ) -> None:
        """`schedule` after `event` was appended to the history and none of its type was
        dropped: the stored wake-up is never later than any segment's next change, appending
        one event only adds the instant it leaves each `within` window its filter passes
        (dropping events only puts next changes later), so the earliest of those and the
        stored one is what asking every segment of the type gives. Segments with a filter
        that depends on time are asked in full."""
        wake = profile.wake
        if wake is not None and wake <= now:
            return  # its expiry recomputes everything
        timer = self._index.append_timers.get(event.type)
        if timer is not None:
            ts = event.ts
            props = event.properties
            for window, passes in timer.edges:
                edge = ts + window
                if (
                    edge > now
                    and (wake is None or edge < wake)
                    and (passes is None or passes(props))
                ):
                    wake = edge
            if timer.full:
                if view is None:
                    view = profile.snapshot(now - self.config.history_max_age_ms)
                segments = self.segments
                for sid in timer.full:
                    at = segments[sid].next_change(view, now)
                    if at is not None and (wake is None or at < wake):
                        wake = at
        self._set_wake(batch, profile, now, wake)

    def _set_wake(
        self, batch: PartitionBatch, profile: Profile, now: int, wake: int | None
    ) -> None:
        """Store `wake`, or the instant the oldest kept event is forgotten when earlier."""
        if self._index.aggregates:
            oldest = profile.oldest_event_ts()
            if oldest is not None:
                forget = oldest + self.config.history_max_age_ms
                if forget > now and (wake is None or forget < wake):
                    wake = forget
        if wake != profile.wake:
            profile.wake = wake
            batch.timers[profile.customer_id] = wake
            batch.profiles[profile.customer_id] = profile
