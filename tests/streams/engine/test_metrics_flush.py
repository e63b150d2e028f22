"""The engine counts evaluations and membership changes locally and adds them to the metrics
in one call per label (`PartitionEngine.flush_metrics`, after each commit): every one is
added exactly once, none is lost between flushes."""

from __future__ import annotations

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams import metrics
from streams.engine import EngineConfig, PartitionEngine
from streams.messages import Event

NOW = 1_800_000_000_000
DAY = 86_400_000


def _value(counter: object) -> float:
    return float(counter._value.get())  # type: ignore[attr-defined]


def _engine() -> PartitionEngine:
    definition = {
        "id": "adults",
        "name": "adults",
        "rules": [{"where": {"attr": "age", "op": "gte", "value": 18}}],
    }
    applied = AppliedSegment("adults", 1, definition)
    return PartitionEngine(0, EngineConfig("membership", 100, 30 * DAY), {"adults": applied})


def test_flushed_metrics_count_every_evaluation_and_change_once() -> None:
    engine = _engine()
    entered = metrics.membership_changes(True, "event")
    exited = metrics.membership_changes(False, "event")
    evaluated = metrics.evaluations("event")
    before = (_value(entered), _value(exited), _value(evaluated))
    batch = PartitionBatch(KeySpace("t").partition(0), PartitionMeta(0, -1, 0, None))
    ages = [30, 10, 40, 41, 5]  # in, out, in, (no change), out: 5 evaluations, 4 changes
    for n, age in enumerate(ages):
        profile = batch.profiles.get("c1") or Profile("c1")
        engine.apply_event(batch, profile, Event(f"e{n}", "c1", "profile", NOW, {"age": age}), NOW)
        batch.profiles["c1"] = profile
        if n % 2:
            engine.flush_metrics()  # flushes between events, as commits do between batches
    engine.flush_metrics()
    engine.flush_metrics()  # nothing twice
    after = (_value(entered), _value(exited), _value(evaluated))
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (2, 2, 5)
    assert len(batch.outbox) == 4
