"""The one error of the analyses: bad input, with a stable code and the path to it."""

from __future__ import annotations

from segment_rules import LiveSegmentsError

__all__ = ["InsightError"]


class InsightError(LiveSegmentsError):
    """Input an analysis refuses (unknown attribute, wrong kind, too many categories, ...).

    `path` names the request field at fault (``using[1]``, ``source``, ``primary``).
    """

    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def __reduce__(self) -> tuple[type[InsightError], tuple[str, str, str | None]]:
        # raised in the analysis process and re-raised in the worker: pickled with its fields
        return (InsightError, (self.code, self.message, self.path))

    def __repr__(self) -> str:
        return f"InsightError(code={self.code!r}, path={self.path!r}, message={self.message!r})"
