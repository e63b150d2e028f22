"""A Redis client whose MGETs, EVALSHAs and ZRANGEBYSCOREs of one event-loop turn go out in one
write, on a connection of its own, pipelined.

At a low event rate each events partition applies a small batch at a time, and every batch
costs the worker two Redis round trips of its own (the MGET of uncached profiles, the fenced
commit's EVALSHA); and every partition's expiry poll reads its due timers (ZRANGEBYSCORE) and
trims its outbox (`state.outbox`'s EVALSHA). Partitions whose batches start in the same loop
turn reach those calls in the same turn: `TurnRedis` queues them and, at the end of the turn,
writes them at once to the one connection it holds (`_Line`), as a non-transactional pipeline
would; one reader task per connection reads the replies in the order the commands were written
and hands each to its caller. A turn's commands are written without waiting for an earlier
turn's replies.

Why not redis-py's pipeline: at 1,000 events/s a round trip there cost the worker ~190-250 µs
of CPU (the pool's connection get and release, the retry wrapper, `wait_for`'s task around the
write, a timeout context per reply, the pipeline object), against ~40-60 µs for the same two
commands written and read on a held connection (`docs/performance.md`, session 12).

Nothing else changes: each command is still its own command, so each partition's fenced commit
succeeds or fails on its own (a `FENCED` reply, a missing script, a Lua error reach only the
caller that sent it, as redis-py's exceptions); a lost connection, or a reply later than the
client's `socket_timeout`, fails every command written and not answered on that connection
(redis-py's `ConnectionError` / `TimeoutError`, infrastructure failures the callers retry), and
the next turn opens another. Redis executes a connection's commands in order, each atomically,
as separate round trips would have been; no caller has two commands in flight (each awaits its
reply), so the order between turns does not matter.

A large command goes alone, at once, through redis-py (`ALONE_ARGS`, `ALONE_BYTES`): a
backfill chunk's MGET of thousands of profiles or its commit gains nothing from sharing a write,
and behind it every later caller would wait for the largest reply (a full benchmark run on a
loaded machine, before this rule: the catch-up task's chunks of four partitions in one
pipeline, "Timeout reading from" Redis, retried).

Only for one Redis server: a cluster's client groups a pipeline's commands per node itself, and
`turn_client` returns it unchanged.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["ALONE_ARGS", "ALONE_BYTES", "TurnRedis", "turn_client"]

ALONE_ARGS = 1_000
"""A command with more arguments than this (keys, or the commit's keys and payload) is sent on
its own: the events path's batches (a few keys, one commit) share the turn's write."""

ALONE_BYTES = 128 * 1024
"""Likewise a command whose arguments hold more bytes than this (a large commit's payload)."""

Pending = list[tuple[tuple[Any, ...], "asyncio.Future[Any]"]]


def _alone(command: tuple[Any, ...]) -> bool:
    if len(command) > ALONE_ARGS:
        return True
    size = 0
    for arg in command:
        if isinstance(arg, (bytes, str)):
            size += len(arg)
    return size > ALONE_BYTES


def _fail(futures: Any, exc: BaseException) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(exc)


class _Line:
    """One connection taken from the pool: commands written at once, replies read in order."""

    def __init__(self, conn: AbstractConnection, release: Any) -> None:
        self.conn = conn
        self._release = release
        self.waiting: deque[asyncio.Future[Any]] = deque()
        """The callers of the commands written and not answered yet, in write order."""
        self.broken = False
        self._reader: asyncio.Future[None] | None = None

    def usable(self) -> bool:
        conn = self.conn
        if self.broken or not conn.is_connected:
            return False
        return not (conn._writer.transport.is_closing() or conn._reader.at_eof())  # type: ignore[union-attr]

    def write(self, commands: list[tuple[Any, ...]], futures: list[asyncio.Future[Any]]) -> None:
        conn = self.conn
        pack = conn.pack_command  # hiredis's packing (`state._packer`), one buffer a command
        conn._writer.writelines([chunk for command in commands for chunk in pack(*command)])  # type: ignore[union-attr]
        self.waiting.extend(futures)
        if self._reader is None:
            self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        conn, waiting = self.conn, self.waiting
        parser: Any = conn._parser
        timeout = conn.socket_timeout
        try:
            while waiting:
                async with asyncio.timeout(timeout):
                    reply = await parser.read_response()
                future = waiting.popleft()
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)  # the command's own error reply
                else:
                    future.set_result(reply)
        except BaseException as exc:
            await self.close(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._reader = None

    async def close(self, exc: BaseException) -> None:
        """Fail what waits on this connection (as redis-py would say it), give it back."""
        if self.broken:
            return
        self.broken = True
        host = conn_host(self.conn)
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            error: BaseException = RedisTimeoutError(f"Timeout reading from {host}")
        elif isinstance(exc, RedisError | asyncio.CancelledError):
            error = exc
        else:
            error = RedisConnectionError(f"Error while reading from {host}: {exc!r}")
        waiting, self.waiting = list(self.waiting), deque()
        _fail(waiting, error)
        try:
            await self.conn.disconnect(nowait=True)
        finally:
            await self._release(self.conn)


def conn_host(conn: AbstractConnection) -> str:
    host = getattr(conn, "host", None)
    return f"{host}:{getattr(conn, 'port', '')}" if host else type(conn).__name__


class TurnRedis(Redis):
    """`Redis` on another client's connection pool, with MGET, EVALSHA and ZRANGEBYSCORE
    coalesced per turn and written on a connection it holds."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(connection_pool=redis.connection_pool)
        self._pending: Pending = []
        self._line: _Line | None = None
        self._opening = asyncio.Lock()
        self._tasks: set[asyncio.Future[None]] = set()

    async def mget(self, keys: Any, *args: Any) -> Any:
        names = [keys] if isinstance(keys, (str, bytes)) else list(keys)
        return await self._queued("MGET", *names, *args)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self._queued("EVALSHA", sha, numkeys, *keys_and_args)

    async def zrangebyscore(
        self,
        name: Any,
        min: Any,
        max: Any,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Any = float,
    ) -> Any:
        """The members alone (the expiry poll's due customers) share the turn's write; with
        their scores, or a half-given `LIMIT`, redis-py's own call (its reply parsing, its
        error)."""
        if withscores or (start is None) != (num is None):
            return await super().zrangebyscore(
                name, min, max, start, num, withscores, score_cast_func
            )
        limit = () if start is None else ("LIMIT", start, num)
        return await self._queued("ZRANGEBYSCORE", name, min, max, *limit)

    async def _queued(self, *command: Any) -> Any:
        if _alone(command):
            return await self.execute_command(*command)  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((command, future))
        if len(self._pending) == 1:  # the first of this turn: write them all once it ends
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        line = self._line
        if line is not None and line.usable():
            try:
                self._write(line, pending)
            except Exception as exc:  # the transport refused the write: this turn fails
                _fail((future for _, future in pending), exc)
                self._spawn(line.close(exc))
            return
        self._spawn(self._open_and_write(pending))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _write(self, line: _Line, pending: Pending) -> None:
        """Write one turn's commands (the counted step: `tests/state/test_turn.py`)."""
        line.write([command for command, _ in pending], [future for _, future in pending])

    async def _open_and_write(self, pending: Pending) -> None:
        """Take a connection from the pool (the previous one broke, or the first turn)."""
        try:
            async with self._opening:
                line = self._line
                if line is None or not line.usable():
                    if line is not None:
                        await line.close(RedisConnectionError("connection closed"))
                    self._line = None
                    pool = self.connection_pool
                    line = self._line = _Line(await pool.get_connection(), pool.release)  # type: ignore[no-untyped-call]
                self._write(line, pending)
        except BaseException as exc:  # no connection: every command of the turn fails
            _fail((future for _, future in pending), exc)
            if isinstance(exc, asyncio.CancelledError):
                raise


def turn_client(redis: Redis) -> Redis:
    """A `TurnRedis` sharing `redis`'s connections, or `redis` itself for a cluster."""
    if isinstance(redis, RedisCluster) or not isinstance(redis, Redis):
        return redis
    return TurnRedis(redis)
