"""Shared fixtures: the real Kafka broker and Redis, which integration tests require.

They FAIL, never skip, when a service is missing: start them with `scripts/services.sh start`.

Tiers come from fixtures: a test that uses a service fixture, directly or through another
fixture (`harness`, `api_harness`, `aredis`, `ctx`, ...), is marked `integration` here, so
`pytest -m "not integration"` needs no service at all.

Property tests run the hypothesis profile named by ``LS_HYPOTHESIS``: ``fast`` (default) a
tenth of the examples, ``ci`` (``test.sh``, ``.ci/run``) all of them (``hypothesis_profiles``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

import livesegments_compiled
from state.connect import connect_sync

from .hypothesis_profiles import SCALES, register_profiles

SERVICE_FIXTURES = frozenset(
    {"kafka_bootstrap", "redis_url", "private_services", "private_cluster"}
)
"""Every fixture that talks to Kafka or Redis depends on one of these."""

KAFKA = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
HYPOTHESIS_PROFILE = register_profiles()


def pytest_report_header() -> list[str]:
    scales = ", ".join(f"{name} {scale:g}" for name, scale in SCALES.items())
    return [
        f"property tests: LS_HYPOTHESIS={HYPOTHESIS_PROFILE} (share of the examples: {scales})",
        f"build: {livesegments_compiled.BUILD.describe()} (LS_COMPILED)",
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test whose fixture closure reaches a service fixture."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    first = KAFKA.split(",")[0]
    if not _reachable(first):
        pytest.fail(
            f"Kafka is not reachable at {first} (KAFKA_BOOTSTRAP); integration tests need the "
            "real broker: run scripts/services.sh start",
            pytrace=False,
        )
    return KAFKA


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        connect_sync(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} (REDIS_URL): {exc}; integration tests need "
            "the real server: run scripts/services.sh start",
            pytrace=False,
        )
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = connect_sync(redis_url)
    yield client
    client.close()
