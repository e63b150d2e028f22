"""ProfileFreezer: cached profiles leave the collector's reach every so many."""

from __future__ import annotations

import gc
import weakref

from streams.engine.collector import (
    FORCE_AFTER,
    FULL_COLLECTIONS_OFF,
    ProfileFreezer,
    no_automatic_full_collections,
)


def test_a_due_freeze_waits_for_the_next_young_collection() -> None:
    """No young collection of its own (a 6-16 ms pause every ~2 s per worker): the heap is
    frozen at the end of CPython's next collection of the young generations."""
    freezer = ProfileFreezer(every=10)
    before = gc.get_freeze_count()
    kept = [{"profile": n} for n in range(100)]  # tracked objects that live on
    try:
        freezer.took(9)
        freezer.took(1)
        assert freezer.freezes == 0 and gc.get_freeze_count() == before  # due, not done
        gc.collect(0)  # the youngest generation alone: its survivors were not all traversed
        assert freezer.freezes == 0
        gc.collect(1)
        assert freezer.freezes == 1 and freezer.pending == 0
        assert gc.get_freeze_count() >= before + len(kept)
        gc.collect(1)
        assert freezer.freezes == 1  # nothing due: the next collection freezes nothing
    finally:
        freezer.close()
        gc.unfreeze()


def test_the_freeze_comes_after_the_collection_so_young_cyclic_garbage_is_not_frozen() -> None:
    class Node:
        pass

    freezer = ProfileFreezer(every=10)
    node = Node()
    node.me = node  # type: ignore[attr-defined]  # a reference cycle, young
    gone = weakref.ref(node)
    del node
    try:
        freezer.took(10)
        gc.collect(1)
        assert freezer.freezes == 1
        assert gone() is None  # collected by that collection, not frozen before it
    finally:
        freezer.close()
        gc.unfreeze()


def test_a_due_freeze_collects_itself_when_no_young_collection_comes() -> None:
    freezer = ProfileFreezer(every=10)
    gc.disable()  # no young collection will come
    try:
        freezer.took(10 * FORCE_AFTER - 1)
        assert freezer.freezes == 0
        freezer.took(1)
        assert freezer.freezes == 1 and freezer.pending == 0
    finally:
        gc.enable()
        freezer.close()
        gc.unfreeze()


def test_rewritten_profiles_count_toward_the_next_freeze_not_only_new_ones() -> None:
    """Regression: only cache growth was counted, so once every customer was cached the heap
    was never frozen again and full collections of 0.1-0.6 s came back (the latency p99)."""
    from state import Profile
    from streams.engine.runtime import _Owner

    freezer = ProfileFreezer(every=10)
    owner = _Owner(None, None, None, 0, 100, freezer)  # type: ignore[arg-type]
    profiles = [Profile(f"c{n}") for n in range(5)]
    try:
        owner.remember(profiles)  # five new ones
        assert freezer.pending == 5
        owner.remember(profiles)  # the same five, rewritten by the next batch
        assert freezer.pending == 10  # a freeze is due
        gc.collect(1)
        assert freezer.freezes == 1
    finally:
        freezer.close()
        gc.unfreeze()


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


def test_the_worker_starts_no_full_collection_by_itself() -> None:
    """A full collection between two freezes was a 0.2-0.4 s pause (the latency p99); young
    collections go on as before."""
    saved = gc.get_threshold()
    started: list[int] = []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.set_threshold(50, 2, 2)  # without the switch: a full collection every few young ones
    gc.callbacks.append(note)
    try:
        no_automatic_full_collections()
        assert gc.get_threshold() == (50, 2, FULL_COLLECTIONS_OFF)
        kept = [[n] for n in range(200_000)]  # containers that grow old: a full one is due
        assert len(kept) == 200_000
        assert started.count(0) > 100  # young collections still run
        assert 2 not in started
    finally:
        gc.callbacks.remove(note)
        gc.set_threshold(*saved)
