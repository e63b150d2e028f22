"""Which exceptions are infrastructure (retry) and which are a message's own fault (isolate).

This is the one place that decides. Infrastructure is what an unreachable or unhealthy
service causes: Redis connection/timeout errors and its transient refusals (loading,
out of memory, read-only replica, failover), Kafka errors raised by the producer or the
admin client, a fenced commit, a state that went backwards, connection and name-resolution
errors (not every OSError: a file name too long, from a 300-character time zone, is an input's
fault). Such a failure
is retried with capped backoff and never costs a message. Everything else raised while a
message is decoded, applied, encoded or committed is that message's fault: it is
dead-lettered (`unprocessable`) and processing goes on.
"""

from __future__ import annotations

import asyncio
import socket

from aiokafka import errors as aiokafka_errors
from aiokafka.errors import KafkaError as AioKafkaError
from faust.exceptions import ProducerSendError
from kafka.errors import KafkaError as SyncKafkaError
from redis.exceptions import (
    ClusterError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from state import FencedError

__all__ = [
    "InfrastructureError",
    "StateBehindError",
    "cause_name",
    "describe",
    "is_infrastructure",
    "is_undeliverable",
]

_TRANSIENT_REPLIES = ("OOM", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")
"""Redis error replies that say the server cannot serve now, not that the command is bad."""

_TRANSIENT_REDIS = (OutOfMemoryError, ReadOnlyError, TryAgainError, ClusterError)
"""The same replies as redis-py raises them: its parser strips the code (`READONLY ...` becomes
`ReadOnlyError("You can't write ...")`). `ClusterError` covers CLUSTERDOWN and MASTERDOWN
and the cluster client giving up after a failover's redirections."""


_UNREACHABLE_CLUSTER = ("Redis Cluster cannot be connected", "All slots are not covered")
"""How redis-py's cluster client says that no node answered, or that the nodes that did
answer serve only part of the slots (a master down and not replaced yet): it raises the base
`RedisClusterException` for those, as it does for a command it cannot route (not retried)."""


class InfrastructureError(Exception):
    """Raised by livesegments itself for a condition an operator must fix (retried)."""


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        else:  # `raise ... from None` means the context is not a cause
            current = None if current.__suppress_context__ else current.__context__
    return seen


def _infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_REDIS):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_TRANSIENT_REPLIES)
    if type(exc) is RedisClusterException:
        return str(exc).startswith(_UNREACHABLE_CLUSTER)
    return isinstance(
        exc,
        RedisConnectionError
        | SlotNotCoveredError
        | RedisTimeoutError
        | AioKafkaError
        | SyncKafkaError
        | ProducerSendError
        | FencedError
        | InfrastructureError
        | ConnectionError
        | TimeoutError
        | asyncio.TimeoutError
        | socket.gaierror,
    )


def is_infrastructure(exc: BaseException) -> bool:
    """True when retrying can succeed once a service is back (never a message's fault)."""
    return any(_infrastructure(e) for e in _chain(exc))


_UNDELIVERABLE: tuple[type[BaseException], ...] = (
    aiokafka_errors.MessageSizeTooLargeError,
    aiokafka_errors.RecordListTooLargeError,
    aiokafka_errors.InvalidTopicError,
    aiokafka_errors.TopicAuthorizationFailedError,
    aiokafka_errors.CorruptRecordException,
)
"""Producer errors that no retry can fix. aiokafka's own `retriable` flag is not usable for
this: it calls a timeout while the broker is down not retriable."""


def is_undeliverable(exc: BaseException) -> bool:
    """A producer error that no retry can fix (the record is too large, the topic invalid)."""
    return any(isinstance(e, _UNDELIVERABLE) for e in _chain(exc))


def describe(exc: BaseException) -> str:
    """`Type: message` for a dead letter's reason or a log line (never an empty message)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__} (no message)"


def cause_name(exc: BaseException) -> str:
    """A short label for the retry metric: the innermost exception type's name."""
    return type(_chain(exc)[-1]).__name__


class StateBehindError(InfrastructureError):
    """A partition's state in Redis is older than what the consumer group committed in Kafka
    (Redis was flushed or failed over to a stale replica): processing it would skip events."""

    def __init__(self, partition: int, state_offset: int, committed: int) -> None:
        super().__init__(
            f"partition {partition}: the state in Redis ends at offset {state_offset} but the "
            f"consumer group committed offset {committed} in Kafka; the events in between were "
            "applied to a state that is gone. Refusing to process this partition: restore Redis "
            "or reset the group's offsets (docs/operations.md)"
        )
        self.partition = partition
        self.state_offset = state_offset
        self.committed = committed
