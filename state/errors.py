"""Errors of the Redis-backed stores."""

from __future__ import annotations

from livesegments_error import LiveSegmentsError

__all__ = ["FencedError", "StateError"]


class StateError(LiveSegmentsError):
    """Stored state cannot be read or written as expected."""


class FencedError(StateError):
    """Another writer committed to this shard since we loaded it: we no longer own it."""

    def __init__(self, shard: str, expected: int, found: int) -> None:
        super().__init__(
            f"commit to {shard} refused: expected version {expected}, found {found}; "
            "another worker owns this shard now (rebalance), reload before writing"
        )
        self.shard = shard
        self.expected = expected
        self.found = found
