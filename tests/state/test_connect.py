"""REDIS_URL -> client: one server or a Redis Cluster.

No server is needed: the asyncio clients connect lazily (the blocking cluster client connects
when built, so the cluster pass of ./test.sh covers it: every fixture builds one)."""

from __future__ import annotations

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from state.connect import RedisUrlError, connect, connect_sync, is_cluster


def test_a_redis_url_gives_the_plain_client_as_before() -> None:
    client = connect("redis://127.0.0.1:1/3")
    assert type(client) is Redis
    assert client.connection_pool.connection_kwargs["db"] == 3
    assert type(connect_sync("redis://127.0.0.1:1/0")) is redis.Redis
    assert not is_cluster("redis://127.0.0.1:6379/0")
    assert not is_cluster("rediss://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    "url",
    ["redis+cluster://127.0.0.1:1/", "REDIS+CLUSTER://127.0.0.1:1", "rediss+cluster://h:1/0"],
)
def test_cluster_urls_are_recognised(url: str) -> None:
    assert is_cluster(url)


def test_every_listed_node_is_a_startup_node_with_the_credentials() -> None:
    url = "redis+cluster://app:s%40cret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002/"
    client = connect(url)
    assert isinstance(client, RedisCluster)
    nodes = [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()]
    assert sorted(nodes) == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    kwargs = client.connection_kwargs
    assert (kwargs["username"], kwargs["password"]) == ("app", "s@cret")


def test_rediss_cluster_uses_tls() -> None:
    client = connect("rediss+cluster://10.0.0.1:7000/")
    assert isinstance(client, RedisCluster)
    assert client.connection_kwargs.get("connection_class").__name__ == "SSLConnection"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://127.0.0.1:7000/2", "database 0 only"),
        ("redis+cluster://127.0.0.1:7000/?timeout=1", "options"),
        ("redis+cluster://127.0.0.1/", "not host:port"),
        ("redis+cluster:///", "not host:port"),
        ("redis+cluster://127.0.0.1:7000,:7001/", "not host:port"),
    ],
)
def test_a_bad_cluster_url_is_refused_with_what_and_where(url: str, says: str) -> None:
    with pytest.raises(RedisUrlError, match=says) as raised:
        connect(url)
    assert raised.value.code == "bad_redis_url"
    assert "REDIS_URL" in raised.value.message


def test_the_password_is_masked_in_the_error() -> None:
    with pytest.raises(RedisUrlError) as raised:
        connect_sync("redis+cluster://app:hunter2@127.0.0.1:7000/5")
    assert "hunter2" not in raised.value.message
    assert "***@127.0.0.1:7000" in raised.value.message
