"""Errors raised at the stream edges."""

from __future__ import annotations

from segment_rules import LiveSegmentsError

__all__ = ["BadMessage", "CommandError"]


class BadMessage(LiveSegmentsError):
    """An input message that cannot be used; it goes to the dead-letter topic with `reason`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class CommandError(LiveSegmentsError):
    """A control command that cannot be carried out; its reply carries code, message, path."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def to_reply(self) -> dict[str, str]:
        error = {"code": self.code, "message": self.message}
        if self.path is not None:
            error["path"] = self.path
        return error
