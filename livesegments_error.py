"""The root of every error livesegments raises on purpose, shared by all its packages.

Each error carries a stable machine-readable `code`, a `message` for people (it shows the bad
value, says what was expected and suggests a fix) and, where the error is about one place in
an input, the `path` to it (``segment.rules[0].where.op``). `to_dict()` is the shape every
surface reports: the control topic's replies, the HTTP API's error bodies, dead letters.
"""

from __future__ import annotations

__all__ = ["LiveSegmentsError"]


class LiveSegmentsError(Exception):
    """An error with a stable code, a message and, optionally, the path it is about."""

    code: str = "error"
    """The default code of a class; an instance may carry a more precise one."""

    def __init__(self, message: str, *, code: str | None = None, path: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.path = path

    def to_dict(self) -> dict[str, str]:
        """``{"code", "message", "path"?}``: the path only when there is one."""
        error = {"code": self.code, "message": self.message}
        if self.path:
            error["path"] = self.path
        return error
