"""Which exceptions mean "a service is unreachable" (retry) rather than "this input is bad".

Only an infrastructure failure may make a plane retry the same message: Redis or Kafka down,
slow or failing over. Anything else raised while handling one message is that message's
fault (or a bug it triggers) and must cost that message only.
"""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["is_infrastructure"]

_TRANSIENT_REPLIES = ("READONLY", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "OOM")
"""Redis error replies that a failover, a restart or a full server produce."""


def is_infrastructure(exc: BaseException) -> bool:
    """True when `exc` says a service is unreachable or unavailable, not that the input is bad."""
    # not OSError as a whole: a file name too long (a 300-character time zone) is one too
    retry = RedisConnectionError | RedisTimeoutError | KafkaConnectionError | KafkaTimeoutError
    if isinstance(exc, retry | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).split(" ", 1)[0] in _TRANSIENT_REPLIES
    return False
