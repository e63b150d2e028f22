"""Errors raised at the stream edges."""

from __future__ import annotations

from typing import Any

from segment_rules import LiveSegmentsError

__all__ = ["BadMessage", "CommandError", "required_text"]


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


def required_text(command: dict[str, Any], name: str) -> str:
    """A command's non-empty string field, stripped; CommandError naming the field otherwise."""
    value = command.get(name)
    if not isinstance(value, str) or not value.strip():
        raise CommandError(
            "missing_field" if value is None else "wrong_type",
            f"{name!r} must be a non-empty string, got {value!r}",
            name,
        )
    return value.strip()
