"""ProfileFreezer: cached profiles leave the collector's reach every so many."""

from __future__ import annotations

import gc
import weakref

from streams.engine.collector import ProfileFreezer


def test_the_heap_is_frozen_once_enough_profiles_arrived() -> None:
    freezer = ProfileFreezer(every=10)
    before = gc.get_freeze_count()
    kept = [{"profile": n} for n in range(100)]  # tracked objects that live on
    try:
        freezer.took(9)
        assert freezer.freezes == 0 and gc.get_freeze_count() == before
        freezer.took(1)
        assert freezer.freezes == 1 and freezer.pending == 0
        assert gc.get_freeze_count() >= before + len(kept)
    finally:
        gc.unfreeze()


class _CountingFreezer(ProfileFreezer):
    def freeze(self, full: bool = False) -> None:  # no real freeze: only count
        self.pending = 0
        self.freezes += 1


def test_rewritten_profiles_count_toward_the_next_freeze_not_only_new_ones() -> None:
    """Regression: only cache growth was counted, so once every customer was cached the heap
    was never frozen again and full collections of 0.1-0.6 s came back (the latency p99)."""
    from state import Profile
    from streams.engine.runtime import _Owner

    freezer = _CountingFreezer(every=10)
    owner = _Owner(None, None, None, 0, 100, freezer)  # type: ignore[arg-type]
    profiles = [Profile(f"c{n}") for n in range(5)]
    owner.remember(profiles)  # five new ones
    assert freezer.freezes == 0
    owner.remember(profiles)  # the same five, rewritten by the next batch
    assert freezer.freezes == 1


def test_a_full_freeze_does_not_freeze_old_cyclic_garbage() -> None:
    class Node:
        pass

    node = Node()
    node.me = node  # type: ignore[attr-defined]  # a reference cycle
    gone = weakref.ref(node)
    gc.collect()  # the cycle is old now: a young collection would not look at it
    del node
    try:
        ProfileFreezer(every=10).freeze(full=True)
        assert gone() is None  # collected, not frozen for the rest of the process
    finally:
        gc.unfreeze()
