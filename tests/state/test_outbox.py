"""Outbox records and entries: the packed entry against the plain msgpack of its records."""

from __future__ import annotations

import copy
import pickle

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livesegments_compiled import BUILD
from state import OutboxRecord
from state.outbox import pack_entry, unpack_records

from ..hypothesis_profiles import examples

_SIZES = st.sampled_from([0, 1, 15, 16, 31, 32, 255, 256, 65_535, 65_536, 70_000])
_BLOBS = st.one_of(_SIZES.map(lambda n: b"x" * n), st.binary(max_size=40))
_HEADERS = st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=8)), max_size=2).map(tuple)
_RECORDS = st.builds(
    OutboxRecord,
    st.one_of(st.sampled_from(["segments.membership", "t"]), st.text(max_size=40)),
    st.one_of(st.none(), _BLOBS),
    _BLOBS,
    st.one_of(st.none(), st.none(), st.integers(0, 2**31)),
    st.one_of(st.just(()), _HEADERS),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(_RECORDS, max_size=20))
def test_a_packed_entry_is_the_msgpack_of_its_records_fields(records: list[OutboxRecord]) -> None:
    entry = pack_entry(records)
    assert entry == msgpack.packb([r.fields() for r in records], use_bin_type=True)
    assert unpack_records([entry]) == [records]


@pytest.mark.parametrize("count", [15, 16, 65_535, 65_536])
def test_an_entry_of_many_records_has_a_wider_array_header(count: int) -> None:
    records = [OutboxRecord("t", f"c{n}".encode(), b"v") for n in range(count)]
    assert pack_entry(records) == msgpack.packb([r.fields() for r in records], use_bin_type=True)


def test_a_record_is_an_immutable_value() -> None:
    record = OutboxRecord("t", b"k", b"v")
    assert record == OutboxRecord("t", b"k", b"v", None, ())
    assert record != OutboxRecord("t", b"k", b"v", 0)
    assert len({record, OutboxRecord("t", b"k", b"v")}) == 1
    assert repr(record) == (
        "OutboxRecord(topic='t', key=b'k', value=b'v', partition=None, headers=())"
    )
    task = OutboxRecord("t", b"", b"v", 3, (("ls-task", b"1"),))
    assert pickle.loads(pickle.dumps(task)) == task == copy.deepcopy(task) == copy.copy(task)
    if BUILD.compiled:  # a native class: its `Final` attributes cannot be set (mypy: never)
        with pytest.raises(AttributeError):
            record.value = b"w"  # type: ignore[misc]
