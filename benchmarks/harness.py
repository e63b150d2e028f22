"""The worker subprocess, its uuid-named topics and keys, bulk producing, progress and cleanup."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgpack
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from state import KeySpace
from state.connect import connect_sync
from streams.settings import Settings

__all__ = ["BenchEnv", "Progress", "WorkerProcess", "bulk_produce", "end_offsets"]

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BenchEnv:
    """Environment of one run: every topic, the group and the Redis keys share `bench-<uuid>`."""

    def __init__(self, partitions: int, **extra: str) -> None:
        self.run_id = f"bench-{uuid.uuid4().hex[:10]}"
        base = {
            "KAFKA_BOOTSTRAP": os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            "LS_APP_ID": self.run_id,
            "LS_KEY_PREFIX": self.run_id,
            "LS_EVENTS_TOPIC": f"{self.run_id}.events",
            "LS_CONTROL_TOPIC": f"{self.run_id}.control",
            "LS_REPLIES_TOPIC": f"{self.run_id}.replies",
            "LS_MEMBERSHIP_TOPIC": f"{self.run_id}.membership",
            "LS_DLQ_TOPIC": f"{self.run_id}.dlq",
            "LS_EVENTS_PARTITIONS": str(partitions),
            "LS_WEB_PORT": str(_free_port()),
        }
        base.update(extra)
        self.env = base
        self.settings = Settings.from_env(base)
        self.keys = KeySpace(self.settings.key_prefix)
        self.redis = connect_sync(self.settings.redis_url)

    @property
    def bootstrap(self) -> list[str]:
        return self.settings.kafka_bootstrap.split(",")

    def prefix_keys(self) -> list[bytes]:
        return list(self.redis.scan_iter(match=f"{{{self.settings.key_prefix}:*", count=2000))

    def memory_usage(self) -> dict[str, int]:
        """MEMORY USAGE summed over every key of the prefix, split into profiles and the rest."""
        keys = self.prefix_keys()
        totals = {"keys": len(keys), "profile_keys": 0, "profile_bytes": 0, "other_bytes": 0}
        for start in range(0, len(keys), 2000):
            chunk = keys[start : start + 2000]
            pipe = self.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.memory_usage(key)
            for key, size in zip(chunk, pipe.execute(), strict=True):
                if b":c:" in key:
                    totals["profile_keys"] += 1
                    totals["profile_bytes"] += size or 0
                else:
                    totals["other_bytes"] += size or 0
        return totals

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def cleanup(self) -> tuple[int, int]:
        """UNLINK every key of the prefix and delete every topic of the run; (keys, topics)."""
        keys = self.prefix_keys()
        for start in range(0, len(keys), 1000):
            self.redis.unlink(*keys[start : start + 1000])
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            topics = [t for t in admin.list_topics() if t.startswith(self.run_id)]
            if topics:
                admin.delete_topics(topics)
        finally:
            admin.close()
        self.redis.close()
        return len(keys), len(topics)


class WorkerProcess:
    """`python -m streams worker` with the run's environment (`count` of them in one consumer
    group, each on its own HTTP port); their logs go to temp files."""

    def __init__(self, env: dict[str, str], run_id: str, count: int = 1, root: Path = ROOT) -> None:
        self.env = env
        self.count = count
        self.root = root
        """The checkout the worker runs from (`benchmarks.latency_run` compares two)."""
        self.log_path = Path(tempfile.gettempdir()) / f"livesegments-{run_id}.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        """Each worker's HTTP port (its `/health` lists the events partitions it owns)."""

    def start(self) -> None:
        self.procs = []
        self.ports = []
        for n, path in enumerate(self.log_paths):
            log = open(path, "ab")  # noqa: SIM115 - owned by the child
            env = {**os.environ, **self.env}
            if n:
                env["LS_WEB_PORT"] = str(_free_port())
            self.ports.append(int(env["LS_WEB_PORT"]))
            self.procs.append(
                subprocess.Popen(
                    # "info" as in production (see streams/cli.py about faust's spinner)
                    [sys.executable, "-m", "streams", "worker", "--loglevel", "info"],
                    env=env,
                    cwd=self.root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            log.close()

    @property
    def log_paths(self) -> list[Path]:
        """Each worker's log: the first at `log_path`, worker n at `<log_path stem>.n.log`."""
        return [
            self.log_path if n == 0 else self.log_path.with_suffix(f".{n}.log")
            for n in range(self.count)
        ]

    @property
    def pid(self) -> int | None:
        return self.procs[0].pid if self.procs else None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _health(self) -> list[dict[str, Any] | None]:
        """Each worker's `/health` body (None: no answer)."""
        found: list[dict[str, Any] | None] = []
        for port in self.ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    body = json.loads(r.read())
            except urllib.error.HTTPError as exc:  # 503 while degraded still has the body
                try:
                    body = json.loads(exc.read() or b"{}")
                except ValueError:
                    body = None
            except (OSError, ValueError):
                body = None
            found.append(body if isinstance(body, dict) else None)
        return found

    def assignments(self) -> list[list[int] | None]:
        """The events partitions each worker owns, from its `/health` (None: no answer)."""
        found: list[list[int] | None] = []
        for body in self._health():
            parts = None if body is None else body.get("events_partitions")
            found.append(sorted(parts) if isinstance(parts, list) else None)
        return found

    def warming(self) -> list[int] | None:
        """The events partitions whose profile cache a worker still fills after its restart or
        an assignment, from the workers' `/health`; None if a worker did not answer. (A worker
        of a checkout older than the report says nothing: none.)"""
        found: list[int] = []
        for body in self._health():
            if body is None:
                return None
            parts = body.get("warming")
            found.extend(parts if isinstance(parts, list) else [])
        return sorted(found)

    def wait_warm(self, timeout: float = 180) -> float:
        """Until no worker is warming a profile cache (the warm-up after a restart stays out
        of a measured window); returns the seconds waited. Raises when a worker exits or the
        warm-up outlasts `timeout`."""
        started = time.monotonic()
        while self.warming() != []:
            if not self.alive():
                raise RuntimeError(f"worker exited; see {self.log_path}")
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"the profile caches were still warming after {timeout}s")
            time.sleep(0.2)
        return time.monotonic() - started

    def batch_counts(self) -> tuple[float, float] | None:
        """(events applied, batches committed) summed over the workers' `/metrics` counters
        (`livesegments_events_processed_total`, `livesegments_batch_seconds_count`); None if a
        worker did not answer."""
        events = batches = 0.0
        for port in self.ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                return None
            for line in text.splitlines():
                if line.startswith("livesegments_events_processed_total{"):
                    events += float(line.rsplit(" ", 1)[1])
                elif line.startswith("livesegments_batch_seconds_count"):
                    batches += float(line.rsplit(" ", 1)[1])
        return events, batches

    def alive(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM and wait (SIGKILL after `timeout`); returns the seconds it took."""
        started = time.monotonic()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(max(0.1, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return time.monotonic() - started


def bulk_produce(bootstrap: list[str], topic: str, events: Iterable[dict[str, Any]]) -> int:
    """Send events as msgpack keyed by customer id, as fast as kafka-python allows."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    sent = 0
    try:
        for event in events:
            producer.send(topic, key=event["customer_id"].encode(), value=msgpack.packb(event))
            sent += 1
        producer.flush()
    finally:
        producer.close()
    return sent


def end_offsets(bootstrap: list[str], topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


class Progress:
    """Reads each partition's last applied offset from `{<prefix>:p<N>}:meta`."""

    def __init__(self, env: BenchEnv, partitions: int) -> None:
        self.redis = env.redis
        self.metas = [env.keys.partition(p).meta for p in range(partitions)]

    def offsets(self) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)
        for meta in self.metas:
            pipe.hget(meta, "offset")
        return [int(v) if v is not None else -1 for v in pipe.execute()]

    def processed(self, start: dict[int, int]) -> int:
        """Messages applied at or after `start` (the offsets where the measured range begins)."""
        return sum(max(0, off + 1 - start[p]) for p, off in enumerate(self.offsets()))

    def wait_until(
        self,
        start: dict[int, int],
        end: dict[int, int],
        timeout: float,
        poll_s: float = 0.02,
        worker: WorkerProcess | None = None,
        on_poll: Callable[[float, int], None] | None = None,
    ) -> tuple[float, int, float, int]:
        """Poll until every partition applied the messages before `end` (exclusive offsets).

        Returns (t_first, done_first, t_last, done_last): `time.perf_counter()` of the first
        poll that saw progress past `start` and of the poll that saw completion, with the
        messages applied at each. The rate between them excludes the worker's start-up.
        `on_poll(now, done)` is called after every poll that saw progress.
        """
        total = sum(end[p] - start[p] for p in end)
        deadline = time.monotonic() + timeout
        t_first, done_first = 0.0, 0
        while True:
            offsets = self.offsets()
            now = time.perf_counter()
            done = sum(max(0, off + 1 - start[p]) for p, off in enumerate(offsets))
            if done and not t_first:
                t_first, done_first = now, done
            if done and on_poll is not None:
                on_poll(now, done)
            if all(offsets[p] + 1 >= end[p] for p in end):
                return t_first or now, done_first or total, now, total
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker applied {done}/{total} messages within {timeout}s")
            if worker is not None and not worker.alive():
                raise RuntimeError(f"worker exited; see {worker.log_path}")
            time.sleep(poll_s)
