"""Every membership change the engine records carries its own customer and instant: the engine
packs a customer's id and the batch's instant once for a run of changes (`_record`), and a
change of customer or instant between two changes must never reuse the previous bytes."""

from __future__ import annotations

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from state import AppliedSegment, KeySpace, PartitionBatch, PartitionMeta, Profile
from streams.engine import EngineConfig, PartitionEngine
from streams.messages import Event, MembershipChange

from ...hypothesis_profiles import examples

NOW = 1_800_000_000_000
DAY = 86_400_000
_SEGMENTS = {
    "adults": {"attr": "age", "op": "gte", "value": 18},
    "seniors": {"attr": "age", "op": "gte", "value": 65},
}


def _engine() -> PartitionEngine:
    catalog = {
        sid: AppliedSegment(sid, 1, {"id": sid, "name": sid, "rules": [{"where": where}]})
        for sid, where in _SEGMENTS.items()
    }
    return PartitionEngine(0, EngineConfig("membership", 100, 30 * DAY), catalog)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["c1", "c2", "", "ü"]),
            st.integers(0, 90),
            st.integers(0, 3),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_each_change_record_names_its_own_customer_and_instant(
    steps: list[tuple[str, int, int, bool]],
) -> None:
    engine = _engine()
    profiles: dict[str, Profile] = {}
    batch = PartitionBatch(KeySpace("t").partition(0), PartitionMeta(0, -1, 0, None))
    for n, (customer_id, age, tick, commit) in enumerate(steps):
        if commit:  # a new batch, as after a commit
            batch = PartitionBatch(
                KeySpace("t").partition(0), PartitionMeta(0, -1, batch.seq, None)
            )
        now = NOW + tick
        profile = profiles.setdefault(customer_id, Profile(customer_id))
        before = len(batch.outbox)
        engine.apply_event(
            batch, profile, Event(f"e{n}", customer_id, "profile", now, {"age": age}), now
        )
        for record in batch.outbox[before:]:
            change = MembershipChange.from_dict(msgpack.unpackb(record.value))
            assert record.key == customer_id.encode()
            assert record.value == change.encode()
            assert (change.customer_id, change.at) == (customer_id, now)
