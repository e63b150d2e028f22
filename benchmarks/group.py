"""When the worker processes' consumer group has settled, for a `--workers N` measurement.

N workers started together join the group one after the other: the first may own every
partition for seconds before a rebalance gives the others theirs. A window measured before
that is one worker's figure under another name. The group counts as settled once every worker
reports events partitions in its `/health`, together all of them and none twice, and the
assignment stayed the same for `stable_s`. On a loaded machine a worker's `/health` may not
answer within the poll's timeout: once the assignment seen is spread, a poll with a missing
answer is skipped (neither a change nor a settle), so a slow answer does not restart the wait.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["GroupSettle", "is_spread"]


def is_spread(assignments: Sequence[Sequence[int] | None], partitions: int) -> bool:
    """True if every worker owns at least one partition, and each partition one worker."""
    if not assignments or any(not owned for owned in assignments):
        return False
    owned = [p for parts in assignments if parts for p in parts]
    return sorted(owned) == list(range(partitions))


class GroupSettle:
    """Polls the workers' assignments (at most every `every_s`) until the group settled."""

    def __init__(
        self,
        assignments: Callable[[], list[list[int] | None]],
        partitions: int,
        stable_s: float = 1.0,
        every_s: float = 0.25,
    ) -> None:
        self._assignments = assignments
        self._partitions = partitions
        self._stable_s = stable_s
        self._every_s = every_s
        self._last_poll = float("-inf")
        self._since: float | None = None
        self.current: list[list[int] | None] = []
        self.settled_at: float | None = None
        self.changes = 0
        """How many times the assignment seen changed (rebalances observed)."""

    def poll(self, now: float) -> bool:
        """Look again if it is time; True once the group settled (then stays True)."""
        if self.settled_at is not None:
            return True
        if now - self._last_poll < self._every_s:
            return False
        self._last_poll = now
        seen = self._assignments()
        if None in seen and self._since is not None:
            return False  # a worker did not answer in time: no news, not a rebalance
        if seen != self.current:
            self.changes += 1
            self.current = seen
            self._since = now if is_spread(seen, self._partitions) else None
            return False
        if self._since is not None and now - self._since >= self._stable_s:
            self.settled_at = now
        return self.settled_at is not None
