"""Lua scripts called by their digest (`EVALSHA`), loaded into Redis when it lacks them.

redis-py's `AsyncScript` wrapper does the same, at ~5 µs of worker CPU a call more (an import,
argument tuples and a type check per call; `docs/performance.md`, session 13); and `EVAL` sends
the whole script every time. `EVALSHA` also goes through `state.turn.TurnRedis`'s shared write
of the loop turn, where `EVAL` went alone through redis-py's pool (~200 µs a round trip).
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

__all__ = ["Script"]


class Script:
    """A Lua script and its SHA-1 digest."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, numkeys: int, *keys_and_args: Any) -> Any:
        """`EVALSHA`; on `NOSCRIPT` (a Redis restarted or flushed since the last call) the
        script is loaded and called once more. Every other error reply is the caller's."""
        try:
            return await redis.evalsha(self.sha, numkeys, *keys_and_args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, numkeys, *keys_and_args)
