"""The one-process pool the analyses run in (`insights.tasks.run`).

Spawned, so it inherits nothing of the worker; numpy and scikit-learn are imported there
only. The worker's event loop awaits the result and keeps consuming events meanwhile. The
process exits when the worker does, also when the worker is SIGKILLed (`_exit_with_parent`):
otherwise a killed worker would leave it idle forever.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from insights import tasks
from livesegments_error import LiveSegmentsError

__all__ = ["AnalysisCrashed", "run_analysis"]

_pool: ProcessPoolExecutor | None = None
_PARENT_CHECK_S = 1.0


class AnalysisCrashed(LiveSegmentsError):
    """The analysis process died (killed, out of memory); the next analysis starts anew."""

    def __init__(self, task: str) -> None:
        super().__init__(
            f"the {task} analysis process died (see the worker log)", code="analysis_failed"
        )


def _exit_with_parent(parent: int) -> None:
    """In the pool's process: exit as soon as `parent` (the worker) is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-worker", daemon=True).start()


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
    return _pool


def _run_held(hold: str, task: str, *args: Any) -> Any:
    """In the pool's process: `tasks.run(task, *args)`, then wait while the file `hold`
    exists (a test's proof that the worker goes on while an analysis runs)."""
    result = tasks.run(task, *args)
    while os.path.exists(hold):
        time.sleep(0.05)
    return result


async def run_analysis(task: str, *args: Any, hold: str = "") -> Any:
    """`insights.tasks.run(task, *args)` in the pool; InsightError passes through.

    `hold` (tests only, `LS_ANALYSIS_HOLD_FILE`): a file whose existence keeps the analysis
    running in the pool after its result is computed; empty, the default: no hold."""
    loop = asyncio.get_running_loop()
    try:
        if hold:
            return await loop.run_in_executor(_executor(), _run_held, hold, task, *args)
        return await loop.run_in_executor(_executor(), tasks.run, task, *args)
    except BrokenProcessPool:
        global _pool
        _pool = None
        raise AnalysisCrashed(task) from None
