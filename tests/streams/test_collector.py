"""ProfileFreezer: cached profiles leave the collector's reach every so many."""

from __future__ import annotations

import gc
from typing import Any, cast

from state import Profile
from streams.engine.collector import ProfileFreezer
from streams.engine.runtime import _Owner


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


def test_profiles_committed_again_count_toward_a_freeze() -> None:
    """A cached customer's new event makes long-lived objects too: every commit counts."""
    freezer = ProfileFreezer(every=4)
    owner = _Owner(cast(Any, None), cast(Any, None), cast(Any, None), 0, 10, freezer)
    profile = Profile("c1")
    try:
        for _ in range(3):
            owner.remember([profile])
        assert len(owner.cache) == 1 and freezer.freezes == 0 and freezer.pending == 3
        owner.remember([profile])
        assert freezer.freezes == 1
    finally:
        gc.unfreeze()
