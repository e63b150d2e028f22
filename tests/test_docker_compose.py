"""docker-compose.yml publishes nothing but the HTTP API, on the host's loopback.

The development machines have no Docker, so the file is checked as data: which ports each
service publishes, and that the worker listens where the published port reaches it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"


def _services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_only_the_api_port_is_published_and_only_on_loopback() -> None:
    services = _services()
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert list(published) == ["worker"]  # Kafka and Redis stay in the compose network
    for spec in published["worker"]:
        host, _host_ports, container_port = str(spec).split(":")
        assert host == "127.0.0.1"
        assert int(container_port) == Settings().web_port
    for service in services.values():
        assert "network_mode" not in service  # "host" would publish every port


def test_the_worker_listens_where_the_published_port_reaches_it() -> None:
    environment = _services()["worker"]["environment"]
    assert environment["LS_WEB_BIND"] == "0.0.0.0"
    assert environment["LS_API_TOKEN"].startswith("${LS_API_TOKEN:?")  # required, no default
    assert environment["LS_EXPORT_ROOT"] == "/data/exports"
