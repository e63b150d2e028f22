"""The analysis pool's process does not outlive a killed worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# A stand-in worker: starts the pool, prints the pool process's pid, then waits to be killed.
_WORKER = """
import os, sys, time
from streams.analyses import pool
print(pool._executor().submit(os.getpid).result(timeout=60), flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_pool_process_exits_when_the_worker_is_sigkilled() -> None:
    child = 0
    worker = subprocess.Popen(
        [sys.executable, "-c", _WORKER], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert worker.stdout is not None
        child = int(worker.stdout.readline())
        assert child != worker.pid and _alive(child)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), f"the analysis process {child} outlived its killed worker"
    finally:
        worker.kill()
        worker.wait()
        if child and _alive(child):
            os.kill(child, signal.SIGKILL)
