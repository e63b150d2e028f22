"""The one classification of failures: infrastructure is retried, the rest is a message's."""

from __future__ import annotations

import json

import msgpack
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RequestTimedOutError
from faust.exceptions import ProducerSendError
from redis._parsers.base import BaseParser
from redis.exceptions import (
    BusyLoadingError,
    ClusterError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from state import FencedError
from streams.failures import StateBehindError, describe, is_infrastructure, is_undeliverable


def _raised(make: type[BaseException] | BaseException) -> BaseException:
    try:
        raise make
    except BaseException as exc:
        return exc


def _wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as outer:
        return outer


@pytest.mark.parametrize(
    "exc",
    [
        RedisConnectionError("refused"),
        RedisTimeoutError("slow"),
        BusyLoadingError("loading"),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'"),
        ResponseError("READONLY You can't write against a read only replica."),
        FencedError("{ls:p0}", 1, 2),
        KafkaConnectionError("down"),
        _wrapped(RequestTimedOutError()),
        ConnectionResetError(104, "reset"),
        StateBehindError(3, -1, 100),
    ],
    ids=lambda e: type(e).__name__,
)
def test_infrastructure_is_retried(exc: BaseException) -> None:
    assert is_infrastructure(exc)


@pytest.mark.parametrize(
    "reply",
    [
        "OOM command not allowed when used memory > 'maxmemory'.",
        "READONLY You can't write against a read only replica.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
        "CLUSTERDOWN The cluster is down",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    ],
)
def test_transient_replies_as_redis_py_raises_them_are_retried(reply: str) -> None:
    # redis-py's parser strips the code: READONLY ... arrives as ReadOnlyError("You can't ...")
    assert is_infrastructure(BaseParser.parse_error(reply))


def test_cluster_failover_errors_are_retried() -> None:
    assert is_infrastructure(ClusterError("TTL exhausted."))
    assert is_infrastructure(SlotNotCoveredError("Slot 42 is not covered by the cluster."))
    # redis-py's cluster client, with no node answering or part of the slots unserved
    assert is_infrastructure(
        RedisClusterException(
            "Redis Cluster cannot be connected. Please provide at least one reachable node: None"
        )
    )
    assert is_infrastructure(
        RedisClusterException("All slots are not covered after query all startup_nodes. 5 of")
    )
    # a command it cannot route is the caller's fault, not an outage
    assert not is_infrastructure(RedisClusterException("No way to dispatch this command"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: "\ud800".encode(),
        lambda: msgpack.packb(2**64 + 5),
        lambda: msgpack.unpackb(b"\xc1"),
        lambda: json.loads("[" * 100_000),
        lambda: {}["missing"],
        lambda: ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ],
)
def test_everything_else_is_the_message_s_fault(make: object) -> None:
    try:
        result = make()  # type: ignore[operator]
        exc = result if isinstance(result, BaseException) else None
    except Exception as raised:
        exc = raised
    assert exc is not None
    assert not is_infrastructure(exc), describe(exc)


def test_a_message_fault_raised_while_handling_an_outage_is_still_the_message_s() -> None:
    try:
        try:
            raise RedisConnectionError("refused")
        except RedisConnectionError:
            raise ValueError("bad value") from None
    except ValueError as exc:
        assert not is_infrastructure(exc)


def test_only_records_kafka_can_never_accept_are_undeliverable() -> None:
    assert is_undeliverable(_wrapped(MessageSizeTooLargeError("1.7 MB")))
    assert is_undeliverable(MessageSizeTooLargeError())
    assert not is_undeliverable(_wrapped(KafkaConnectionError("down")))
    assert not is_undeliverable(_wrapped(RequestTimedOutError()))
    assert describe(_raised(ValueError)) == "ValueError (no message)"
