"""A private Kafka broker and Redis for tests that stop, kill or break a service.

The shared services (scripts/services.sh, ports 9092/6379) serve every other test and must
never go down mid-run; a fault test starts its own pair here, on free ports and in its own
directory under .local/private/, through the same script, and removes it afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["PrivateServices", "private_services"]

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "services.sh"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateServices:
    """One Kafka broker (KRaft) and one Redis (AOF) of this test's own."""

    def __init__(self, name: str) -> None:
        self.dir = ROOT / ".local" / "private" / f"{name}-{uuid.uuid4().hex[:6]}"
        self.kafka_port = _free_port()
        self.controller_port = _free_port()
        self.redis_port = _free_port()
        self.kafka_bootstrap = f"127.0.0.1:{self.kafka_port}"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self) -> dict[str, str]:
        """The script's environment: this instance's directory and ports."""
        return {
            **os.environ,
            "LS_SERVICES_DIR": str(self.dir),
            "LS_KAFKA_PORT": str(self.kafka_port),
            "LS_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "LS_REDIS_PORT": str(self.redis_port),
        }

    def _script(self, action: str, which: str) -> None:
        done = subprocess.run(
            ["bash", str(SCRIPT), action, which],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {action} {which} failed: {done.stderr[-2000:]}")

    def start(self, which: str = "all") -> None:
        """Start `redis`, `kafka` or both (`all`); returns once they answer."""
        self._script("start", which)

    def stop(self, which: str = "all") -> None:
        """A clean stop (SIGTERM for Kafka, SHUTDOWN for Redis)."""
        self._script("stop", which)

    def kill_kafka(self) -> None:
        """SIGKILL the broker: no controlled shutdown."""
        pid_file = self.dir / "kafka" / "kafka.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            pid_file.unlink()

    def close(self) -> None:
        self.kill_kafka()
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_services(request: pytest.FixtureRequest) -> Iterator[PrivateServices]:
    """A started private Kafka and Redis, torn down (and their data removed) after the test."""
    services = PrivateServices(request.node.name.replace("/", "_")[:40])
    try:
        services.start()
        yield services
    finally:
        services.close()
