"""Errors of the `segments` CLI."""

from __future__ import annotations

from segment_rules import LiveSegmentsError

__all__ = ["ApiFailure", "OperatorError", "UsageError"]


class OperatorError(LiveSegmentsError):
    """Something the CLI reports and exits 1 for."""


class UsageError(OperatorError):
    """A bad command line or input file (exit code 2)."""


class ApiFailure(OperatorError):
    """The API refused a request: its status, error code, message and path."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None) -> None:
        where = f" at {path}" if path else ""
        super().__init__(f"{code}{where}: {message} (HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.path = path
