"""TurnRedis on the real Redis: one turn's MGETs and commits share a write, each its own."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from state import (
    FencedError,
    KeySpace,
    OutboxRecord,
    PartitionBatch,
    PartitionMeta,
    PartitionStore,
    Profile,
)
from state.turn import ALONE_ARGS, ALONE_BYTES, TurnRedis, turn_client


@pytest.fixture
def server(aredis: Redis) -> Redis:
    """The one Redis server `TurnRedis` is for. On the Redis Cluster pass (`REDIS_URL` a
    cluster) these tests do not apply: `turn_client` leaves a cluster's client as it is
    (`test_a_cluster_client_is_left_as_it_is`), which groups a pipeline per node itself."""
    if isinstance(aredis, RedisCluster):
        pytest.skip("TurnRedis is for one Redis server; a cluster's client is used as it is")
    return aredis


class _Counting(TurnRedis):
    """Counts the commands of each write on its connection, and the commands sent by redis-py
    itself."""

    def __init__(self, redis: Redis) -> None:
        super().__init__(redis)
        self.pipelines: list[int] = []
        self.singles = 0

    def _write(self, line: Any, pending: Any) -> None:
        self.pipelines.append(len(pending))
        super()._write(line, pending)

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.singles += 1
        return await super().execute_command(*args, **options)


async def _commit_one(
    store: PartitionStore, meta: PartitionMeta, customer_id: str, offset: int
) -> int:
    batch = PartitionBatch(store.keys, meta)  # no await before the commit: one turn
    batch.profiles[customer_id] = Profile(customer_id, {"n": offset})
    batch.new_customers.append(customer_id)
    batch.offset = offset
    return await store.commit(meta.ver, batch)


async def test_commits_of_one_turn_share_a_pipeline_and_fail_on_their_own(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    stores = [PartitionStore(turn, keyspace, p) for p in range(4)]
    metas = [await store.load_meta() for store in stores]  # and each store's ordinal counter
    # partition 2 is fenced: another owner moved its version on
    await PartitionStore(server, keyspace, 2).claim(0)
    turn.pipelines.clear()
    results = await asyncio.gather(
        *(_commit_one(s, metas[p], f"c{p}", 10 + p) for p, s in enumerate(stores)),
        return_exceptions=True,
    )
    assert turn.pipelines == [4]  # the four EVALSHAs went out together
    assert [r if isinstance(r, int) else type(r) for r in results] == [1, 1, FencedError, 1]
    for p in range(4):
        meta = await PartitionStore(server, keyspace, p).load_meta()
        assert meta.offset == (-1 if p == 2 else 10 + p)
    # profile loads of one turn share one too, each caller gets its own partition's profiles
    turn.pipelines.clear()
    loaded = await asyncio.gather(
        *(s.load_profiles([f"c{p}", "nobody"]) for p, s in enumerate(stores))
    )
    assert turn.pipelines == [4]
    for p, (found, missing) in enumerate(loaded):
        assert missing is None
        assert (found is None) if p == 2 else (found is not None and found.attrs == {"n": 10 + p})


async def test_a_missing_script_is_loaded_and_the_commit_written_again(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    store = PartitionStore(turn, keyspace, 0)
    meta = await store.load_meta()
    await server.script_flush()  # the commit's EVALSHA finds no script: NOSCRIPT, then it loads
    turn.pipelines.clear()
    singles = turn.singles
    assert await _commit_one(store, meta, "c1", 5) == 1
    assert turn.pipelines == [1, 1]  # the EVALSHA refused, then again after SCRIPT LOAD
    assert turn.singles > singles
    (found,) = await store.load_profiles(["c1"])
    assert found is not None and found.attrs == {"n": 5}


async def test_a_lost_connection_fails_every_command_of_the_turn(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = TurnRedis(server)
    await turn.mget(["warm"])  # a connection in the pool
    broken = TurnRedis(Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=0.5))
    results = await asyncio.gather(broken.mget(["a"]), broken.mget(["b"]), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) or "Connect" in type(r).__name__ for r in results)
    assert await turn.mget(["a", "b"]) == [None, None]


def test_a_cluster_client_is_left_as_it_is() -> None:
    from redis.asyncio.cluster import RedisCluster

    cluster = RedisCluster.__new__(RedisCluster)  # no connection: only its type matters
    assert turn_client(cluster) is cluster  # type: ignore[arg-type]
    plain = Redis()
    assert isinstance(turn_client(plain), TurnRedis)


@pytest.mark.parametrize("keys", [["a"], "a"])
async def test_mget_takes_a_list_or_one_key(server: Redis, keys: Any) -> None:
    assert await TurnRedis(server).mget(keys) == [None]


async def test_a_large_command_goes_alone_and_the_small_ones_still_share(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    many = [f"{{{keyspace.prefix}}}:k{n}" for n in range(ALONE_ARGS + 1)]
    small = [turn.mget([f"{{{keyspace.prefix}}}:a"]), turn.mget([f"{{{keyspace.prefix}}}:b"])]
    big_keys, big_bytes = turn.mget(many), turn.evalsha("0" * 40, 0, b"x" * (ALONE_BYTES + 1))
    results = await asyncio.gather(*small, big_keys, big_bytes, return_exceptions=True)
    assert turn.pipelines == [2]  # the two small MGETs; the large ones went on their own
    assert results[:2] == [[None], [None]] and results[2] == [None] * len(many)
    assert isinstance(results[3], NoScriptError)


async def test_turns_written_before_the_earlier_replies_each_get_their_own(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    keys = [f"{{{keyspace.prefix}}}:t{n}" for n in range(6)]
    await server.mset({key: f"v{n}" for n, key in enumerate(keys)})

    async def later(turns: int, key: str) -> Any:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await turn.mget([key, keys[0]])

    results = await asyncio.gather(*(later(n, key) for n, key in enumerate(keys)))
    assert len(turn.pipelines) > 1  # written in several turns, before the first replies came
    assert results == [[f"v{n}".encode(), b"v0"] for n in range(6)]


async def test_a_cancelled_caller_leaves_the_next_reply_to_its_own_caller(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = TurnRedis(server)
    first, second = f"{{{keyspace.prefix}}}:first", f"{{{keyspace.prefix}}}:second"
    await server.mset({first: b"1", second: b"2"})
    cancelled = asyncio.ensure_future(turn.mget([first]))
    await asyncio.sleep(0)  # queued
    await asyncio.sleep(0)  # written: its reply is on its way
    cancelled.cancel()
    assert await turn.mget([second]) == [b"2"]
    assert cancelled.cancelled()


async def test_a_connection_killed_by_the_server_fails_its_commands_and_the_next_turn_reconnects(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = TurnRedis(server)
    key = f"{{{keyspace.prefix}}}:k"
    await server.set(key, b"v")
    assert await turn.mget([key]) == [b"v"]
    line = turn._line
    assert line is not None
    host, port = line.conn._writer.get_extra_info("sockname")[:2]  # type: ignore[union-attr]
    assert await server.client_kill(f"{host}:{port}")
    failures = 0
    for _ in range(3):
        try:
            reply = await asyncio.wait_for(turn.mget([key]), 10)  # never left waiting
        except RedisConnectionError:
            failures += 1
            continue
        break
    assert reply == [b"v"] and failures <= 1
    assert turn._line is not line


async def test_a_reply_later_than_the_socket_timeout_fails_the_waiting_commands() -> None:
    """A server that answers the connection's handshake and nothing else."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if b"MGET" not in data:
                writer.write(b"+OK\r\n" * data.count(b"*"))  # HELLO, CLIENT SETINFO, ...
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}", socket_timeout=0.2)
    turn = TurnRedis(client)
    try:
        results = await asyncio.wait_for(
            asyncio.gather(turn.mget(["a"]), turn.mget(["b"]), return_exceptions=True), 10
        )
        assert [type(r) for r in results] == [RedisTimeoutError, RedisTimeoutError]
        assert turn._line is not None and turn._line.broken
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_due_timers_of_one_turn_share_a_write_as_redis_py_reads_them(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    stores = [PartitionStore(turn, keyspace, p) for p in range(3)]
    for p, store in enumerate(stores):  # partition p: customers due at 10..10+p, one due later
        await server.zadd(store.keys.timers, {**{f"c{p}-{n}": 10 + n for n in range(p + 1)}})
        await server.zadd(store.keys.timers, {f"late{p}": 1_000})
    turn.pipelines.clear()
    singles = turn.singles
    due = await asyncio.gather(*(store.due_customers(100, 2) for store in stores))
    assert turn.pipelines == [3]  # the three partitions' polls went out together
    assert turn.singles == singles
    assert due == [["c0-0"], ["c1-0", "c1-1"], ["c2-0", "c2-1"]]  # the LIMIT of 2 holds
    for store in stores:  # what redis-py's own call reads
        key = store.keys.timers
        assert await turn.zrangebyscore(key, "-inf", 100) == await server.zrangebyscore(
            key, "-inf", 100
        )
        assert await turn.zrangebyscore(
            key, "-inf", 100, 0, 1, withscores=True
        ) == await server.zrangebyscore(key, "-inf", 100, 0, 1, withscores=True)
    assert turn.singles == singles + 3  # with scores: redis-py's call (its score parsing)


async def test_outbox_trims_share_the_turns_write_and_survive_a_script_flush(
    server: Redis, keyspace: KeySpace
) -> None:
    turn = _Counting(server)
    stores = [PartitionStore(turn, keyspace, p) for p in range(2)]
    epochs = []
    for store in stores:
        ver, epoch = await store.claim(0)
        batch = PartitionBatch(store.keys, await store.load_meta())
        batch.outbox.append(OutboxRecord("t", b"k", b"v"))
        await store.commit(ver, batch)
        epochs.append(epoch)
    await server.script_flush()  # the first trims find no script: NOSCRIPT, then it loads
    turn.pipelines.clear()
    trims = (s.trim_outbox(1, e) for s, e in zip(stores, epochs, strict=True))
    assert await asyncio.gather(*trims) == [True, True]
    # both refused together, then each again once it loaded the script
    assert turn.pipelines[0] == 2 and sum(turn.pipelines) == 4
    assert [await s.outbox() for s in stores] == [[], []]
