"""An appended event evaluates only the segments whose measures it moves and merges its timer
edges with the stored wake-up (`PartitionEngine.apply_event`, `segment_rules._append`): the
memberships, membership changes and timers must be those of the engine that evaluates every
segment of the event's type and asks each for its next change (`incremental=False`), and
every membership must be what evaluating the segment at that instant gives (a new customer is
evaluated against every segment at its first event, so its first event of a type prunes too)."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams.engine import EngineConfig, PartitionEngine
from streams.messages import Event

from ...hypothesis_profiles import examples

NOW = 1_800_000_000_000
MINUTE = 60_000


def _applied(segment_id: str, where: dict[str, Any]) -> AppliedSegment:
    definition = {"id": segment_id, "name": segment_id, "rules": [{"where": where}]}
    return AppliedSegment(segment_id, 1, definition)


def _agg(event: str, agg: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"event": event, "agg": agg, "op": op, "value": value, **extra}


_CAT_A = {"prop": "cat", "op": "eq", "value": "a"}
CATALOG = (
    _applied("buys", _agg("buy", "count", "gte", 2)),
    _applied("few-buys", _agg("buy", "count", "lt", 2, filter=_CAT_A)),
    _applied("a-sum", _agg("buy", "sum", "gt", 3, prop="n", filter=_CAT_A)),
    _applied("a-sum-1h", _agg("buy", "sum", "gte", 2, prop="n", filter=_CAT_A, within="1h")),
    _applied("low-avg", _agg("buy", "avg", "lt", 2, prop="n", within="30m")),
    _applied("max-n", _agg("buy", "max", "gt", 2, prop="n", within="2h")),
    _applied("kinds", _agg("buy", "distinct_count", "gte", 2, prop="cat")),
    _applied("min-n", _agg("buy", "min", "lt", 1, prop="n", within="1h")),
    _applied("small-sum", _agg("buy", "sum", "lte", 2, prop="n")),
    _applied("few-kinds", _agg("buy", "distinct_count", "lt", 2, prop="n")),
    _applied("low-max", _agg("buy", "max", "lt", 3, prop="n")),
    _applied("visits-10m", _agg("visit", "count", "gte", 2, within="10m")),
    _applied(
        "fresh-visits",  # a filter that depends on time: always evaluated, timer asked in full
        _agg(
            "visit",
            "count",
            "gte",
            1,
            filter={"prop": "at", "op": "within_last", "value": "20m"},
        ),
    ),
    _applied(
        "mixed",
        {
            "any": [
                _agg("visit", "count", "gte", 3, within="1h"),
                {"not": _agg("buy", "count", "gte", 1, filter=_CAT_A, within="45m")},
            ]
        },
    ),
    _applied("seen", {"attr": "seen", "op": "within_last", "value": "30m"}),
    _applied("both", {"all": [{"in_segment": "buys"}, {"in_segment": "visits-10m"}]}),
)

_PROPS = {
    "buy": st.fixed_dictionaries(
        {},
        optional={
            "n": st.one_of(
                st.integers(-2, 5),
                st.sampled_from([1.5, -0.5, "x", True, None, float("inf"), float("nan")]),
            ),
            "cat": st.sampled_from(["a", "b", 1, None]),
        },
    ),
    "visit": st.fixed_dictionaries({}, optional={"at": st.integers(-40, 5)}),
    "profile": st.just({}),
}

_STEP = st.tuples(
    st.sampled_from(["buy", "visit", "profile"]),
    st.integers(-90, 5),  # the event's age in minutes (late ones, beyond windows, some)
    st.integers(0, 25),  # minutes the clock moves first
    st.data(),
)


def _outbox(batch: PartitionBatch) -> list[dict[str, Any]]:
    return [msgpack.unpackb(r.value) for r in batch.outbox]


@settings(max_examples=examples(150), deadline=None)
@given(steps=st.lists(_STEP, max_size=30), max_events=st.sampled_from([3, 100]))
def test_incremental_events_agree_with_evaluating_every_segment_of_the_type(
    steps: list[tuple[str, int, int, st.DataObject]], max_events: int
) -> None:
    config = EngineConfig("membership", max_events, 2 * 60 * MINUTE)
    catalog = {s.segment_id: s for s in CATALOG}
    fast = PartitionEngine(0, config, catalog)
    full = PartitionEngine(0, config, catalog, incremental=False)
    mine, theirs = Profile("c1"), Profile("c1")
    keys = KeySpace("t").partition(0)
    now = NOW
    for n, (event_type, age, advance, data) in enumerate(steps):
        now += advance * MINUTE
        props = dict(data.draw(_PROPS[event_type]))
        if event_type == "visit" and "at" in props:
            props["at"] = now + props["at"] * MINUTE
        if event_type == "profile":
            props = {"seen": now + age * MINUTE}
        event = Event(f"e{n}", "c1", event_type, now + age * MINUTE, props)
        batches = [PartitionBatch(keys, PartitionMeta(0, -1, 0, None)) for _ in range(2)]
        fast.apply_event(batches[0], mine, event, now)
        full.apply_event(batches[1], theirs, event, now)
        assert mine.segments == theirs.segments, (n, event)
        # and both are the rules' results at `now`: no segment evaluates otherwise
        view = mine.snapshot(now - config.history_max_age_ms)
        assert fast.flips(mine, fast.ordered(catalog), view, now) is None, (n, event)
        assert mine.wake == theirs.wake, (n, event)
        assert _outbox(batches[0]) == _outbox(batches[1])
        assert batches[0].membership == batches[1].membership
        assert batches[0].timers == batches[1].timers


def test_an_event_no_measure_takes_in_is_not_evaluated() -> None:
    config = EngineConfig("membership", 100, 2 * 60 * MINUTE)
    engine = PartitionEngine(0, config, {s.segment_id: s for s in CATALOG})
    profile = Profile("c1")
    keys = KeySpace("t").partition(0)

    def buy(n: int, props: dict[str, Any]) -> None:
        batch = PartitionBatch(keys, PartitionMeta(0, -1, 0, None))
        engine.apply_event(batch, profile, Event(f"b{n}", "c1", "buy", NOW, props), NOW)

    buy(0, {"cat": "b"})  # the customer's first buy: every segment of the type, once
    first = dict(engine.evaluations)
    assert first["a-sum"] == first["kinds"] == 1
    buy(1, {"cat": "b"})  # no "a", no number: only the unfiltered counts move
    moved = {sid for sid, count in engine.evaluations.items() if count > first.get(sid, 0)}
    # the unfiltered count and the distinct categories move; "buys" entered: its dependent
    assert moved == {"buys", "kinds", "both"}
    buy(2, {"cat": "b", "n": 3})  # a number, but not in category "a": the "a" sums stay
    again = {sid for sid, count in engine.evaluations.items() if count > first.get(sid, 0)}
    assert "a-sum" not in again and "a-sum-1h" not in again
    assert {"low-avg", "max-n"} <= again
