"""The bench's reading of the workers' `/health`: owned partitions and the cache warm-up."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from benchmarks.harness import WorkerProcess


class _Health:
    """A stand-in worker's `/health`: answers each GET with the next body (the last repeats)."""

    def __init__(self, bodies: list[tuple[int, dict[str, Any]]]) -> None:
        self.bodies = bodies
        self.asked = 0
        health = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = health.bodies[min(health.asked, len(health.bodies) - 1)]
                health.asked += 1
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def worker() -> Iterator[WorkerProcess]:
    proc = WorkerProcess({}, "health-test")
    proc.procs = [subprocess.Popen(["sleep", "60"])]  # alive, as a worker would be
    try:
        yield proc
    finally:
        for p in proc.procs:
            p.kill()
            p.wait()


def _serve(worker: WorkerProcess, bodies: list[tuple[int, dict[str, Any]]]) -> _Health:
    health = _Health(bodies)
    worker.ports = [health.port]
    return health


def test_wait_warm_waits_until_no_partition_warms(worker: WorkerProcess) -> None:
    health = _serve(
        worker,
        [
            (200, {"events_partitions": [0, 1], "warming": [0, 1]}),
            (503, {"events_partitions": [0, 1], "warming": [1]}),  # degraded still has the body
            (200, {"events_partitions": [0, 1], "warming": [1]}),
            (200, {"events_partitions": [0, 1], "warming": []}),
        ],
    )
    assert worker.warming() == [0, 1]
    worker.wait_warm(timeout=10)
    assert health.asked == 4  # read until no partition warmed
    assert worker.warming() == []
    assert worker.assignments() == [[0, 1]]


def test_a_worker_that_does_not_report_warming_is_not_waited_for(worker: WorkerProcess) -> None:
    _serve(worker, [(200, {"events_partitions": [0]})])  # a checkout older than the report
    assert worker.wait_warm(timeout=10) < 5


def test_wait_warm_gives_up_after_its_timeout(worker: WorkerProcess) -> None:
    _serve(worker, [(200, {"events_partitions": [0], "warming": [0]})])
    with pytest.raises(TimeoutError, match="still warming"):
        worker.wait_warm(timeout=0.5)


def test_wait_warm_stops_when_the_worker_exits(worker: WorkerProcess) -> None:
    _serve(worker, [(200, {"events_partitions": [0], "warming": [0]})])
    worker.procs[0].kill()
    worker.procs[0].wait()
    with pytest.raises(RuntimeError, match="worker exited"):
        worker.wait_warm(timeout=10)
