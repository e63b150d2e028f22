"""Bearer-token check: mutations always need `LS_API_TOKEN`; reads too unless
LS_API_READS_REQUIRE_TOKEN=false opens them (members, CSV and statistics are personal data)."""

from __future__ import annotations

import hmac
from typing import Any

from ..settings import Settings
from .errors import ApiError

__all__ = ["require_token"]


def require_token(settings: Settings, request: Any, mutation: bool) -> None:
    """Raise a 401 ApiError unless the request carries the configured token."""
    if not mutation and not settings.api_reads_require_token:
        return
    if not settings.api_token:
        raise ApiError(
            401,
            "token_not_configured",
            "this worker has no API token, so it refuses every "
            + ("change" if mutation else "request")
            + ": set LS_API_TOKEN in the worker's environment and restart it",
        )
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "missing_token",
            "this request needs 'Authorization: Bearer <token>' with the worker's "
            "LS_API_TOKEN (the segments CLI sends --token or $LS_API_TOKEN)",
        )
    if not hmac.compare_digest(token.strip().encode(), settings.api_token.encode()):
        raise ApiError(401, "wrong_token", "the bearer token does not match LS_API_TOKEN")
