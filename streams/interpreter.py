"""The worker process's interpreter: its GIL switch interval and its event loop.

faust runs its aiokafka consumer in a thread of its own (with its own event loop) beside the
main loop. Each socket write or read releases the GIL; the other thread takes it and, with
CPython's default switch interval of 5 ms, may keep it that long before it is asked to give it
back, so every Redis round trip of the main loop could wait for the consumer thread (py-spy
showed 20 % of the worker's samples in `_SelectorSocketTransport.write` at 1,000 events/s).
A shorter interval (`LS_SWITCH_INTERVAL_MS`) hands the GIL back sooner.

`LS_EVENT_LOOP=uvloop` installs uvloop's policy before the app is built, so the main loop and
faust's consumer thread's loop (made by `asyncio.new_event_loop()`) are both uvloop's.
"""

from __future__ import annotations

import asyncio
import sys

from .settings import Settings

__all__ = ["tune_process"]


def tune_process(settings: Settings) -> None:
    """Apply the interpreter settings; call before any event loop is made."""
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    if settings.event_loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
