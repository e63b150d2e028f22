"""ProfileFreezer: cached profiles leave the collector's reach every so many."""

from __future__ import annotations

import gc

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
