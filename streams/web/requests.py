"""Request helpers: JSON bodies, query parameters, times, and JSON responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError

__all__ = ["json_response", "parse_time", "query_int", "read_json"]


def _default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def json_response(web: Any, body: Any, status: int = 200) -> Any:
    data = json.dumps(body, default=_default, ensure_ascii=False).encode()
    return web.bytes(data, content_type="application/json", status=status)


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
