"""`LS_REDIS_TURN_PIPELINE`: the runtime's partitions share a `TurnRedis`, or not."""

from __future__ import annotations

from typing import Any, cast

from redis.asyncio import Redis

from state.turn import TurnRedis
from streams.engine import PartitionRuntime
from streams.settings import Settings


def test_the_partitions_pipeline_their_turns_unless_turned_off() -> None:
    redis = Redis()  # never connected: only the clients built are looked at
    publisher = cast(Any, None)
    on = PartitionRuntime(Settings.from_env({}), redis, publisher)
    assert isinstance(on._turn_redis, TurnRedis)
    off = PartitionRuntime(Settings.from_env({"LS_REDIS_TURN_PIPELINE": "0"}), redis, publisher)
    assert off._turn_redis is redis
