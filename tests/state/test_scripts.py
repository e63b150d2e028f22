"""Script on the real Redis: EVALSHA, loaded on NOSCRIPT, error replies left to the caller."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from state import KeySpace
from state.scripts import Script

_ECHO = Script("return {KEYS[1], ARGV[1]}")


class _Calls:
    """A client's EVALSHA and SCRIPT LOAD calls, in order."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.calls: list[str] = []

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> Any:
        self.calls.append("evalsha")
        return await self.redis.evalsha(sha, numkeys, *args)

    async def script_load(self, source: str) -> Any:
        self.calls.append("load")
        return await self.redis.script_load(source)


async def test_a_missing_script_is_loaded_once_then_called_by_its_digest(
    aredis: Redis, keyspace: KeySpace
) -> None:
    key = f"{{{keyspace.prefix}}}:k"
    client = _Calls(aredis)
    await aredis.script_flush()
    assert await _ECHO(client, 1, key, "a") == [key.encode(), b"a"]  # type: ignore[arg-type]
    assert client.calls == ["evalsha", "load", "evalsha"]
    assert await _ECHO(client, 1, key, "b") == [key.encode(), b"b"]  # type: ignore[arg-type]
    assert client.calls == ["evalsha", "load", "evalsha", "evalsha"]
    assert _ECHO.sha == await aredis.script_load(_ECHO.source)


async def test_an_error_reply_is_the_callers_and_loads_nothing(
    aredis: Redis, keyspace: KeySpace
) -> None:
    failing = Script("return redis.error_reply('FENCED 7')")
    client = _Calls(aredis)
    await aredis.script_load(failing.source)
    with pytest.raises(ResponseError, match="FENCED 7"):
        await failing(client, 0)  # type: ignore[arg-type]
    assert client.calls == ["evalsha"]
