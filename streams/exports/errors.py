"""Errors of export definitions."""

from __future__ import annotations

from livesegments_error import LiveSegmentsError

__all__ = ["ExportError"]


class ExportError(LiveSegmentsError):
    """An invalid export definition: `code` (stable), `message` (shows the bad value, what was
    expected and a fix), `path` into the definition (``destination.batch_size``)."""

    def __init__(self, code: str, message: str, path: str) -> None:
        super().__init__(message, code=code, path=path)
