"""Errors of the HTTP API; each becomes ``{"error": {"code", "message", "path"?}}``."""

from __future__ import annotations

from typing import Any

from livesegments_error import LiveSegmentsError

__all__ = ["ApiError", "StreamBroken", "status_for"]

_CONFLICTS = frozenset(
    {
        "already_exists",
        "in_use",
        "duplicate_request_id",
        "already_finished",
        "not_cancelable",
        "name_clash",
    }
)


class StreamBroken(Exception):
    """A streamed response failed after its headers went out: drop the connection."""


class ApiError(LiveSegmentsError):
    """A request the API refuses, with its HTTP status."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message, code=code, path=path)
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.to_dict()}

    @classmethod
    def from_reply(cls, error: dict[str, Any]) -> ApiError:
        """The error of a control reply, with the status its code calls for."""
        code = str(error.get("code", "error"))
        path = error.get("path")
        return cls(status_for(code, path), code, str(error.get("message", "")), path)


def status_for(code: str, path: str | None) -> int:
    """404 unknown segment, 409 conflicts with the registry's state, else 400."""
    if code == "not_found":
        return 404
    if code in _CONFLICTS or (code == "limit_exceeded" and path is None):
        return 409
    return 400
