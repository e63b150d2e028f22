"""tune_process: the worker's switch interval and event loop policy."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator

import pytest
import uvloop

from streams.interpreter import tune_process
from streams.settings import Settings


@pytest.fixture
def restored() -> Iterator[None]:
    interval, policy = sys.getswitchinterval(), asyncio.get_event_loop_policy()
    yield
    sys.setswitchinterval(interval)
    asyncio.set_event_loop_policy(policy)


@pytest.mark.usefixtures("restored")
def test_the_switch_interval_is_set_in_seconds() -> None:
    tune_process(Settings.from_env({"LS_SWITCH_INTERVAL_MS": "0.25"}))
    assert sys.getswitchinterval() == pytest.approx(0.00025)


@pytest.mark.usefixtures("restored")
def test_uvloop_makes_every_new_loop_a_uvloop_one() -> None:
    tune_process(Settings.from_env({"LS_EVENT_LOOP": "uvloop"}))
    loop = asyncio.new_event_loop()  # as faust's consumer thread makes its own
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


@pytest.mark.usefixtures("restored")
def test_asyncio_leaves_the_default_loop() -> None:
    tune_process(Settings.from_env({"LS_EVENT_LOOP": "asyncio"}))
    loop = asyncio.new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
