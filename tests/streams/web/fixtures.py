"""A worker with the HTTP API enabled (token "t", trend snapshots every second)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from ..fixtures import Harness, unique_env

TOKEN = "t"


class Api:
    """Raw HTTP calls to the worker: (status, decoded JSON or text, headers)."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = TOKEN
    ) -> tuple[int, Any]:
        status, raw, _headers = self.raw(method, path, body, token)
        return status, json.loads(raw)

    def raw(
        self, method: str, path: str, body: Any = None, token: str | None = TOKEN
    ) -> tuple[int, bytes, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = self.call(method, path, body)
        assert got == status, answer
        return answer

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/segments")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.base} not serving within {timeout}s")


class ApiHarness(Harness):
    @property
    def api(self) -> Api:
        return Api(self.settings.web_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def populate(self, segment_id: str, profiles: dict[str, dict[str, Any]]) -> None:
        """Send profile events and wait until an `exists`-style segment holds them all."""
        for customer_id, attrs in profiles.items():
            self.client.send_event(customer_id, "profile", attrs)
        self.client.flush()
        self.wait_members(segment_id, set(self.members(segment_id)) | set(profiles), timeout=60)


@pytest.fixture(scope="module")
def api_harness(
    kafka_bootstrap: str, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[ApiHarness]:
    """A worker of the test module's own (``WORKER_ENV`` in the module adds variables)."""
    extra = getattr(request.module, "WORKER_ENV", {})
    env = unique_env(
        kafka_bootstrap, redis_url, LS_API_TOKEN=TOKEN, LS_TREND_INTERVAL_S="1", **extra
    )
    h = ApiHarness(env, request.module.__name__.rsplit(".", 1)[-1])
    h.start()
    h.api.wait_ready()
    yield h
    h.close()


def definition(segment_id: str, where: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": segment_id,
        "name": segment_id.replace("-", " ").title(),
        "rules": [{"where": where}],
        **extra,
    }
