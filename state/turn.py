"""A Redis client whose MGETs and EVALSHAs of one event-loop turn go out as one pipeline.

At a low event rate each events partition applies a small batch at a time, and every batch
costs the worker two Redis round trips of its own (the MGET of uncached profiles, the fenced
commit's EVALSHA). Partitions whose batches start in the same loop turn reach those calls in
the same turn: `TurnRedis` queues them and sends them together at the end of the turn, as one
non-transactional pipeline (one write, one read, one wake-up of the loop), instead of one
round trip each on a connection of its own.

Nothing else changes: each command is still its own command, so each partition's fenced
commit succeeds or fails on its own (a `FENCED` reply, a missing script, a Lua error reach
only the caller that sent it); a connection error fails every command of the pipeline, and
each caller sees it as it would have seen it alone. A turn with one command sends it alone.
Redis executes a pipeline's commands in order, each atomically, as separate round trips would
have been.

A large command goes alone, at once (`ALONE_ARGS`, `ALONE_BYTES`): a backfill chunk's MGET of
thousands of profiles or its commit gains nothing from sharing a round trip, and in a pipeline
every caller of the turn would wait for the largest reply, then decode at once what would have
come apart (a full benchmark run on a loaded machine, before this rule: the catch-up task's
chunks of four partitions in one pipeline, "Timeout reading from" Redis, retried).

Only for one Redis server: a cluster's client groups a pipeline's commands per node itself, and
`turn_client` returns it unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

__all__ = ["ALONE_ARGS", "ALONE_BYTES", "TurnRedis", "turn_client"]

ALONE_ARGS = 1_000
"""A command with more arguments than this (keys, or the commit's keys and payload) is sent on
its own: the events path's batches (a few keys, one commit) share the turn's pipeline."""

ALONE_BYTES = 128 * 1024
"""Likewise a command whose arguments hold more bytes than this (a large commit's payload)."""


def _alone(command: tuple[Any, ...]) -> bool:
    if len(command) > ALONE_ARGS:
        return True
    size = 0
    for arg in command:
        if isinstance(arg, (bytes, str)):
            size += len(arg)
    return size > ALONE_BYTES


class TurnRedis(Redis):
    """`Redis` on another client's connection pool, with MGET and EVALSHA coalesced per turn."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(connection_pool=redis.connection_pool)
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Future[None]] = set()

    async def mget(self, keys: Any, *args: Any) -> Any:
        names = [keys] if isinstance(keys, (str, bytes)) else list(keys)
        return await self._queued("MGET", *names, *args)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self._queued("EVALSHA", sha, numkeys, *keys_and_args)

    async def _queued(self, *command: Any) -> Any:
        if _alone(command):
            return await self.execute_command(*command)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if len(self._pending) == 1:  # the first of this turn: send them all once it ends
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        sending = asyncio.ensure_future(self._send(pending))
        self._sending.add(sending)
        sending.add_done_callback(self._sending.discard)

    async def _send(self, pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        replies: list[Any]
        try:
            if len(pending) == 1:
                try:
                    replies = [await self.execute_command(*pending[0][0])]  # type: ignore[no-untyped-call]
                except Exception as exc:  # a reply error of the one command is its caller's
                    replies = [exc]
            else:
                pipe = self.pipeline(transaction=False)
                for command, _ in pending:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # no reply at all (connection lost, cancelled): all fail
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), reply in zip(pending, replies, strict=True):
            if future.done():  # its caller was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def turn_client(redis: Redis) -> Redis:
    """A `TurnRedis` sharing `redis`'s connections, or `redis` itself for a cluster."""
    if isinstance(redis, RedisCluster) or not isinstance(redis, Redis):
        return redis
    return TurnRedis(redis)
