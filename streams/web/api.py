"""What the route modules share: the stores they read, the control gateway, the routing type."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from segment_rules import Limits
from state import KeySpace
from state.reads import StateReads
from state.schedules import ScheduleStore
from state.trends import TrendStore

from ..settings import Settings
from .auth import require_token
from .gateway import ControlGateway
from .requests import read_json

__all__ = ["ApiBase", "Handler", "Page"]

Handler = Callable[..., Awaitable[Any]]
"""A route handler: (web, request, **path parameters) -> response."""
Page = Callable[..., None]
"""Adds a route: page(path, name, get=handler, post=handler, ...)."""


class ApiBase:
    """What every route module reads from and writes through."""

    def __init__(self, settings: Settings, redis: Redis, partitions: int, app: Any) -> None:
        self.settings = settings
        keyspace = KeySpace(settings.key_prefix)
        self.reads = StateReads(redis, keyspace, partitions)
        self.trends = TrendStore(redis, keyspace)
        self.gateway = ControlGateway(app, settings)
        self.schedules = ScheduleStore(redis, keyspace)
        self.limits = Limits(
            max_conditions=settings.max_conditions,
            max_depth=settings.max_depth,
            max_window_ms=settings.history_max_age_ms,
        )
        self.openapi = json.loads(
            resources.files(__package__).joinpath("openapi.json").read_text(encoding="utf-8")
        )

    async def command(self, request: Any, command: dict[str, Any]) -> dict[str, Any]:
        """A change: the token is required; the command goes through the control topic."""
        require_token(self.settings, request, mutation=True)
        return await self.gateway.command(command)

    async def body(self, request: Any) -> dict[str, Any]:
        """A change's JSON body, once the token is checked."""
        require_token(self.settings, request, mutation=True)
        return await read_json(request)
