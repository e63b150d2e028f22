"""Export runs as the exporter agent carries them out, and the lanes that keep them apart.

The control plane records an export run as a job and publishes a run request on the
export-runs topic. `ExportRunner.run` carries one request out: the segments of its job not
finished yet, one after the other (`runner.run_export_segment`), each reported on the control
topic. `Lanes` runs the requests of different exports side by side (at most
`LS_EXPORT_CONCURRENCY` at once) and one export's requests in order, so a slow destination
holds up only its own export.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from state import KeySpace, RegistryStore
from state.export_cursors import forget_export
from state.export_registry import ExportStore

from ..clock import now_ms
from ..messages import ExportReport, ExportRun
from ..settings import Settings
from .errors import ExportError
from .model import parse_export
from .policy import ExportPolicy
from .runner import ExportContext, SegmentRunResult, run_export_segment

__all__ = ["ExportRunner", "Lanes"]

log = logging.getLogger(__name__)


class Lanes:
    """Work keyed by export: at most `limit` pieces at once, one at a time per key, in the
    order they were submitted."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)
        self._locks: dict[str, asyncio.Lock] = {}
        self._queued: dict[str, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def submit(self, key: str, work: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._queued[key] = self._queued.get(key, 0) + 1

        async def lane() -> None:
            try:
                async with lock, self.slots:  # asyncio.Lock wakes its waiters in order
                    await work()
            finally:
                self._queued[key] -= 1
                if not self._queued[key]:
                    del self._queued[key], self._locks[key]

        task = asyncio.get_running_loop().create_task(lane())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def cancel(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(BaseException):
                await task


class ExportRunner:
    """Carries out export run requests: each task not finished yet, reported on the control
    topic (`_export_done`: started, then finished) where the control plane folds it into
    the job."""

    def __init__(self, app: Any, settings: Settings, redis: Redis, partitions: int) -> None:
        self.app = app
        self.settings = settings
        self.redis = redis
        self.keyspace = keyspace = KeySpace(settings.key_prefix)
        self.registry = RegistryStore(redis, keyspace)
        self.exports = ExportStore(redis, keyspace)
        self.context = ExportContext.from_settings(settings, redis, partitions, now_ms)
        self.policy = ExportPolicy.from_settings(settings)

    async def _report(self, report: ExportReport) -> None:
        value = report.encode()
        delivery = await self.app.producer.send(
            self.settings.control_topic, report.job_id.encode(), value, None, None, None
        )
        await delivery

    async def run(self, request: ExportRun) -> None:
        """Carry out one run request: each of its tasks not finished yet, in order; or, for a
        deleted export (`forget`), drop its delivery state."""
        if request.forget:
            removed = await forget_export(self.redis, self.keyspace, request.export_id)
            log.info("export %s deleted: %d delivery keys removed", request.export_id, removed)
            return
        job_id, export_id = str(request.job_id), request.export_id
        job = await self.registry.job(job_id)
        if job is None or job.finished_at is not None:
            log.info("export run %s: job unknown or finished, nothing to do", job_id)
            return
        stored = await self.exports.export(export_id)
        failure: str | None = None
        if stored is None:
            failure = f"export {export_id!r} was removed before it ran"
        else:
            try:
                export = parse_export(stored.definition)
                self.policy.check(export)  # LS_EXPORT_ROOT or the topics may have changed
            except ExportError as exc:
                failure = f"the stored export is refused: {exc.message}"
        for segment_id in request.segments:
            task = job.tasks.get(segment_id)
            if task is None or task.finished:
                continue
            if failure is not None:
                await self._report(
                    ExportReport(job_id, segment_id, "finished", now_ms(), "Failure", 0,
                                 errors=(failure,))
                )  # fmt: skip
                continue
            await self._report(ExportReport(job_id, segment_id, "started", now_ms()))
            try:
                result = await run_export_segment(self.context, export, segment_id, job_id)
            except Exception as exc:  # the runner should not raise; a task fails, we go on
                log.exception("export %s segment %s failed", export_id, segment_id)
                result = SegmentRunResult("Failure", 0, str(exc), (repr(exc),))
            log.info(
                "export %s segment %s (job %s): %s, %d profiles",
                export_id, segment_id, job_id, result.status, result.count,
            )  # fmt: skip
            await self._report(
                ExportReport(
                    job_id,
                    segment_id,
                    "finished",
                    now_ms(),
                    result.status,
                    result.count,
                    result.reason,
                    tuple(result.errors),
                    json.loads(json.dumps(result.details, default=str)),
                )
            )
