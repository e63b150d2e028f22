"""Keep the garbage collector's full collections off the owned customers' profiles.

A worker caches up to `profile_cache_size` profiles per partition: hundreds of thousands of
long-lived objects that CPython's full collections would traverse again and again (0.4-0.5 s
each with ~80k profiles). Profiles hold no reference cycles (they are freed by reference
counting when evicted), so once enough of them arrived they are moved out of the collector's
reach with `gc.freeze()`, at the end of a young collection so no cyclic garbage is frozen with
them.

Rewrites count as well as new profiles: every event replaces objects of a cached profile, and
those young objects reach the old generation, which then grows until a full collection
traverses it (measured: 0.1-0.6 s pauses at 1,000 events/s with 5,000 cached customers, the
p99 of the latency figure). Freezing every `every` writes keeps the old generation small.
The worker also freezes once, after a full collection, before it reads events (faust's and
the libraries' objects: a 0.3-0.6 s full collection otherwise). The cost: an object alive at a
freeze that later becomes garbage inside a reference cycle stays until the process ends
(acyclic garbage, profiles included, is still freed by reference counting).
"""

from __future__ import annotations

import gc
import time

from .stages import STAGES

__all__ = [
    "FORCE_AFTER",
    "FREEZE_EVERY",
    "FULL_COLLECTIONS_OFF",
    "ProfileFreezer",
    "no_automatic_full_collections",
]

FREEZE_EVERY = 1_000
"""Profiles taken in between two freezes. What was written since the last freeze is what a full
collection traverses: during a 100k-customer preload on a busy machine, full collections took
0.14-0.44 s with 5,000 and 0.09-0.12 s with 1,000 (stage timings, wall time at load ~10). A
due freeze waits for CPython's next collection of the young generations (`ProfileFreezer`)."""


FORCE_AFTER = 4
"""A due freeze that saw no young collection for this many times `every` profile writes
collects the young generations itself (the collector was disabled)."""

FULL_COLLECTIONS_OFF = 1 << 30
"""The oldest generation's threshold that keeps CPython from ever starting a full collection by
itself (it counts young-generation collections against it: years at a worker's rate)."""


def no_automatic_full_collections() -> None:
    """Leave the young collections as they are, but never start a full one automatically.

    Freezing every `FREEZE_EVERY` profile writes keeps the old generation small, yet CPython still
    started full collections between two freezes: 0.2-0.43 s each in a latency phase at 1,000
    events/s right after a restart (four in 20 s, stage timings `gc2`, load ~8), every one the
    p99. What they would reclaim is cyclic garbage that outlived two young collections; the next
    freeze moves such garbage out of the collector's reach anyway (see the module's note), so
    turning them off costs no more memory than freezing already does. The worker calls it once,
    before it reads events (`agents.events.register`)."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTIONS_OFF)


class ProfileFreezer:
    """Counts the profiles a worker wrote to its cache (new or rewritten: a rewrite leaves young
    objects that would reach the old generation too) and freezes the heap every `every`.

    A due freeze waits for CPython's own next collection of the young generations (a gc
    callback): at its end they were just traversed, and what survived sits in the old
    generation, so `gc.freeze()` then takes no garbage the collection could have found, as a
    `gc.collect(1)` of its own before the freeze would (what this did until session 16: a
    second young collection, 6-11 ms p50 and up to 16 ms in a latency phase at 1,000 events/s,
    stage timings `freeze`, about every two seconds per worker). When the young generations
    are not collected (the collector disabled) for `FORCE_AFTER` times `every` writes, the
    freeze collects them itself."""

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self.every = every
        self.pending = 0
        self.freezes = 0
        self._watching = False

    def took(self, profiles: int) -> None:
        self.pending += profiles
        if self.pending < self.every:
            return
        if self.pending >= self.every * FORCE_AFTER:
            self.freeze()
        elif not self._watching:  # from now on: the callback freezes when one is due
            self._watching = True
            gc.callbacks.append(self._after_collection)

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] >= 1 and self.pending >= self.every:
            started = time.monotonic()
            gc.freeze()
            self._frozen(started)

    def freeze(self, full: bool = False) -> None:
        """Move what lives now out of the collector's reach (after a young collection, or a
        full one: once at start-up, so faust's and the libraries' objects go too)."""
        started = time.monotonic()
        self.pending = 0  # the callback has nothing to do in this collection
        if full:
            gc.collect()
        else:
            gc.collect(1)
        gc.freeze()
        self._frozen(started)

    def _frozen(self, started: float) -> None:
        self.pending = 0
        self.freezes += 1
        STAGES.add("freeze", time.monotonic() - started)

    def close(self) -> None:
        """Stop watching the collector's collections (the worker's runtime stops)."""
        if self._watching:
            self._watching = False
            gc.callbacks.remove(self._after_collection)
