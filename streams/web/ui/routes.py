"""Adds the Segments page's routes to the worker's web server."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web as aioweb
from faust.web import View

from ..api import ApiBase
from .data import Data, static_asset
from .guard import Refused, error_response
from .loopback import Loopback
from .pages import Pages
from .render import Renderer
from .sessions import Sessions

__all__ = ["register"]

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[aioweb.StreamResponse]]


def _wrap(handler: Handler) -> Callable[..., Awaitable[aioweb.StreamResponse]]:
    async def method(view: View, request: Any, **kwargs: Any) -> aioweb.StreamResponse:
        try:
            return await handler(request, **kwargs)
        except Refused as refused:
            return refused.response
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(500, "internal", f"internal error: {exc!r} (see worker log)")

    return method


def register(app: Any, api: ApiBase) -> None:
    """Serve the UI under /ui/ beside the API that `api` holds."""
    sessions = Sessions()
    loopback = Loopback(api.settings.api_token, api.settings.api_command_timeout_s + 30)
    pages = Pages(api.settings, sessions, loopback, Renderer())
    data = Data(sessions, loopback, api.reads)

    def page(path: str, name: str, **handlers: Handler) -> None:
        view = type(name, (View,), {m: _wrap(h) for m, h in handlers.items()})
        app.page(path, name=name)(view)

    async def asset(request: Any, name: str) -> aioweb.StreamResponse:
        return static_asset(name)

    page("/ui", "ui_root", get=pages.root)
    page("/ui/", "ui_segments", get=pages.segments)
    page("/ui/signin", "ui_signin", get=pages.signin_form, post=pages.signin)
    page("/ui/signout", "ui_signout", post=pages.signout)
    page("/ui/new", "ui_new", get=pages.builder)
    page("/ui/quick", "ui_quick", get=pages.quick)
    page("/ui/discover", "ui_discover", get=pages.discover)
    page("/ui/jobs", "ui_jobs", get=pages.jobs)
    page("/ui/jobs/{id}", "ui_job", get=pages.job)
    page("/ui/exports", "ui_exports", get=pages.exports)
    page("/ui/schedules", "ui_schedules", get=pages.schedules)
    page("/ui/segments/{id}", "ui_segment", get=pages.details)
    page("/ui/segments/{id}/edit", "ui_segment_edit", get=pages.edit)
    page("/ui/segments/{id}/exports", "ui_segment_exports", get=pages.segment_exports)
    page("/ui/static/{name}", "ui_static", get=asset)
    page("/ui/data/convert", "ui_convert", post=data.convert)
    page("/ui/data/segments/{id}/uses", "ui_uses", get=data.uses)
    page("/ui/data/segments/{id}/schedule", "ui_schedule", post=data.schedule)
    methods = ("get", "post", "put", "delete")
    page("/ui/api/{tail:.*}", "ui_api", **dict.fromkeys(methods, data.proxy))

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def close_loopback(sender: Any, **kwargs: Any) -> None:
        await loopback.close()
