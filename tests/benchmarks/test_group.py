"""The benchmark's `--workers N` window opens only once the consumer group settled."""

from __future__ import annotations

from benchmarks.group import GroupSettle, is_spread


def test_spread_means_every_worker_owns_partitions_and_each_partition_one_worker() -> None:
    assert is_spread([[0, 2], [1, 3]], 4)
    assert not is_spread([[0, 1, 2, 3], []], 4)  # the second worker has none yet
    assert not is_spread([[0, 1, 2, 3], None], 4)  # no answer from the second worker
    assert not is_spread([[0, 1], [1, 2, 3]], 4)  # partition 1 twice (mid-rebalance)
    assert not is_spread([[0, 1], [2]], 4)  # partition 3 unowned
    assert not is_spread([], 4)


def test_the_group_settles_once_the_spread_assignment_held_still() -> None:
    seen = iter(
        [
            [[0, 1, 2, 3], None],  # the first worker alone
            [[0, 1, 2, 3], []],
            [[0, 1], [2, 3]],  # rebalanced
            [[0, 1], [2, 3]],
            [[0, 1], [2, 3]],
        ]
    )
    settle = GroupSettle(lambda: next(seen), 4, stable_s=1.0, every_s=0.25)
    results = [settle.poll(t) for t in (0.0, 0.5, 1.0, 1.5, 2.0)]
    assert results == [False, False, False, False, True]
    assert settle.settled_at == 2.0 and settle.current == [[0, 1], [2, 3]]
    assert settle.changes == 3


def test_a_new_rebalance_restarts_the_wait() -> None:
    seen = iter([[[0, 1], [2, 3]], [[0, 1], [2, 3]], [[0], [1, 2, 3]], [[0], [1, 2, 3]]])
    settle = GroupSettle(lambda: next(seen), 4, stable_s=1.0, every_s=0.0)
    assert [settle.poll(t) for t in (0.0, 0.9, 1.2, 2.0)] == [False, False, False, False]
    assert settle.settled_at is None


def test_a_worker_that_answers_late_does_not_restart_the_wait() -> None:
    # on a loaded machine `/health` may time out (None) between two identical answers
    spread = [[0, 1], [2, 3]]
    seen = iter([spread, [[0, 1], None], spread, [None, [2, 3]], spread])
    settle = GroupSettle(lambda: next(seen), 4, stable_s=1.0, every_s=0.0)
    assert [settle.poll(t) for t in (0.0, 0.4, 0.8, 1.0, 1.2)] == [
        False,
        False,
        False,
        False,
        True,
    ]
    assert settle.changes == 1 and settle.settled_at == 1.2
