"""Several workers of one consumer group on the private cluster, with one client."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from tests.streams.fixtures import LOGS, Harness, WorkerProcess, free_port, unique_env

from .services import PrivateCluster

__all__ = ["Group"]

PARTITIONS = 6


class Group:
    """`Harness` runs the first worker and the client; `add()` starts more of the group."""

    def __init__(self, cluster: PrivateCluster, name: str, **extra: str) -> None:
        env = unique_env(
            cluster.kafka_bootstrap,
            cluster.redis_url,
            LS_EVENTS_PARTITIONS=str(PARTITIONS),
            LS_TOPIC_REPLICATION="3",
            LS_TOPIC_MIN_INSYNC="2",
            LS_BATCH_SIZE="50",
            LS_TASK_CHUNK="25",
            **extra,
        )
        self.name = name
        self.h = Harness(env, f"{name}-w1")
        self.workers: list[WorkerProcess] = [self.h.worker]

    def start(self) -> None:
        """Create the topics and start the first worker; returns once it answers commands."""
        self.h.start()

    def add(self) -> WorkerProcess:
        """Start one more worker of the group (its own HTTP port and data folder)."""
        env = {
            **self.h.env,
            "LS_WEB_PORT": str(free_port()),
            "LS_DATA_DIR": str(LOGS.parent / "cluster-workers" / uuid.uuid4().hex[:8]),
        }
        worker = WorkerProcess(env, f"{self.name}-w{len(self.workers) + 1}")
        worker.start()
        self.workers.append(worker)
        return worker

    def alive(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.alive()]

    @staticmethod
    def health(worker: WorkerProcess) -> dict[str, Any] | None:
        """The worker's /health body; None while it does not answer."""
        url = f"http://127.0.0.1:{worker.env['LS_WEB_PORT']}/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except OSError:
            return None

    def wait_assigned(self, timeout: float = 120) -> dict[str, list[int]]:
        """Wait until every live worker owns events partitions and together they own each
        partition exactly once (a settled rebalance); returns worker name -> partitions."""
        deadline = time.monotonic() + timeout
        owned: dict[str, list[int]] = {}
        while time.monotonic() < deadline:
            owned = {}
            for worker in self.alive():
                body = self.health(worker)
                owned[worker.name] = [] if body is None else list(body["events_partitions"])
            flat = sorted(p for ps in owned.values() for p in ps)
            if all(owned.values()) and flat == list(range(PARTITIONS)):
                return owned
            time.sleep(0.3)
        raise AssertionError(f"the group did not settle within {timeout}s: {owned}")

    def leader(self, timeout: float = 120) -> WorkerProcess:
        """The one live worker whose /health says it is the leader."""
        deadline = time.monotonic() + timeout
        leaders: list[WorkerProcess] = []
        while time.monotonic() < deadline:
            leaders = [w for w in self.alive() if (self.health(w) or {}).get("leader")]
            if len(leaders) == 1:
                return leaders[0]
            time.sleep(0.3)
        raise AssertionError(f"not one leader within {timeout}s: {[w.name for w in leaders]}")

    def close(self) -> None:
        for worker in self.workers[1:]:
            worker.stop()
        self.h.close()
