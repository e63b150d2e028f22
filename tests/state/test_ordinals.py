"""The ordinal encoding (`state.ordinals`) against a Python set model: pure functions, then
a partition on the real Redis driven by random joins, leaves, new and forgotten customers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from state import KeySpace, PartitionBatch, PartitionStore, Profile, StateError
from state.ordinals import bitfield_args, bucket_of, ordinals_in, split_stored, stored_value
from tests.segment_rules.strategies import budget
from tests.state.fixtures import drop_keyspace


def _bitmap(ordinals: set[int]) -> bytes:
    """A Redis bitmap by hand: bit n is the (7 - n % 8)-th bit of byte n // 8."""
    out = bytearray((max(ordinals) // 8 + 1) if ordinals else 0)
    for n in ordinals:
        out[n // 8] |= 0x80 >> (n % 8)
    return bytes(out)


@budget(300)
@given(st.sets(st.integers(0, 5000)), st.integers(0, 20))
def test_set_bits_read_back_as_the_ordinals_set(ordinals: set[int], shift: int) -> None:
    raw = _bitmap(ordinals)
    assert ordinals_in(raw, 0) == sorted(ordinals)
    # a slice starting at byte `shift` holds the ordinals from 8 * shift on
    assert ordinals_in(raw[shift:], 8 * shift) == sorted(o for o in ordinals if o >= 8 * shift)


@budget(300)
@given(st.integers(0, 2**32 - 1), st.binary(max_size=40))
def test_stored_value_round_trips_and_buckets_cover_each_ordinal_once(
    ordinal: int, blob: bytes
) -> None:
    assert split_stored(stored_value(ordinal, blob), "k") == (ordinal, blob)
    bucket, field = bucket_of(ordinal)
    assert 0 <= field < 128 and bucket * 128 + field == ordinal


def test_a_profile_without_the_ordinal_header_is_named() -> None:
    with pytest.raises(StateError, match=r"k1: stored profile has no ordinal header"):
        split_stored(Profile("c").encode(), "k1")


def test_bitfield_args_set_and_clear() -> None:
    assert bitfield_args([(3, True), (9, False)]) == ["SET", "u1", 3, 1, "SET", "u1", 9, 0]


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["join", "leave", "forget"]),
        st.integers(0, 299),  # customer
        st.sampled_from(["s1", "s2"]),
    ),
    max_size=40,
)


async def _run(redis: Redis, keyspace: KeySpace, batches: list[list[tuple[str, int, str]]]) -> None:
    store = PartitionStore(redis, keyspace, 0)
    meta = await store.load_meta()
    model: dict[str, set[str]] = {"s1": set(), "s2": set()}
    stored: dict[str, Profile] = {}  # the worker's cache, as a model of who exists
    order: list[str] = []  # first-seen order
    for ops in batches:
        batch = PartitionBatch(store.keys, meta)
        for action, n, segment_id in ops:
            customer_id = f"c{n}"
            if action == "forget":
                profile = stored.get(customer_id)  # the worker forgets stored customers
                if profile is None or customer_id in batch.erased:
                    continue
                for sid in sorted(profile.segments):
                    profile.segments.discard(sid)
                    batch.set_member(sid, customer_id, False)
                    model[sid].discard(customer_id)
                batch.profiles.pop(customer_id, None)
                batch.erase(profile)
                stored.pop(customer_id, None)
                order.remove(customer_id)
                continue
            if customer_id in batch.erased:
                continue
            profile = batch.profiles.get(customer_id) or stored.get(customer_id)
            if profile is None:
                profile = Profile(customer_id)
                batch.new_customers.append(customer_id)
                order.append(customer_id)
            member = action == "join"
            (profile.segments.add if member else profile.segments.discard)(segment_id)
            batch.set_member(segment_id, customer_id, member)
            (model[segment_id].add if member else model[segment_id].discard)(customer_id)
            batch.profiles[customer_id] = profile
        ver = await store.commit(meta.ver, batch)
        meta = type(meta)(ver, meta.offset, meta.seq, None)
        stored.update(batch.profiles)
        for segment_id, members in model.items():
            assert await store.member_count(segment_id) == len(members)
            assert await store.members(segment_id) == members
        assert await store.customer_count() == len(order)
    # the task cursor walks every customer once, in first-seen order, in any page size
    for page in (1, 7, 500):
        walked: list[str] = []
        fresh = PartitionStore(redis, keyspace, 0)
        after = None
        while ids := await fresh.customers_after(after, page):
            walked.extend(ids)
            after = ids[-1]
        assert walked == order
    loaded = await store.load_profiles(order)
    assert [p.customer_id if p else None for p in loaded] == order
    assert len({p.ordinal for p in loaded if p}) == len(order)


@budget(10)
@given(st.lists(_OPS, min_size=1, max_size=4))
def test_random_batches_agree_with_a_set_model(
    redis_url: str, batches: list[list[tuple[str, int, str]]]
) -> None:
    keyspace = KeySpace(f"test-{uuid.uuid4().hex[:10]}")

    async def main() -> None:
        from state.connect import connect

        redis = connect(redis_url)
        try:
            await _run(redis, keyspace, batches)
        finally:
            await drop_keyspace(redis, keyspace)
            await redis.aclose()

    asyncio.run(main())
