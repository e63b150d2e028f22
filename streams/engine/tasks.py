"""The evaluation of a task's chunk (a backfill): no I/O, shared by the worker's runtime and
`benchmarks.engine_only`.

A customer whose memberships the task does not change costs one side-effect-free evaluation
per task segment and the timer of the task's own segments, counted in bulk. One whose
membership changes goes through `PartitionEngine.evaluate` (recorded with its dependents),
unless no task segment has dependents nor uses another (`PartitionEngine.independent`, the
usual activation of one segment): then the one evaluation's flips are recorded as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from state import AppliedSegment, PartitionBatch, Profile, ProfileSnapshot

from .machine import PartitionEngine, SegmentFailed, TaskStats, compiled_for

__all__ = ["evaluate_chunk", "skip_dependents"]

log = logging.getLogger(__name__)


def evaluate_chunk(
    engine: PartitionEngine,
    batch: PartitionBatch,
    loaded: Sequence[Profile | None],
    when: tuple[int, str],
    removed: Sequence[str],
    segments: list[AppliedSegment],
    refresh_ids: list[str],
    stats: TaskStats,
    progress: dict[str, Any],
) -> None:
    """One chunk of a task: exit the removed segments, evaluate the task's segments and set
    the timer from them (the other segments' timers are unchanged), for each stored customer
    (`loaded`; None: not stored). `refresh_ids` loses a segment whose evaluation raises, and
    its dependents (`progress`' ``failed`` and ``skipped`` say why)."""
    now, cause = when
    cutoff = now - engine.config.history_max_age_ms
    order = engine.ordered(refresh_ids)
    timers = engine.task_timers(order)
    direct = engine.independent(order)
    quiet = 0
    for profile in loaded:
        if profile is None:
            continue
        for segment_id in removed:
            engine.remove_member(batch, profile, segment_id, now, cause, stats)
        # one snapshot for the evaluation and the timer (a task adds no events)
        view = profile.snapshot(cutoff)
        try:
            flips = engine.flips(profile, order, view, now)
            same = flips is None
            if flips is not None and direct:
                engine.record_flips(batch, profile, flips, now, cause, stats)
                same = True  # evaluated once: counted in bulk, the flips recorded here
        except SegmentFailed:
            same = False  # `_evaluate_one` meets it again and fails it
        if same:
            quiet += 1
        else:
            engine.count_unchanged(order, quiet, cause, stats)
            quiet = 0
            _evaluate_one(
                engine, batch, profile, view, segments, refresh_ids, when, stats, progress
            )
            if len(order) != len(refresh_ids):  # a segment failed: the others go on
                order = engine.ordered(refresh_ids)
                timers = engine.task_timers(order)
                direct = engine.independent(order)
        engine.schedule_task(batch, profile, now, timers, view)
    engine.count_unchanged(order, quiet, cause, stats, flush=True)


def _evaluate_one(
    engine: PartitionEngine,
    batch: PartitionBatch,
    profile: Profile,
    view: ProfileSnapshot,
    segments: list[AppliedSegment],
    refresh_ids: list[str],
    when: tuple[int, str],
    stats: TaskStats,
    progress: dict[str, Any],
) -> None:
    """Evaluate the task's segments for one customer (`view`: its snapshot at `now`). A
    segment that raises fails on this partition: it leaves `refresh_ids` with its dependents,
    and the others go on (what was recorded before the error is a correct evaluation of other
    segments)."""
    now, cause = when
    failed: dict[str, str] = progress["failed"]
    skipped: dict[str, str] = progress["skipped"]
    while refresh_ids:
        try:
            engine.evaluate(batch, profile, refresh_ids, now, cause, stats, view=view)
            return
        except SegmentFailed as exc:
            if exc.segment_id not in refresh_ids:
                raise  # a dependent outside the task fails as it would for an event
            log.warning("%s (customer %r)", exc, profile.customer_id)
            failed[exc.segment_id] = (
                f"evaluating customer {profile.customer_id!r} raised "
                f"{type(exc.cause).__name__}: {exc.cause}"
            )
            skip_dependents(segments, failed, skipped)
            refresh_ids[:] = [s for s in refresh_ids if s not in failed and s not in skipped]


def skip_dependents(
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
