"""Lifecycle and schedule routes: rename, duplicate, one-shot schedules, recurring refreshes.

Every change is a control command (`streams.control.lifecycle`) sent through the API's gateway and
needs the bearer token; the lists read the registry (`state.schedules`).
"""

from __future__ import annotations

from typing import Any

from state.schedules import ScheduleStore

from .api import ApiBase, Page
from .auth import require_token
from .errors import ApiError
from .requests import json_response

__all__ = ["ScheduleViews", "register"]


class ScheduleViews:
    def __init__(self, api: ApiBase, store: ScheduleStore) -> None:
        self.api = api
        self.store = store

    async def rename(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        command = {"command": "rename", "segment_id": id, "name": body.get("name")}
        return json_response(web, await self.api.command(request, command))

    async def duplicate(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        command: dict[str, Any] = {
            "command": "duplicate",
            "segment_id": id,
            "new_id": body.get("new_id"),
        }
        for field in ("name", "segment"):
            if body.get(field) is not None:
                command[field] = body[field]
        return json_response(web, await self.api.command(request, command), status=201)

    async def add_schedule(self, web: Any, request: Any, id: str) -> Any:
        body = await self.api.body(request)
        command = {
            "command": "schedule",
            "segment_id": id,
            "action": body.get("action"),
            "at": body.get("at"),
        }
        return json_response(web, await self.api.command(request, command), status=201)

    async def list_segment_schedules(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        if await self.api.reads.segment(id) is None:
            raise ApiError(404, "not_found", f"no segment {id!r}", "segment_id")
        found = await self.store.schedules_for(id)
        return json_response(web, {"schedules": [s.to_dict() for s in found]})

    async def remove_schedule(self, web: Any, request: Any, id: str) -> Any:
        result = await self.api.command(request, {"command": "unschedule", "schedule_id": id})
        return json_response(web, result)

    async def add_refresh(self, web: Any, request: Any) -> Any:
        body = await self.api.body(request)
        command: dict[str, Any] = {
            "command": "schedule_refresh",
            "cron": body.get("cron"),
            "timezone": body.get("timezone"),
        }
        if body.get("all") is True:
            command["all"] = True
        else:
            command["segment_ids"] = body.get("segment_ids")
        return json_response(web, await self.api.command(request, command), status=201)

    async def list_refreshes(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        found = await self.store.refreshes()
        return json_response(web, {"refresh_schedules": [r.to_dict() for r in found]})

    async def remove_refresh(self, web: Any, request: Any, id: str) -> Any:
        command = {"command": "unschedule_refresh", "schedule_id": id}
        return json_response(web, await self.api.command(request, command))


def register(page: Page, api: ApiBase, store: ScheduleStore) -> ScheduleViews:
    """Add the routes through `page(path, name, **method_handlers)`."""
    views = ScheduleViews(api, store)
    page("/segments/{id}/rename", "segment_rename", post=views.rename)
    page("/segments/{id}/duplicate", "segment_duplicate", post=views.duplicate)
    page(
        "/segments/{id}/schedules",
        "segment_schedules",
        get=views.list_segment_schedules,
        post=views.add_schedule,
    )
    page("/schedules/{id}", "schedule", delete=views.remove_schedule)
    page(
        "/refresh-schedules", "refresh_schedules", get=views.list_refreshes, post=views.add_refresh
    )
    page("/refresh-schedules/{id}", "refresh_schedule", delete=views.remove_refresh)
    return views
