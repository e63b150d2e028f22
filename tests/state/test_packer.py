"""Commands packed by hiredis: the bytes redis-py's own asyncio packer gives, on the wire too."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection, SSLConnection

from state import KeySpace
from state._packer import HiredisConnection
from state.connect import connect

from ..hypothesis_profiles import examples

names = st.one_of(
    st.sampled_from(["MGET", "SET", "CONFIG GET", "EVALSHA", "HSET"]),
    st.sampled_from([b"MGET", b"CLIENT  SETNAME", b"ZADD"]),
)
plain = st.one_of(st.text(max_size=20), st.binary(max_size=40), st.integers(-(2**70), 2**70))
other = st.one_of(st.floats(allow_nan=False), st.booleans(), st.none(), st.just(memoryview(b"v")))


def _packed(connection: Connection, args: tuple[Any, ...]) -> bytes | type[BaseException]:
    try:
        return b"".join(bytes(part) for part in connection.pack_command(*args))
    except Exception as exc:
        return type(exc)


@settings(max_examples=examples(500), deadline=None)
@given(names, st.lists(st.one_of(plain, plain, plain, other), max_size=12))
@example("MGET", ["a", b"b", 2**64, -3, "é"])
@example(b"CLIENT  SETNAME", ["x"])
def test_hiredis_packs_the_bytes_of_redis_pys_packer(name: str | bytes, rest: list[Any]) -> None:
    """Any command name (with literal arguments after a space), str, bytes and int of any size;
    other arguments (float, bool, None, memoryview) take redis-py's packer and its errors."""
    args = (name, *rest)
    assert _packed(HiredisConnection(), args) == _packed(Connection(), args)


def test_only_a_plain_redis_url_gets_the_hiredis_packer() -> None:
    assert connect("redis://127.0.0.1:1/0").connection_pool.connection_class is HiredisConnection
    tls = connect("rediss://127.0.0.1:1/0").connection_pool.connection_class
    assert tls is SSLConnection
    chosen = connect("redis://127.0.0.1:1/0", connection_class=Connection)
    assert chosen.connection_pool.connection_class is Connection


async def test_commands_packed_by_hiredis_round_trip(aredis: Redis, keyspace: KeySpace) -> None:
    """A real server reads what hiredis packed: text, bytes, numbers, thousands of keys. On
    the Redis Cluster pass (`REDIS_URL` a cluster) it does not apply: `connect` leaves a
    cluster's client with redis-py's own packer."""
    if isinstance(aredis, RedisCluster):
        pytest.skip("the hiredis packer is for a plain redis:// client; a cluster's is as it is")
    assert aredis.connection_pool.connection_class is HiredisConnection
    keys = [f"{{{keyspace.prefix}:p0}}:k{n}:é" for n in range(3000)]
    values: list[Any] = [b"\x00\xc1bin", "texté", 2**62, -1]
    await aredis.mset({k: values[n % 4] for n, k in enumerate(keys)})  # hiredis packs it
    expected = [v if isinstance(v, bytes) else str(v).encode() for v in values]
    assert await aredis.mget(keys) == [expected[n % 4] for n in range(len(keys))]
    await aredis.set(keys[0], 0.5)  # a float: redis-py's packer
    assert await aredis.get(keys[0]) == b"0.5"
