"""The one place that turns `REDIS_URL` into a client: one Redis, or a Redis Cluster.

* ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, ``unix://``): one server,
  redis-py's ``Redis.from_url``, exactly as before.
* ``redis+cluster://[user:password@]host:port[,host:port...]/`` (``rediss+cluster://`` for
  TLS): a Redis Cluster. The listed nodes are only where discovery starts; the client learns
  every master and its slots from them and follows MOVED/ASK redirections. A cluster has one
  database only, so the path must be empty or ``/0``.

Every key of one atomic write shares a hash tag (`state.keys`), so each Lua script and each
transaction touches one slot, as a cluster requires. The cluster client is returned under the
single-server type: both implement the same command methods, and the cluster-only differences
(SCAN visiting every master, DEL/UNLINK split per slot, pipelines grouped per node) are handled
inside redis-py's cluster client.

Failover (issue 10): redis-py refreshes its slot map after a connection error, but each
refresh also re-reads the server's command table (COMMAND) from the *default node*, the first
master of its map. While a dead master still owns its slots (before its replica is promoted),
that default node may be the dead one: every refresh then fails, so commands to the healthy
masters stall too. `_CommandTable` reads COMMAND once (its answer does not change with the
topology), from any reachable master, so a refresh needs CLUSTER SLOTS only, from any of the
cluster's nodes.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.cluster
from redis._parsers import AsyncCommandsParser
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterNode as AsyncClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.cluster import PRIMARY
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._packer import HiredisConnection
from .errors import StateError

__all__ = [
    "CLUSTER_SCHEMES",
    "RedisUrlError",
    "connect",
    "connect_sync",
    "is_cluster",
    "transaction",
]

CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
"""Scheme -> whether it uses TLS."""


class RedisUrlError(StateError):
    """`REDIS_URL` cannot name a Redis server or a Redis Cluster."""

    code = "bad_redis_url"


def is_cluster(url: str) -> bool:
    """True when `url` names a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``)."""
    return url.partition("://")[0].lower() in CLUSTER_SCHEMES


def _masked(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}" if "@" in rest else url


def _cluster_options(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The start-up nodes and the client options of a ``redis+cluster://`` URL."""
    parts = urlsplit(url)
    where = f"REDIS_URL {_masked(url)!r}"
    if parts.path not in ("", "/", "/0"):
        raise RedisUrlError(
            f"{where} selects database {parts.path.lstrip('/')!r}, but a Redis Cluster has "
            "database 0 only; end the URL with '/' (or '/0')"
        )
    if parts.query or parts.fragment:
        raise RedisUrlError(
            f"{where} has options ({parts.query or parts.fragment!r}) that a cluster URL does "
            "not take; give only redis+cluster://[user:password@]host:port[,host:port]/"
        )
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise RedisUrlError(
                f"{where} has a node {item!r} that is not host:port; list at least one node "
                "as redis+cluster://host:port[,host:port]/"
            )
        nodes.append((host.strip("[]"), int(port)))
    options: dict[str, Any] = {}
    if credentials:
        user, _, password = credentials.partition(":")  # as redis-py reads redis:// URLs
        if user:
            options["username"] = unquote(user)
        if password:
            options["password"] = unquote(password)
    if CLUSTER_SCHEMES[parts.scheme.lower()]:
        options["ssl"] = True
    return nodes, options


class _CommandTable(AsyncCommandsParser):
    """The cluster client's command table, read once from any reachable master.

    redis-py reads it again on every slot-map refresh, from the default node only; after a
    master died that node can be the dead one, and the refresh fails for every command.
    """

    def __init__(self, cluster: AsyncRedisCluster) -> None:
        super().__init__()
        self._cluster = cluster

    async def initialize(self, node: AsyncClusterNode | None = None) -> None:
        if self.commands:
            return  # COMMAND's answer does not depend on which master is alive
        manager = self._cluster.nodes_manager
        candidates = [n for n in (node, *manager.get_nodes_by_server_type(PRIMARY)) if n]
        failure: Exception | None = None
        for candidate in dict.fromkeys(candidates):
            try:
                await super().initialize(candidate)
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                failure = exc
                continue
            return
        if failure is not None:
            raise failure
        await super().initialize(node)  # no master known yet: redis-py's own error


def connect(url: str, **options: Any) -> Redis:
    """An asyncio client for `url` (one server or a cluster); `options` go to redis-py. A
    plain TCP server's commands are packed by hiredis (`HiredisConnection`)."""
    if not is_cluster(url):
        if url.startswith("redis://") and "connection_class" not in options:
            options = {**options, "connection_class": HiredisConnection}
        return Redis.from_url(url, **options)
    nodes, parsed = _cluster_options(url)
    startup = [AsyncClusterNode(host, port) for host, port in nodes]
    cluster = AsyncRedisCluster(startup_nodes=startup, **parsed, **options)
    cluster.commands_parser = _CommandTable(cluster)
    return cast(Redis, cluster)


async def transaction(redis: Redis) -> Pipeline:
    """A MULTI/EXEC pipeline of `redis`; on a cluster, its client is initialised first.

    redis-py's asyncio cluster queues each command of a transaction from a thread that runs
    an event loop of its own (`TransactionStrategy.execute_command`). A client that must
    (re)initialise then (never used yet, or after a connection error) does so in that
    short-lived loop, and its connections stay bound to it: "Future attached to a different
    loop", then "Event loop is closed". Initialised here, in the caller's loop, with no await
    before the commands are queued, the thread only queues them.
    """
    if isinstance(redis, AsyncRedisCluster):
        await redis.initialize()
    return redis.pipeline(transaction=True)


def connect_sync(url: str, **options: Any) -> redis.Redis:
    """A blocking client for `url` (tools, benchmarks, tests); `options` go to redis-py."""
    if not is_cluster(url):
        return redis.Redis.from_url(url, **options)
    nodes, parsed = _cluster_options(url)
    startup = [redis.cluster.ClusterNode(host, port) for host, port in nodes]  # type: ignore[no-untyped-call]
    cluster = redis.cluster.RedisCluster(startup_nodes=startup, **parsed, **options)
    return cast(redis.Redis, cluster)
