"""Reading a running worker's /health and /metrics (integration helpers)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from .fixtures import Harness


def health(h: Harness) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{h.settings.web_port}/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_health(
    h: Harness, done: Callable[[int, dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status, body = health(h)
    while not done(status, body) and time.monotonic() < deadline:
        time.sleep(0.2)
        status, body = health(h)
    assert done(status, body), (status, body)
    return body


def metrics_text(h: Harness) -> str:
    url = f"http://127.0.0.1:{h.settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode())
