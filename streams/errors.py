"""Errors raised at the stream edges."""

from __future__ import annotations

from typing import Any

from livesegments_error import LiveSegmentsError

__all__ = ["BadMessage", "CommandError", "field_error", "required_text"]


class BadMessage(LiveSegmentsError):
    """An input message that cannot be used; it goes to the dead-letter topic with its code
    and, as the record's `reason`, the message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class CommandError(LiveSegmentsError):
    """A control command that cannot be carried out; its reply carries code, message, path."""

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message, code=code, path=path)


def field_error(value: object, message: str, path: str) -> CommandError:
    """A command field that is absent (`missing_field`, when `value` is None) or of the wrong
    type (`wrong_type`)."""
    return CommandError("missing_field" if value is None else "wrong_type", message, path)


def required_text(command: dict[str, Any], name: str) -> str:
    """A command's non-empty string field, stripped; CommandError naming the field otherwise."""
    value = command.get(name)
    if not isinstance(value, str) or not value.strip():
        raise field_error(
            value,
            f"{name!r} must be a non-empty string, got {value!r}",
            name,
        )
    return value.strip()
