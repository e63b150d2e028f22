"""Evaluation cost per event against the length of a customer's history (no I/O).

Customers are given 10, 100 and 1,000 retained events of the workload's types (the history
cap is set to that length, so every further event also drops the oldest one), then, after
two events per customer not measured (each evaluates every segment: memberships and
any index in place), more events are
applied through `PartitionEngine.apply_event` with the benchmark's segments: the
cost per event covers the append, the retention, every affected segment's evaluation and the
timer. Incremental aggregates keep it flat; a rescan of the history makes it grow.

    .venv/bin/python -m benchmarks.history
    .venv/bin/python -m benchmarks.history --lengths 10 100 1000 --events 3000
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams.engine.machine import EngineConfig, PartitionEngine
from streams.messages import Event

from .workload import activity_event, segment_definitions

__all__ = ["HistoryCost", "history_cost", "main"]

_DAY_MS = 86_400_000


@dataclass(frozen=True)
class HistoryCost:
    history: int
    """Events retained per customer."""
    events: int
    us_per_event: float
    """CPU microseconds (`time.process_time`) per applied event."""
    evaluations_per_event: float


def _events(rng: random.Random, customers: int, count: int, start: int, step: int) -> list[Event]:
    out = []
    for i in range(count):
        raw = activity_event(rng, customers, f"h{i}", start + i * step)
        if raw["type"] == "profile":
            raw["type"] = "login"  # history only: attribute updates do not lengthen it
            raw["properties"] = {"device": "web"}
        cid = f"c{i % customers:07d}"
        out.append(Event(raw["event_id"], cid, raw["type"], raw["ts"], raw["properties"]))
    return out


def history_cost(
    length: int,
    customers: int = 100,
    events: int = 3000,
    segments: int = 100,
    seed: int = 1,
    incremental: bool = True,
) -> HistoryCost:
    """Apply `events` to `customers` who each hold `length` events already (`incremental`:
    as `PartitionEngine` takes it)."""
    now = int(time.time() * 1000)
    config = EngineConfig("bench.membership", length, 365 * _DAY_MS)
    engine = PartitionEngine(0, config, {}, incremental=incremental)
    for definition in segment_definitions(segments, seed, now):
        engine.set_segment(AppliedSegment(definition["id"], 1, definition))
    keys = KeySpace("bench").partition(0)
    meta = PartitionMeta(0, -1, 0, None)
    profiles = {f"c{i:07d}": Profile(f"c{i:07d}") for i in range(customers)}
    rng = random.Random(seed)
    fill = length * customers
    span = 20 * _DAY_MS
    step = max(1, span // (fill + events))
    start = now - span
    warm = _events(rng, customers, fill, start, step)
    cutoff = now - config.history_max_age_ms
    for event in warm:  # the history alone, without evaluating
        profile = profiles[event.customer_id]
        profile.append_event(event.type, event.ts, event.properties, length, cutoff)
    later = _events(rng, customers, 2 * customers + events, start + fill * step, step)
    batch = PartitionBatch(keys, meta)
    for event in later[: 2 * customers]:  # warm-up: memberships and indexes in place
        profile = profiles[event.customer_id]
        engine.evaluate(batch, profile, list(engine.segments), event.ts, "task")
        engine.apply_event(batch, profile, event, event.ts)
    measured = later[2 * customers :]
    before = sum(engine.evaluations.values())
    batch = PartitionBatch(keys, meta)
    started = time.process_time()
    for event in measured:
        engine.apply_event(batch, profiles[event.customer_id], event, event.ts)
    cpu = time.process_time() - started
    evaluated = sum(engine.evaluations.values()) - before
    return HistoryCost(length, events, cpu / events * 1e6, evaluated / events)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument(
        "--no-incremental",
        action="store_true",
        help="evaluate every segment of an event's type and ask each for its timer",
    )
    args = parser.parse_args(argv)
    for length in args.lengths:
        cost = history_cost(
            length, args.customers, args.events, args.segments, incremental=not args.no_incremental
        )
        print(
            f"history {cost.history:>5} events/customer: {cost.us_per_event:8.1f} µs/event "
            f"({cost.evaluations_per_event:.1f} evaluations/event, {cost.events} events)"
        )


if __name__ == "__main__":
    main()
