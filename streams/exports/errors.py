"""Errors of export definitions."""

from __future__ import annotations

from segment_rules import LiveSegmentsError

__all__ = ["ExportError"]


class ExportError(LiveSegmentsError):
    """An invalid export definition: `code` (stable), `message` (shows the bad value, what was
    expected and a fix), `path` into the definition (``destination.batch_size``)."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def to_reply(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "path": self.path}
