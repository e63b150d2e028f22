"""A task chunk's evaluation (`streams.engine.tasks`) against the engine's plain path."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams import metrics
from streams.engine import EngineConfig, PartitionEngine, TaskStats
from streams.engine.tasks import evaluate_chunk

from ...hypothesis_profiles import examples

NOW = 1_800_000_000_000
DAY = 86_400_000


def _applied(segment_id: str, where: dict[str, Any]) -> AppliedSegment:
    definition = {"id": segment_id, "name": segment_id, "rules": [{"where": where}]}
    return AppliedSegment(segment_id, 1, definition)


def _spent(value: int) -> dict[str, Any]:
    return {"event": "purchase", "agg": "sum", "prop": "amount", "within": "7d", "op": "gt",
            "value": value}  # fmt: skip


CATALOG = (
    _applied("de", {"attr": "country", "op": "eq", "value": "DE"}),
    _applied("spender", _spent(100)),
    _applied("de-spender", {"all": [{"in_segment": "de"}, {"in_segment": "spender"}]}),
    _applied("timed", {"event": "login", "agg": "count", "within": "2d", "op": "gte", "value": 1}),
    _applied("fr-or-spent", {"any": [{"attr": "country", "op": "eq", "value": "FR"}, _spent(40)]}),
)
TASKS = [
    ["de"],
    ["spender"],
    ["de", "spender"],
    ["spender", "de"],
    ["de-spender"],
    ["timed", "spender"],
    ["never"],
    # independent (no dependents, none uses another): a change is recorded from one evaluation
    ["fr-or-spent"],
    ["timed", "fr-or-spent"],
    ["de-spender", "timed", "fr-or-spent", "never"],
]

customer = st.tuples(
    st.sampled_from(["DE", "FR", None]),
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 90)), max_size=4),  # purchases
    st.lists(st.integers(0, 5), max_size=2),  # logins, days ago
    st.sets(st.sampled_from([s.segment_id for s in CATALOG])),  # memberships before
    st.one_of(st.none(), st.integers(-2, 40)),  # timer before, days from now
    st.booleans(),  # stored (False: None in the chunk)
)


def _profiles(customers: list[Any]) -> list[Profile | None]:
    out: list[Profile | None] = []
    for n, (country, purchases, logins, members, wake, stored) in enumerate(customers):
        if not stored:
            out.append(None)
            continue
        profile = Profile(f"c{n}", {} if country is None else {"country": country})
        for days, amount in purchases:
            profile.append_event("purchase", NOW - days * DAY, {"amount": amount}, 100, 0)
        for days in logins:
            profile.append_event("login", NOW - days * DAY, {}, 100, 0)
        profile.segments = set(members)
        profile.wake = None if wake is None else NOW + wake * DAY // 4
        profile.ordinal = n
        out.append(profile)
    return out


def _written(batch: PartitionBatch, stats: TaskStats, loaded: list[Profile | None]) -> Any:
    return (
        batch.membership,
        batch.timers,
        [(r.key, r.value) for r in batch.outbox],
        sorted(batch.profiles),
        stats.as_dict(),
        [(p.segments, p.wake) for p in loaded if p is not None],
    )


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(customer, max_size=12), st.sampled_from(TASKS))
def test_a_chunk_writes_what_evaluating_each_customer_writes(
    customers: list[Any], task: list[str]
) -> None:
    """Customers whose memberships do not change are evaluated without side effects and
    counted in bulk, and only the task's segments set the timer: the chunk writes what
    `evaluate` then `schedule(changed=<the task's segments>)` write customer by customer,
    with the same figures."""
    config = EngineConfig("membership", 100, 30 * DAY)
    engines = [PartitionEngine(0, config, {s.segment_id: s for s in CATALOG}) for _ in "ab"]
    keys, meta = KeySpace("t").partition(0), PartitionMeta(0, -1, 0, None)
    fast, plain = PartitionBatch(keys, meta), PartitionBatch(keys, meta)
    fast_stats, plain_stats = TaskStats(), TaskStats()
    fast_loaded, plain_loaded = _profiles(customers), _profiles(customers)
    segments = [s for s in CATALOG if s.segment_id in task]
    progress: dict[str, Any] = {"failed": {}, "skipped": {}}
    evaluate_chunk(
        engines[0], fast, fast_loaded, (NOW, "activate"), (), segments, list(task),
        fast_stats, progress,
    )  # fmt: skip
    for profile in plain_loaded:
        if profile is None:
            continue
        view = profile.snapshot(NOW - config.history_max_age_ms)
        engines[1].evaluate(plain, profile, task, NOW, "activate", plain_stats, view=view)
        engines[1].schedule(plain, profile, NOW, changed=set(task), view=view)
    assert _written(fast, fast_stats, fast_loaded) == _written(plain, plain_stats, plain_loaded)
    assert engines[0].evaluations == engines[1].evaluations
    assert progress == {"failed": {}, "skipped": {}}


def test_independent_orders_are_those_whose_flips_evaluate_records_alone() -> None:
    """A segment with a dynamic dependent, or one that uses another segment of the task, makes
    `evaluate` do more than record the flips of one evaluation: the full path then."""
    engine = PartitionEngine(
        0, EngineConfig("m", 100, 30 * DAY), {s.segment_id: s for s in CATALOG}
    )
    assert engine.independent(["fr-or-spent", "timed", "de-spender"])
    assert engine.independent([])
    assert not engine.independent(["spender"])  # de-spender uses it
    assert not engine.independent(["de", "fr-or-spent"])


def _counted(cause: str) -> tuple[float, float, float]:
    """The metrics' (entered, exited, evaluations) of `cause` so far."""
    return (
        metrics.membership_changes(True, cause)._value.get(),
        metrics.membership_changes(False, cause)._value.get(),
        metrics.evaluations(cause)._value.get(),
    )


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(customer, max_size=12), st.sampled_from(TASKS))
def test_a_chunk_adds_its_changes_and_evaluations_to_the_metrics_by_its_end(
    customers: list[Any], task: list[str]
) -> None:
    """A task's `evaluate` leaves the metrics to the end of the chunk (one flush per chunk
    instead of one per changed customer): by then they count every change and evaluation."""
    config = EngineConfig("membership", 100, 30 * DAY)
    engine = PartitionEngine(0, config, {s.segment_id: s for s in CATALOG})
    batch = PartitionBatch(KeySpace("t").partition(0), PartitionMeta(0, -1, 0, None))
    stats = TaskStats()
    cause = "metrics-test"
    before = _counted(cause)
    evaluate_chunk(
        engine, batch, _profiles(customers), (NOW, cause), (),
        [s for s in CATALOG if s.segment_id in task], list(task), stats,
        {"failed": {}, "skipped": {}},
    )  # fmt: skip
    after = _counted(cause)
    assert tuple(b - a for a, b in zip(before, after, strict=True)) == (
        stats.entered,
        stats.exited,
        stats.evaluated,
    )
