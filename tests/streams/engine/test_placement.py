"""Kafka's default partitioner (murmur2) and the new-customer placement check, without services."""

from __future__ import annotations

import confluent_kafka
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from streams.engine.placement import PlacementCheck, default_partition, murmur2

from ...hypothesis_profiles import examples

_LIBRDKAFKA_MURMUR2 = getattr(confluent_kafka, "murmur2", None)
"""librdkafka's `partitioner=murmur2_random` for a key (older confluent-kafka lacks it)."""

KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}
"""Kafka's own `UtilsTest.testMurmur2` cases (Java's signed int results)."""


def test_murmur2_gives_kafkas_own_test_vectors() -> None:
    for key, signed in KAFKA_VECTORS.items():
        assert murmur2(key) == signed & 0xFFFFFFFF, key


@settings(max_examples=examples(2000), deadline=None)
@given(key=st.binary(max_size=80), partitions=st.integers(1, 1000))
def test_the_partition_is_the_one_every_murmur2_client_chooses(key: bytes, partitions: int) -> None:
    """aiokafka, kafka-python and librdkafka (`partitioner=murmur2_random`) agree with us."""
    assert murmur2(key) == aiokafka_murmur2(key) == kafka_python_murmur2(key)
    expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % partitions  # aiokafka's DefaultPartitioner
    assert default_partition(key, partitions) == expected
    if _LIBRDKAFKA_MURMUR2 is not None:  # recent confluent-kafka (2.16 has it)
        assert _LIBRDKAFKA_MURMUR2(key, partitions) == expected


def _check(current: int | None, started: int = 8) -> tuple[PlacementCheck, list[int | None]]:
    counts = [current]
    return PlacementCheck("t.events", lambda: counts[0], started), counts


def _home(customer: str, partitions: int) -> int:
    return default_partition(customer.encode(), partitions)


def test_a_key_on_its_murmur2_partition_passes_and_elsewhere_is_named_with_the_fix() -> None:
    check, _ = _check(8)
    home = _home("c-17", 8)
    assert check.misplaced("c-17", home) is None
    away = (home + 1) % 8
    reason = check.misplaced("c-17", away)
    assert reason is not None
    assert f"t.events[{away}]" in reason
    assert f"key b'c-17' on partition {home} of 8" in reason
    assert "partitioner=murmur2_random" in reason and "LS_CHECK_PARTITIONER=0" in reason


def test_after_partitions_are_added_both_the_old_and_the_new_count_are_accepted() -> None:
    """Producers learn of an increase as their metadata refreshes: both counts are right."""
    check, counts = _check(8)
    customer = next(c for c in (f"c-{i}" for i in range(10_000)) if _home(c, 8) != _home(c, 12) < 8)
    assert check.misplaced(customer, _home(customer, 12)) is not None  # not known yet
    counts[0] = 12
    assert check.misplaced(customer, _home(customer, 12)) is None
    assert check.misplaced(customer, _home(customer, 8)) is None
    assert check.counts == (8, 12)
    counts[0] = None  # metadata unavailable for a while: what was seen still counts
    assert check.misplaced(customer, _home(customer, 8)) is None
    assert check.counts == (8, 12)


def test_a_partition_beyond_every_known_count_is_not_judged() -> None:
    check, _ = _check(None, started=4)
    assert all(check.misplaced(f"c-{i}", 4) is None for i in range(50))
    assert sum(check.misplaced(f"c-{i}", 3) is not None for i in range(50)) > 0


def test_a_failing_metadata_read_keeps_the_startup_count() -> None:
    def broken() -> int | None:
        raise RuntimeError("consumer being rebuilt")

    check = PlacementCheck("t.events", broken, 8)
    home = _home("c-1", 8)
    assert check.misplaced("c-1", home) is None
    assert check.misplaced("c-1", (home + 3) % 8) is not None


def test_nothing_is_judged_while_no_count_is_known() -> None:
    check, _ = _check(None, started=0)
    assert check.misplaced("c-1", 0) is None
