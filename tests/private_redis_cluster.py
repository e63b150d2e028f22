"""A private Redis Cluster for tests that kill a node (never the shared one).

Started by `scripts/services.sh start redis-cluster` on consecutive free loopback ports, in its
own directory under .local/private/; every node it started is stopped and its data removed
afterwards.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from state.connect import connect_sync

__all__ = ["PrivateRedisCluster"]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "services.sh"
BUS_OFFSET = 10_000
"""A cluster node also listens on its port + 10000 (the cluster bus)."""


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_range(count: int) -> int:
    """A first port such that `count` consecutive ports and their bus ports are free."""
    for _ in range(200):
        base = random.randrange(20_000, 30_000 - count)
        ports = range(base, base + count)
        if all(_free(p) and _free(p + BUS_OFFSET) for p in ports):
            return base
    raise RuntimeError("no free range of loopback ports for a private Redis Cluster")


class PrivateRedisCluster:
    """3 masters with AOF, and `replicas` replicas of each."""

    def __init__(self, name: str, replicas: int, node_timeout_ms: int = 5000) -> None:
        self.dir = ROOT / ".local" / "private" / f"{name}-{uuid.uuid4().hex[:6]}"
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.base = _free_range(3 * (1 + replicas))
        self.ports = list(range(self.base, self.base + 3 * (1 + replicas)))
        # every node: a client started while one of them is down still finds the cluster
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports) + "/"

    def _script(self, action: str) -> None:
        env = {
            **os.environ,
            "LS_SERVICES_DIR": str(self.dir),
            "LS_REDIS_CLUSTER_PORT": str(self.base),
            "LS_REDIS_REPLICAS": str(self.replicas),
            "LS_REDIS_CLUSTER_NODE_TIMEOUT_MS": str(self.node_timeout_ms),
        }
        done = subprocess.run(
            ["bash", str(SCRIPT), action, "redis-cluster"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {action} redis-cluster failed: {done.stderr[-2000:]}")

    def start(self) -> None:
        """Start the nodes that are down and create the cluster once; returns when it is ok."""
        self._script("start")

    def node_dir(self, port: int) -> Path:
        return self.dir / "redis-cluster" / str(port)

    def master_of(self, key: str) -> int:
        """The port of the master that serves `key`'s slot now."""
        client = connect_sync(self.url)
        try:
            node = client.get_node_from_key(key)  # type: ignore[attr-defined]
            return int(node.port)
        finally:
            client.close()

    def kill(self, port: int) -> None:
        """SIGKILL one node: no shutdown, no final AOF rewrite."""
        pid_file = self.node_dir(port) / "redis.pid"
        pid = int(pid_file.read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid_file.unlink()

    def wipe_data(self, port: int) -> None:
        """Remove a (stopped) node's data, keeping its identity and slots (nodes.conf)."""
        for path in self.node_dir(port).iterdir():
            if path.name not in ("nodes.conf", "redis.log"):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._script("stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
