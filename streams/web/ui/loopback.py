"""Calls the worker's own HTTP API, with the API token, on the address a request came in on.

The Segments page is a client of the HTTP API like the `segments` CLI: pages read through
it and the browser's changes are forwarded through it (`/ui/api/...`), so the UI and the
API can never disagree. The address is the local end of the browser's connection (never the
Host header, which a client controls), so the token only ever travels to this worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web as aioweb

__all__ = ["Answer", "Loopback"]

_FORWARDED = ("Content-Type", "Content-Disposition")


@dataclass(frozen=True)
class Answer:
    """One API response: status, raw body and the headers worth forwarding."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> dict[str, Any]:
        """The API's ``{"code", "message", "path"?}`` (a generic one for odd bodies)."""
        try:
            body = self.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return dict(body["error"])
        text = self.body[:200].decode(errors="replace")
        return {"code": f"http_{self.status}", "message": f"HTTP {self.status}: {text}"}


def _base(request: Any) -> str:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    host, port = ("127.0.0.1", request.url.port) if not sockname else sockname[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class Loopback:
    def __init__(self, token: str, timeout_s: float) -> None:
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def call(
        self, request: Any, method: str, path: str, body: bytes | None = None, query: str = ""
    ) -> Answer:
        """`method path?query` on this worker's API with the token; `body` is raw JSON."""
        url = _base(request) + path + (f"?{query}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._client().request(method, url, data=body, headers=headers) as got:
                raw = await got.read()
                kept = {k: got.headers[k] for k in _FORWARDED if k in got.headers}
                return Answer(got.status, raw, kept)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = {
                "code": "unreachable",
                "message": f"the worker's API did not answer {method} {path}: {exc!r}",
            }
            return Answer(502, json.dumps({"error": error}).encode(), {})

    async def forward(
        self, request: Any, method: str, path: str, body: bytes | None, query: str
    ) -> aioweb.StreamResponse:
        """Stream the API's answer to `request`'s browser (a CSV of any size in chunks)."""
        url = _base(request) + path + (f"?{query}" if query else "")
        headers = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response: aioweb.StreamResponse | None = None
        try:
            async with self._client().request(method, url, data=body, headers=headers) as got:
                kept = {k: got.headers[k] for k in _FORWARDED if k in got.headers}
                response = aioweb.StreamResponse(
                    status=got.status, headers={**kept, "Cache-Control": "no-store"}
                )
                await response.prepare(request)
                async for chunk in got.content.iter_chunked(1 << 16):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            if response is not None and response.prepared:
                raise  # the headers went out: drop the connection, the download fails
            error = {
                "code": "unreachable",
                "message": f"the worker's API did not answer {method} {path}: {exc!r}",
            }
            return aioweb.Response(
                body=json.dumps({"error": error}).encode(),
                status=502,
                content_type="application/json",
            )

    async def get(self, request: Any, path: str, query: str = "") -> Answer:
        return await self.call(request, "GET", path, None, query)

    async def send(self, request: Any, method: str, path: str, body: Any = None) -> Answer:
        raw = None if body is None else json.dumps(body).encode()
        return await self.call(request, method, path, raw)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
