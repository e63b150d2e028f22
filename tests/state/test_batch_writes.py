"""`PartitionBatch.writes()` against the plain construction it replaced: the same ops and keys.

The commit build makes each segment's `BITFIELD` op in place, the timers in one pass and each
profile's stored bytes with its ordinal header joined by `Profile.encode(head)`; what the Lua
script receives must be exactly what the straightforward build (`_reference_writes`, the build
before) gave, for any batch: many changes of one segment (several `BITFIELD`s), timers set
and cleared, new and erased customers, the outbox.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from state import KeySpace, OutboxRecord, PartitionBatch, PartitionMeta, Profile
from state.commit import Writes, pack_ops
from state.ordinals import bitfield_args, bucket_of, stored_value
from state.outbox import pack_entry

from ..hypothesis_profiles import examples

_KEYS = KeySpace("wtest").partition(2)


def _reference_writes(batch: PartitionBatch, next_ordinal: int) -> Writes:
    """The commit build before the in-place ops (without the catalog, drops and task), on a
    batch whose profiles all have their ordinals."""
    keys = batch.keys
    writes = Writes(keys.meta)
    added = 0
    for customer_id in batch.new_customers:
        profile = batch.profiles[customer_id]
        assert profile.ordinal is not None
        bucket, field = bucket_of(profile.ordinal)
        writes.add("HSET", keys.ids(bucket), field, customer_id)
        added += 1
    stored = []
    for customer_id, profile in batch.profiles.items():
        assert profile.ordinal is not None
        stored.append((keys.profile(customer_id), stored_value(profile.ordinal, profile.encode())))
    writes.set_many(stored)
    for segment_id, changes in batch.membership.items():
        ordinals = ((batch.profiles[c].ordinal or 0, member) for c, member in changes.items())
        writes.add_many("BITFIELD", keys.members(segment_id), bitfield_args(ordinals), 4)
    due = [x for c, at in batch.timers.items() if at is not None for x in (at, c)]
    if due:
        writes.add_many("ZADD", keys.timers, due, 2)
    gone = [c for c, at in batch.timers.items() if at is None]
    if gone:
        writes.add_many("ZREM", keys.timers, gone)
    if added:
        writes.add("HINCRBY", keys.meta, "customers", added)
        writes.add("HSET", keys.meta, "ord", next_ordinal)
    if batch.outbox:
        writes.add("RPUSH", keys.outbox, pack_entry(batch.outbox))
    writes.add("HSET", keys.meta, "offset", batch.offset, "seq", batch.seq)
    writes.add("HDEL", keys.meta, "task")
    return writes


_BATCHES = st.fixed_dictionaries(
    {
        "customers": st.integers(1, 12),
        "new": st.integers(0, 12),
        "changes": st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 11), st.booleans()), max_size=40
        ),
        "crowd": st.sampled_from([0, 0, 499, 500, 501, 1100]),
        "timers": st.lists(
            st.tuples(st.integers(0, 11), st.one_of(st.none(), st.integers(0, 2**40))),
            max_size=12,
        ),
        "touched": st.integers(0, 12),
        "records": st.integers(0, 3),
    }
)


@settings(max_examples=examples(300), deadline=None)
@given(_BATCHES)
def test_the_commit_build_gives_the_ops_of_the_plain_build(spec: dict[str, object]) -> None:
    customers = int(spec["customers"])  # type: ignore[call-overload]
    crowd = int(spec["crowd"])  # type: ignore[call-overload]
    people = max(customers, crowd)
    batch = PartitionBatch(_KEYS, PartitionMeta(3, 40, 7, None))
    fresh = min(int(spec["new"]), customers)  # type: ignore[call-overload]
    for n in range(people):
        profile = Profile(f"c{n}", {"n": n, "tier": "gold" if n % 2 else "silver"})
        if n >= fresh:
            profile.ordinal = 1000 + n
        else:
            batch.new_customers.append(profile.customer_id)
        profile.segments = {f"s{k}" for k in range(n % 3)}
        batch.profiles[profile.customer_id] = profile
    if int(spec["touched"]) % 2:  # type: ignore[call-overload]
        batch.profiles["c0"].encode()  # the splice path of a profile encoded before
        batch.profiles["c0"].segments.add("s9")
    batch.next_ordinal = 50
    for segment, who, member in spec["changes"]:  # type: ignore[attr-defined]
        batch.set_member(f"s{segment}", f"c{who % customers}", member)
    for who in range(crowd):  # one segment's changes beyond one BITFIELD
        batch.set_member("crowded", f"c{who}", who % 3 != 0)
    for who, at in spec["timers"]:  # type: ignore[attr-defined]
        batch.timers[f"c{who % customers}"] = at
    for n in range(int(spec["records"])):  # type: ignore[call-overload]
        batch.outbox.append(OutboxRecord("membership", f"c{n}".encode(), b"v%d" % n))
    batch.offset = 41
    batch.next_seq()
    got = batch.writes()  # gives the new customers their ordinals 50, 51...
    want = _reference_writes(batch, batch.next_ordinal)
    assert got.keys == want.keys
    assert got.ops == want.ops
    assert pack_ops(got.ops) == pack_ops(want.ops)


def test_encode_after_a_head_is_the_head_then_the_profile() -> None:
    profile = Profile("c1", {"a": 1}, segments={"x"})
    assert profile.encode(b"\xc1\x00\x00\x00\x07") == b"\xc1\x00\x00\x00\x07" + profile.encode()
