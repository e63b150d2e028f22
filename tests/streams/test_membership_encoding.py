"""`encode_change` (the engine's membership-change bytes from pre-packed keys) gives exactly
the bytes of the change's msgpack map."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from streams.messages import MembershipChange, encode_change

_TEXT = st.text(st.characters(codec="utf-8"), max_size=300)


@given(
    _TEXT,
    _TEXT,
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(["event", "expiry", "activate", "erased", "x" * 40]),
    st.integers(0, 2**64 - 1),
)
def test_encode_change_gives_the_bytes_of_the_whole_map(
    segment_id: str, customer_id: str, entered: bool, at: int, cause: str, seq: int
) -> None:
    whole = msgpack.packb(
        {
            "segment_id": segment_id,
            "customer_id": customer_id,
            "change": "entered" if entered else "exited",
            "at": at,
            "cause": cause,
            "seq": seq,
        },
        use_bin_type=True,
    )
    assert encode_change(segment_id, customer_id, entered, at, cause, seq) == whole
    change = MembershipChange(segment_id, customer_id, entered, at, cause, seq)
    assert change.encode() == whole
    assert MembershipChange.from_dict(msgpack.unpackb(whole)) == change


@given(
    st.lists(
        st.tuples(
            st.text("ab", max_size=4),
            st.sampled_from(["event", "expiry", "activate", "erased", "ev"]),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_encode_change_repeats_and_near_names_each_get_their_own_bytes(
    changes: list[tuple[str, str]],
) -> None:
    """Segment ids and causes are packed once and reused (`outputs._head`, `outputs._cause`):
    ids that repeat, share a prefix or are empty must each still encode as the whole map does."""
    for seq, (segment_id, cause) in enumerate(changes):
        whole = msgpack.packb(
            {
                "segment_id": segment_id,
                "customer_id": "c1",
                "change": "entered",
                "at": 7,
                "cause": cause,
                "seq": seq,
            },
            use_bin_type=True,
        )
        assert encode_change(segment_id, "c1", True, 7, cause, seq) == whole
