"""Integration fixtures: a worker subprocess on its own uuid-named topics, group and keys."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from state import KeySpace
from state.connect import connect_sync
from state.ordinals import BUCKET, stored_value
from streams.client import Client
from streams.settings import Settings
from streams.topics import ensure_topics
from tests import layout

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / ".local" / "test-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_env(kafka: str, redis_url: str, **extra: str) -> dict[str, str]:
    u = uuid.uuid4().hex[:10]
    env = {
        "KAFKA_BOOTSTRAP": kafka,
        "REDIS_URL": redis_url,
        "LS_APP_ID": f"test-{u}",
        "LS_KEY_PREFIX": f"test-{u}",
        "LS_EVENTS_TOPIC": f"test-{u}.events",
        "LS_CONTROL_TOPIC": f"test-{u}.control",
        "LS_REPLIES_TOPIC": f"test-{u}.replies",
        "LS_MEMBERSHIP_TOPIC": f"test-{u}.membership",
        "LS_DLQ_TOPIC": f"test-{u}.dlq",
        "LS_EVENTS_PARTITIONS": "4",
        "LS_WEB_PORT": str(free_port()),
        "LS_EXPIRY_POLL_S": "0.1",
        "LS_SESSION_TIMEOUT_S": "6",
        # tests give files exports a pytest tmp_path, which lies in the system's temp folder
        "LS_EXPORT_ROOT": tempfile.gettempdir(),
    }
    env.update(extra)
    return env


class WorkerProcess:
    """`python -m streams worker` with the given environment; logs under .local/test-logs."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        self.name = name
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        self.log_path = LOGS / f"{self.name}-{uuid.uuid4().hex[:6]}-{self.starts}.log"
        log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel", "info"],
            env={**os.environ, **self.env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL by default: no shutdown, no flush, no commit."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(60)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    decode: Callable[[bytes], Any] = lambda value: msgpack.unpackb(value, raw=False),
    timeout: float = 60,
) -> list[Any]:
    """Every message of `topic` from the beginning (decoded), read until `done(messages)`.

    The wait for an expected message: no fixed sleep, no "read once and hope"."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, consumer_timeout_ms=200
    )
    try:
        deadline = time.monotonic() + timeout
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.05)
            partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        found: list[Any] = []
        while not done(found):
            assert time.monotonic() < deadline, f"{topic}: condition not met within {timeout}s"
            found += [decode(message.value) for message in consumer]
        return found
    finally:
        consumer.close()


def cleanup(env: dict[str, str]) -> None:
    """Remove the keys and topics a test created."""
    client = connect_sync(env["REDIS_URL"])
    prefix = env["LS_KEY_PREFIX"]
    for pattern in (f"{{{prefix}:*", f"{prefix}:*"):
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.unlink(*keys[start : start + 500])
    client.close()
    admin = KafkaAdminClient(bootstrap_servers=env["KAFKA_BOOTSTRAP"].split(","))
    try:
        topics = [t for t in admin.list_topics() if t.startswith(env["LS_APP_ID"])]
        if topics:
            admin.delete_topics(topics)
    finally:
        admin.close()


class Harness:
    """A running worker plus a client on the same settings."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.env = env
        self.settings = Settings.from_env(env)
        self.worker = WorkerProcess(env, name)
        self.keys = KeySpace(self.settings.key_prefix)
        self.redis = connect_sync(env["REDIS_URL"])
        self.client: Client = Client(self.settings)

    def start(self) -> None:
        # The client assigns itself the replies topic's partitions once: create the topics
        # first, or a worker slower to start than that lookup leaves it deaf to every reply.
        ensure_topics(self.settings)
        self.worker.start()
        try:
            self._wait_ready()
        except BaseException:
            self.close()  # a start that fails must not leave a worker (or its keys) behind
            raise

    def _wait_ready(self) -> None:
        # The first reply proves the worker joined the group and runs the control agent.
        request_id = uuid.uuid4().hex
        self.client.send_command({"command": "refresh", "all": True, "request_id": request_id})
        deadline = time.monotonic() + 120
        while True:
            try:
                reply = self.client.wait_reply(request_id, timeout=1)
                break
            except TimeoutError:
                if not self.worker.alive():
                    # e.g. its HTTP port was taken meanwhile by another process: new port
                    log = self.worker.log_path.read_text(errors="replace")[-2000:]
                    print(f"worker exited during start-up; restarting. Log tail:\n{log}")
                    self.env["LS_WEB_PORT"] = str(free_port())
                    self.settings = Settings.from_env(self.env)
                    self.worker.start()
                if time.monotonic() > deadline:
                    raise
        assert reply["ok"], reply

    def command(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        return self.client.command(command, timeout=timeout)

    def ok(self, command: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        reply = self.command(command, timeout)
        assert reply["ok"], reply
        return dict(reply["result"])

    def barrier(self) -> str:
        """A harmless command (it fails: no such job): its reply comes after the replies of every
        command sent before it, as the control topic and the replies topic have one partition."""
        request_id = f"barrier-{uuid.uuid4().hex}"
        reply = self.command({"command": "cancel", "job_id": request_id, "request_id": request_id})
        assert reply["error"]["code"] == "not_found", reply
        return request_id

    def replies_through(self, request_id: str) -> list[dict[str, Any]]:
        """Every reply on the replies topic, up to and including the one to `request_id`."""
        replies: list[dict[str, Any]] = read_until(
            self.settings.kafka_bootstrap,
            self.settings.replies_topic,
            lambda got: any(r["request_id"] == request_id for r in got),
        )
        last = next(i for i, r in enumerate(replies) if r["request_id"] == request_id)
        return replies[: last + 1]

    def members(self, segment_id: str) -> set[str]:
        partitions = self.settings.events_partitions
        found: set[str] = set()
        for p in range(partitions):
            found |= layout.members(self.redis, self.keys.partition(p), segment_id)
        return found

    def wait_members(self, segment_id: str, expected: set[str], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.members(segment_id) == expected:
                return
            time.sleep(0.05)
        assert self.members(segment_id) == expected

    def close(self) -> None:
        self.worker.stop()
        self.client.close()
        self.redis.close()
        cleanup(self.env)


class TaskGate:
    """Holds a job's task, deterministically, halfway through each events partition.

    `close()` puts in the index of each partition, in place of the first customer past the
    first half (in the order tasks walk them), a gate customer whose profile cannot be decoded
    (never cached by the worker): a task reaching it raises and the worker retries the
    partition's batch, resuming from the last committed chunk, until `open()` puts the
    customer back. So the task stops at exactly `stop[p]` customers done,
    for as long as the test needs (to cancel it, for instance), with no timing involved.
    """

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.gates: dict[int, str] = {}
        self.stop: dict[int, int] = {}
        self.saved: dict[int, str] = {}
        """The customer each gate stands in for."""
        """Customers of partition p a task completes before it is held."""

    def customers(self, partition: int) -> list[str]:
        keys = self.h.keys.partition(partition)
        return layout.customers(self.h.redis, keys)

    def close(self) -> None:
        for p in range(self.h.settings.events_partitions):
            ids = self.customers(p)
            assert len(ids) >= 2, f"partition {p} has too few customers to hold a task halfway"
            self.stop[p] = len(ids) // 2
            ordinal = self.stop[p]  # customers are numbered 0.. in the order tasks walk them
            gate = ids[ordinal] + "-gate"
            keys = self.h.keys.partition(p)
            self.h.redis.set(keys.profile(gate), stored_value(ordinal, b"\xc1 not a profile"))
            self.h.redis.hset(keys.ids(ordinal // BUCKET), str(ordinal % BUCKET), gate)
            self.saved[p] = ids[ordinal]
            self.gates[p] = gate

    def wait_held(self, segment_id: str, timeout: float = 60) -> int:
        """The first partition seen holding a task that makes every customer it reaches a
        member of `segment_id` (its members there are the customers before the gate)."""
        deadline = time.monotonic() + timeout
        while True:
            for p, stop in self.stop.items():
                members = layout.members(self.h.redis, self.h.keys.partition(p), segment_id)
                if members == set(self.customers(p)[:stop]):
                    return p
            assert time.monotonic() < deadline, f"no task reached a gate within {timeout}s"
            time.sleep(0.05)

    def open(self) -> None:
        for p, gate in self.gates.items():
            keys = self.h.keys.partition(p)
            ordinal = self.stop[p]
            self.h.redis.hset(keys.ids(ordinal // BUCKET), str(ordinal % BUCKET), self.saved[p])
            self.h.redis.delete(keys.profile(gate))
        self.gates = {}


@pytest.fixture(scope="module")
def harness(
    kafka_bootstrap: str, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Harness]:
    h = Harness(unique_env(kafka_bootstrap, redis_url), request.module.__name__.rsplit(".", 1)[-1])
    h.start()
    yield h
    h.close()


def segment(segment_id: str, where: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": segment_id.replace("-", " ").title(),
        "rules": [{"where": where}],
        **extra,
    }
