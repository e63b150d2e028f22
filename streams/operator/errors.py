"""Errors of the `segments` CLI."""

from __future__ import annotations

from livesegments_error import LiveSegmentsError

__all__ = ["ApiFailure", "JobFailed", "OperatorError", "UsageError"]


class OperatorError(LiveSegmentsError):
    """Something the CLI reports and exits 1 for."""


class UsageError(OperatorError):
    """A bad command line or input file (exit code 2)."""


class ApiFailure(OperatorError):
    """The API refused a request: its status, error code, message and path."""

    def __init__(self, status: int, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message, code=code, path=path)
        self.status = status

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.message} (HTTP {self.status})"


class JobFailed(OperatorError):
    """An analysis job ended in Failure: its error's code, message and path."""

    def __init__(self, job_id: str, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message, code=code, path=path)
        self.job_id = job_id

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.message} (job {self.job_id})"
