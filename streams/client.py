"""A small synchronous client (kafka-python) for tools, the demo, benchmarks and tests.

Publishes events and control commands, waits for a command's reply, and folds the
membership topic into current memberships.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from .settings import Settings

__all__ = ["Client", "MembershipFold"]


def _consumer(settings: Settings, topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap.split(","),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=200,
    )
    partitions = consumer.partitions_for_topic(topic) or set()
    deadline = time.monotonic() + 10
    while not partitions and time.monotonic() < deadline:
        time.sleep(0.1)
        partitions = consumer.partitions_for_topic(topic) or set()
    consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
    return consumer


@dataclass
class MembershipFold:
    """Folds `segments.membership` into current members, dropping stale or repeated changes."""

    members: dict[str, set[str]] = field(default_factory=dict)
    last_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def apply(self, change: dict[str, Any]) -> None:
        key = (change["segment_id"], change["customer_id"])
        if change["seq"] <= self.last_seq.get(key, -1):
            return
        self.last_seq[key] = change["seq"]
        self.changes.append(change)
        members = self.members.setdefault(change["segment_id"], set())
        if change["change"] == "entered":
            members.add(change["customer_id"])
        else:
            members.discard(change["customer_id"])


class Client:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap.split(","),
            acks="all",
            enable_idempotence=True,  # a retry after a broker failover is not written twice
            linger_ms=5,
        )
        self._replies: KafkaConsumer | None = None
        self._pending_replies: dict[str, dict[str, Any]] = {}
        self._membership: KafkaConsumer | None = None
        self.fold = MembershipFold()

    def close(self) -> None:
        self.producer.close()
        for consumer in (self._replies, self._membership):
            if consumer is not None:
                consumer.close()

    # -- publishing -----------------------------------------------------------------------
    def send_event(
        self,
        customer_id: str,
        event_type: str,
        properties: dict[str, Any],
        ts: int | None = None,
        event_id: str | None = None,
        as_json: bool = False,
    ) -> None:
        event = {
            "event_id": event_id or uuid.uuid4().hex,
            "customer_id": customer_id,
            "type": event_type,
            "ts": ts if ts is not None else int(time.time() * 1000),
            "properties": properties,
        }
        value = json.dumps(event).encode() if as_json else msgpack.packb(event)
        self.producer.send(self.settings.events_topic, key=customer_id.encode(), value=value)

    def send_raw(self, topic: str, key: bytes | None, value: bytes) -> None:
        self.producer.send(topic, key=key, value=value)

    def flush(self) -> None:
        self.producer.flush()

    def command(
        self, command: dict[str, Any], timeout: float = 60.0, raw: bytes | None = None
    ) -> dict[str, Any]:
        """Send a control command and wait for its reply."""
        request_id = command.setdefault("request_id", uuid.uuid4().hex)
        self.send_command(command, raw)
        return self.wait_reply(request_id, timeout)

    def send_command(self, command: dict[str, Any], raw: bytes | None = None) -> None:
        if self._replies is None:
            self._replies = _consumer(self.settings, self.settings.replies_topic)
        value = raw if raw is not None else json.dumps(command).encode()
        self.producer.send(self.settings.control_topic, value=value)
        self.producer.flush()

    def wait_reply(self, request_id: str | None, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._replies is None or not self._replies.assignment():
                # the topic did not exist yet (a worker still starting creates it): look again
                if self._replies is not None:
                    self._replies.close()
                self._replies = _consumer(self.settings, self.settings.replies_topic)
            key = request_id if request_id is not None else ""
            if key in self._pending_replies:
                return self._pending_replies.pop(key)
            for message in self._replies:
                reply = msgpack.unpackb(message.value, raw=False)
                self._pending_replies[reply["request_id"] or ""] = reply
                if key in self._pending_replies:
                    # ours: return now, not after the consumer's 200 ms without a message
                    # (which every command's round trip waited before: ~0.2 s of an idle
                    # worker's ~0.25 s)
                    return self._pending_replies.pop(key)
        raise TimeoutError(f"no reply to request {request_id!r} within {timeout}s")

    # -- membership -----------------------------------------------------------------------
    def poll_membership(self) -> MembershipFold:
        """Read whatever membership changes arrived since the last call and fold them."""
        if self._membership is None or not self._membership.assignment():
            if self._membership is not None:  # the topic did not exist yet: look again
                self._membership.close()
            self._membership = _consumer(self.settings, self.settings.membership_topic)
        for message in self._membership:
            self.fold.apply(msgpack.unpackb(message.value, raw=False))
        return self.fold

    def wait_for(
        self, predicate: Any, timeout: float = 30.0, what: str = "membership condition"
    ) -> MembershipFold:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fold = self.poll_membership()
            if predicate(fold):
                return fold
        raise TimeoutError(f"{what} not reached within {timeout}s")

    def read_all(self, topic: str, idle: float = 1.0) -> Iterable[Any]:
        """Every message of `topic` from the beginning (stops after `idle` s with none new)."""
        consumer = _consumer(self.settings, topic)
        try:
            last = time.monotonic()
            while time.monotonic() - last < idle:
                for message in consumer:
                    last = time.monotonic()
                    yield message
        finally:
            consumer.close()
