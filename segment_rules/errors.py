"""Errors of the rule language.

Every error raised on purpose by the project derives from
:class:`livesegments_error.LiveSegmentsError` (re-exported here): a stable code, a message
and the path into the input, so callers (the control API, the CLI, the dead-letter writer)
report them without parsing the message.
"""

from __future__ import annotations

__all__ = ["DefinitionError", "ErrorCode", "LiveSegmentsError"]

from typing import Final, Literal

from livesegments_error import LiveSegmentsError

ErrorCode = Literal[
    "invalid_definition",
    "missing_field",
    "unknown_field",
    "wrong_type",
    "unknown_op",
    "invalid_value",
    "bad_duration",
    "cycle",
    "missing_segment",
    "limit_exceeded",
]

_CODES: Final[frozenset[str]] = frozenset(ErrorCode.__args__)  # type: ignore[attr-defined]


class DefinitionError(LiveSegmentsError):
    """A segment definition is invalid.

    Attributes:
        code: a stable machine-readable reason (see :data:`ErrorCode`).
        message: the human-readable message (also ``str(error)``); it shows the bad
            value, says what was expected and suggests a fix.
        path: where in the definition the problem is, e.g. ``rules[0].where.all[2].op``
            (``""`` for the definition itself).
        suggestion: the closest valid spelling, when a name was misspelt.
    """

    def __init__(
        self, code: ErrorCode, message: str, path: str = "", suggestion: str | None = None
    ) -> None:
        if code not in _CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message, code=code, path=path)
        self.code: ErrorCode = code
        self.path: str = path
        self.suggestion = suggestion

    def __repr__(self) -> str:
        return f"DefinitionError(code={self.code!r}, path={self.path!r}, message={self.message!r})"
