"""The cluster client of `state.connect` under a dead node and a fresh start (issue 10).

Each test has a private Redis Cluster of 3 masters on its own ports (never the shared one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from state.connect import connect, transaction

from ..private_redis_cluster import PrivateRedisCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster() -> Iterator[PrivateRedisCluster]:
    # a long node timeout: the cluster stays `ok` (no CLUSTERDOWN) while the test runs
    private = PrivateRedisCluster("connect-failover", replicas=0, node_timeout_ms=60_000)
    try:
        private.start()
        yield private
    finally:
        private.close()


def _key_on_each_master(cluster: PrivateRedisCluster) -> dict[int, str]:
    keys: dict[int, str] = {}
    for n in range(200):
        key = f"{{ls:p{n}}}:meta"
        keys.setdefault(cluster.master_of(key), key)
        if len(keys) == 3:
            return keys
    raise AssertionError(f"no key found on every master: {keys}")


def test_a_dead_default_node_does_not_stall_the_other_masters(
    cluster: PrivateRedisCluster,
) -> None:
    """redis-py reads COMMAND from its default node (the master of slot 0) whenever it
    (re)loads the slot map. With that master dead and its replica not promoted yet, a client
    starting (a worker restarted) or refreshing after an error failed every time, so the
    healthy masters' partitions stalled too (issue 10)."""
    keys = _key_on_each_master(cluster)

    async def run() -> None:
        first = connect(cluster.url)
        await first.ping()
        dead = int(first.get_default_node().port)  # type: ignore[attr-defined]
        await first.aclose()
        cluster.kill(dead)
        client = connect(cluster.url)  # lists every node, the dead one too
        try:
            for port, key in keys.items():
                if port != dead:
                    assert await client.hset(key, "x", 1) == 1, port
            with pytest.raises(RedisConnectionError):  # its slots have no master now
                await client.hset(keys[dead], "x", 1)
            for port, key in keys.items():  # and after that error's slot-map refresh
                if port != dead:
                    assert await client.hset(key, "x", 2) == 0, port
        finally:
            await client.aclose()

    asyncio.run(run())


def test_a_transaction_on_a_fresh_cluster_client_stays_in_the_callers_loop(
    cluster: PrivateRedisCluster,
) -> None:
    """redis-py queues a cluster transaction's commands from a thread with its own event loop;
    a client initialised there kept connections bound to that closed loop."""
    key = "{ls:registry}:trend:s"

    async def run() -> None:
        client: Redis = connect(cluster.url)
        try:
            pipe = await transaction(client)  # the first command of this client
            pipe.zadd(key, {"a": 1})
            pipe.zcard(key)
            assert await pipe.execute() == [1, 1]
            assert await client.zcard(key) == 1
        finally:
            await client.aclose()

    asyncio.run(run())
