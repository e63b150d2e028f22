"""The HTTP API's root: builds the handlers and registers every route module's routes.

Route modules (`segments`, `jobs`, `schedules`, `exports`) import `api` and nothing above
them; this module imports them all. Reads come from Redis (`state.reads`); every change goes
through the control topic (`ControlGateway`), so any worker serves the API.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from faust.web import View
from redis.asyncio import Redis

from state import KeySpace
from state.export_registry import ExportStore

from ..settings import Settings
from .api import Handler, Page
from .errors import ApiError, StreamBroken
from .exports import register as register_exports
from .insights import register as register_insights
from .jobs import register as register_jobs
from .requests import json_response, limit_body
from .schedules import register as register_schedules
from .segments import Api

__all__ = ["register"]

log = logging.getLogger(__name__)


def _wrap(handler: Handler, settings: Settings) -> Callable[..., Awaitable[Any]]:
    async def method(view: View, request: Any, **kwargs: Any) -> Any:
        try:
            request = await limit_body(request, settings.api_max_body_bytes)
            return await handler(view.web, request, **kwargs)
        except ApiError as exc:
            return json_response(view.web, exc.body(), exc.status)
        except StreamBroken:
            raise
        except Exception:
            # the exception's text may hold data or internals: only the log gets it
            error_id = uuid.uuid4().hex[:12]
            log.exception("%s %s failed (error id %s)", request.method, request.path, error_id)
            error = {
                "code": "internal",
                "message": f"internal error {error_id}; the worker's log has the details "
                "under this id",
                "error_id": error_id,
            }
            return json_response(view.web, {"error": error}, 500)

    return method


def _page(app: Any, settings: Settings, path: str, name: str, **handlers: Handler) -> None:
    view = type(name, (View,), {m: _wrap(h, settings) for m, h in handlers.items()})
    app.page(path, name=name)(view)


def register(app: Any, settings: Settings, redis: Redis, partitions: int) -> Api:
    """Add the API's routes to the Faust app's web server; returns the handlers."""
    api = Api(settings, redis, partitions, app)
    page: Page = functools.partial(_page, app, settings)
    # fixed paths before the /segments/{id} patterns
    page("/openapi.json", "openapi", get=api.openapi_doc)
    page("/segments", "segments", get=api.list_segments, post=api.create)
    page("/segments/estimate", "segments_estimate", post=api.estimate)
    page("/segments/refresh", "segments_refresh", post=api.refresh)
    page(
        "/segments/{id}",
        "segment",
        get=api.show_segment,
        put=api.update,
        delete=api.delete,
    )
    page("/segments/{id}/members", "segment_members", get=api.members)
    page("/segments/{id}/members.csv", "segment_members_csv", get=api.members_csv)
    page("/segments/{id}/trend", "segment_trend", get=api.trend)
    page("/segments/{id}/activate", "segment_activate", post=api.activate)
    page("/segments/{id}/deactivate", "segment_deactivate", post=api.deactivate)
    page("/attributes/{name}/stats", "attribute_stats", get=api.attribute_stats)
    page("/customers/{id}/forget", "customer_forget", post=api.forget)
    register_jobs(page, api)
    register_insights(page, api)
    register_schedules(page, api, api.schedules)
    register_exports(page, api, ExportStore(redis, KeySpace(settings.key_prefix)))

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def stop_gateway(sender: Any, **kwargs: Any) -> None:
        await api.gateway.stop()

    return api
