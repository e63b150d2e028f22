"""Request helpers: JSON bodies, query parameters, times, and JSON responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web as aioweb

from .errors import ApiError

__all__ = ["json_response", "limit_body", "parse_time", "query_flag", "query_int", "read_json"]


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def json_response(web: Any, body: Any, status: int = 200) -> Any:
    data = json.dumps(body, default=_default, ensure_ascii=False).encode()
    return web.bytes(data, content_type="application/json", status=status)


def _too_large(limit: int, size: int | None) -> ApiError:
    got = f"{size} bytes" if size is not None else "more"
    return ApiError(
        413,
        "body_too_large",
        f"the request body is {got}; this worker accepts at most {limit} bytes "
        "(LS_API_MAX_BODY_BYTES)",
    )


async def limit_body(request: Any, limit: int) -> Any:
    """The request with its body read (at most `limit` bytes), else a 413 ApiError.

    A declared Content-Length over the limit is refused before anything is read; a chunked
    body is read until it passes the limit. Returns a clone that holds the body, so handlers
    `read()` it as usual.
    """
    if not request.body_exists:
        return request
    size = request.content_length
    if size is not None and size > limit:
        raise _too_large(limit, size)
    bounded = request.clone(client_max_size=limit)
    try:
        await bounded.read()
    except aioweb.HTTPRequestEntityTooLarge:
        raise _too_large(limit, size) from None
    return bounded


async def read_json(request: Any) -> dict[str, Any]:
    """The request body as a JSON object, else a 400 ApiError."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "missing_body", "this request needs a JSON object body")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(
            400, "wrong_type", f"the body must be a JSON object, got {type(body).__name__}"
        )
    return body


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


def query_flag(request: Any, name: str) -> bool:
    """A yes/no query parameter (absent: no), else a 400 ApiError naming it."""
    raw = request.query.get(name, "")
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ApiError(
        400,
        "invalid_value",
        f"query parameter {name}={raw!r} is not a yes/no value; expected 1 or 0 (true/false)",
        name,
    )


def query_int(request: Any, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400, "invalid_value", f"query parameter {name}={raw!r} is not an integer", name
        ) from None
    if not low <= value <= high:
        raise ApiError(
            400,
            "invalid_value",
            f"query parameter {name}={value} is out of range; expected {low}..{high}",
            name,
        )
    return value


def parse_time(raw: str | None, name: str) -> int | None:
    """Epoch milliseconds or an ISO-8601 instant (UTC when no offset) -> epoch ms."""
    if raw is None or raw == "":
        return None
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        # an unencoded '+' of an offset reaches us as a space
        moment = datetime.fromisoformat(raw.strip().replace(" ", "+"))
    except ValueError:
        raise ApiError(
            400,
            "invalid_value",
            f"{name}={raw!r} is neither epoch milliseconds nor an ISO-8601 time "
            "(e.g. 2024-05-01T00:00:00Z)",
            name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
