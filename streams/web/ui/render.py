"""Jinja2 templates of the Segments page, loaded from the package; HTML responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web as aioweb

__all__ = ["Renderer", "utc_text"]


def utc_text(ms: Any) -> str:
    """Epoch milliseconds as 'YYYY-MM-DD HH:MM:SS UTC' ('' for none)."""
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(ms: Any) -> str:
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


class Renderer:
    def __init__(self) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader(__package__ or "streams.web.ui", "templates"),
            autoescape=jinja2.select_autoescape(("html",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["utc"] = utc_text
        self.env.filters["iso"] = _iso
        self.env.filters["tojson_attr"] = _to_json

    def page(self, name: str, http_status: int = 200, **context: Any) -> aioweb.Response:
        html = self.env.get_template(name).render(**context)
        return aioweb.Response(
            text=html,
            status=http_status,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                    "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
                ),
                "Referrer-Policy": "same-origin",
            },
        )
