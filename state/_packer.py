"""redis-py's asyncio connection with its commands packed by hiredis.

redis-py's blocking client packs commands with `hiredis.pack_command` when hiredis is there;
its asyncio `Connection.pack_command` packs every argument in Python (~1.5 µs per argument:
an MGET of a backfill chunk's 5,000 profile keys, a commit's KEYS). `HiredisConnection` packs
the commands whose arguments are all str, bytes or int (the worker's) with hiredis (~0.2 µs
per argument), the same bytes; any other argument (float, memoryview, bool, a subclass) goes
through redis-py's own packer, which also raises its errors for bad ones.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import Connection

__all__ = ["HiredisConnection"]

_PLAIN = frozenset((str, bytes, int))


class HiredisConnection(Connection):
    """A TCP connection whose plain commands hiredis packs (`connect` uses it)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        plain = _PLAIN
        if self.encoder.encoding != "utf-8" or self.encoder.encoding_errors != "strict":
            return super().pack_command(*args)
        for arg in args:
            if type(arg) not in plain:
                return super().pack_command(*args)
        head = args[0]
        # a command name with literal arguments ('CONFIG GET') is split, as redis-py does
        if isinstance(head, str):
            if " " in head:
                args = (*head.split(), *args[1:])
        elif b" " in head:
            args = (*head.split(), *args[1:])
        return [hiredis.pack_command(args)]
