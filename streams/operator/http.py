"""A small client of the worker's HTTP API on the standard library (urllib)."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .errors import ApiFailure, OperatorError

__all__ = ["DEFAULT_URL", "ApiClient"]

DEFAULT_URL = "http://127.0.0.1:6066"


class ApiClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token or None
        self.timeout = timeout

    def _url(self, path: str, query: dict[str, Any] | None) -> str:
        url = self.base_url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        return url

    def _open(self, method: str, path: str, body: Any, query: dict[str, Any] | None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url(path, query), data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise _failure(exc) from None
        except urllib.error.URLError as exc:
            raise OperatorError(
                f"cannot reach the livesegments API at {self.base_url}: {exc.reason}; a worker "
                "must be running there (`livesegments worker`); set --url or LS_API_URL "
                "to reach another one"
            ) from None
        except TimeoutError:
            raise OperatorError(
                f"no answer from {self.base_url} within {self.timeout:g}s; the worker may be busy"
            ) from None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        """One JSON request; the decoded JSON answer, or ApiFailure/OperatorError."""
        with self._open(method, path, body, query) as response:
            raw = response.read()
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise OperatorError(
                f"{method} {path} answered something that is not JSON: {raw[:200]!r}"
            ) from None

    def download(self, path: str, destination: Path) -> int:
        """Stream the answer of GET `path` into `destination` (atomically); returns bytes."""
        partial = destination.with_name(destination.name + ".part")
        with self._open("GET", path, None, None) as response:
            try:
                with open(partial, "wb") as out:
                    shutil.copyfileobj(response, out, 64 * 1024)
            except Exception as exc:
                partial.unlink(missing_ok=True)
                raise OperatorError(f"download of {path} interrupted: {exc!r}") from None
        os.replace(partial, destination)
        return destination.stat().st_size


def _failure(exc: urllib.error.HTTPError) -> ApiFailure:
    raw = exc.read()
    try:
        error = json.loads(raw)["error"]
        if isinstance(error, dict):
            return ApiFailure(
                exc.code, str(error.get("code")), str(error.get("message")), error.get("path")
            )
        return ApiFailure(exc.code, "error", str(error))
    except (ValueError, KeyError, TypeError):
        text = raw.decode(errors="replace").strip()[:300] or exc.reason
        return ApiFailure(exc.code, "http_error", str(text))
