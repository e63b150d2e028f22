"""A private 3-broker Kafka cluster (KRaft) and Redis for the cluster tests.

Started through `scripts/services.sh start kafka-cluster` on free loopback ports, in its own
directory under .local/private/; a broker can be SIGKILLed and brought back (`start` restarts
only the nodes that are down). Everything is stopped and removed by `close()`.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections import Counter

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tests.private_services import PrivateServices

__all__ = ["PrivateCluster"]

NODES = (1, 2, 3)


def _free_block(size: int) -> int:
    """A base port with `size` consecutive ports free on the loopback."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000 - size)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + size):
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {size} consecutive free ports found")


def _gone(pid: int) -> bool:
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    return state.returncode != 0 or state.stdout.strip().startswith("Z")


class PrivateCluster(PrivateServices):
    """Three Kafka nodes (each broker and controller, RF 3 / min ISR 2) and one Redis."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.broker_base = _free_block(len(NODES))
        self.controller_base = _free_block(len(NODES))
        self.kafka_bootstrap = ",".join(f"127.0.0.1:{self.broker_base + n - 1}" for n in NODES)

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "LS_KAFKA_CLUSTER_PORT": str(self.broker_base),
            "LS_KAFKA_CLUSTER_CONTROLLER_PORT": str(self.controller_base),
        }

    def start_all(self) -> None:
        self.start("redis")
        self.start("kafka-cluster")

    def pid(self, node: int) -> int | None:
        path = self.dir / "kafka-cluster" / f"node-{node}" / "kafka.pid"
        return int(path.read_text()) if path.exists() else None

    def kill_broker(self, node: int) -> None:
        """SIGKILL one node (no controlled shutdown) and wait until the process is gone."""
        pid = self.pid(node)
        assert pid is not None, f"node {node} has no pid file"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not _gone(pid):
            assert time.monotonic() < deadline, f"node {node} (pid {pid}) did not die"
            time.sleep(0.05)

    def restart_brokers(self) -> None:
        """Start the nodes that are down; returns once all three brokers are in the cluster."""
        self.start("kafka-cluster")

    def leaders(self, topic: str) -> dict[int, int]:
        """partition -> node id of its leader."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap.split(","))
        try:
            described = admin.describe_topics([topic])[0]
            return {p["partition_index"]: p["leader_id"] for p in described["partitions"]}
        finally:
            admin.close()

    def busiest_leader(self, topic: str) -> int:
        """The node that leads most partitions of `topic`."""
        return Counter(self.leaders(topic).values()).most_common(1)[0][0]

    def replicas(self, topic: str) -> dict[int, tuple[list[int], list[int]]]:
        """partition -> (node ids of its replicas, node ids of its in-sync replicas)."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap.split(","))
        try:
            described = admin.describe_topics([topic])[0]
            return {
                p["partition_index"]: (sorted(p["replica_nodes"]), sorted(p["isr_nodes"]))
                for p in described["partitions"]
            }
        finally:
            admin.close()

    def topic_config(self, topic: str, name: str) -> str | None:
        """One configuration value of `topic` (None when the topic does not set it)."""
        admin = KafkaAdminClient(bootstrap_servers=self.kafka_bootstrap.split(","))
        try:
            found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            entry = found["topic"][topic].get(name)
            return None if entry is None else str(entry["value"])
        finally:
            admin.close()

    def close(self) -> None:
        for node in NODES:
            pid = self.pid(node)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._script("stop", "kafka-cluster")
        super().close()
