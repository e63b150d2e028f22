"""Keep the garbage collector's full collections off the owned customers' profiles.

A worker caches up to `profile_cache_size` profiles per partition: hundreds of thousands of
long-lived objects that CPython's full collections would traverse again and again (0.4-0.5 s
each with ~80k profiles). Profiles hold no reference cycles (they are freed by reference
counting when evicted), so once enough of them arrived they are moved out of the collector's
reach with `gc.freeze()`, after a young collection so no cyclic garbage is frozen with them.

Every committed profile counts, not only those new to the cache: applying an event to a cached
profile makes long-lived objects too (the record, its properties, index entries), and left to
the collector they pile up in its oldest generation, which every full collection traverses
(pauses of 0.2 s in the engine-only benchmark when only new profiles counted).
"""

from __future__ import annotations

import gc

__all__ = ["ProfileFreezer"]

FREEZE_EVERY = 5_000
"""Profiles taken in between two freezes."""


class ProfileFreezer:
    """Counts the profiles a worker committed and freezes the heap every `every` of them."""

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self.every = every
        self.pending = 0
        self.freezes = 0

    def took(self, profiles: int) -> None:
        self.pending += profiles
        if self.pending >= self.every:
            self.freeze()

    def freeze(self) -> None:
        gc.collect(1)
        gc.freeze()
        self.pending = 0
        self.freezes += 1
