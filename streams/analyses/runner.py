"""Runs analysis jobs (`streams.control.analyses`) next to the control agent.

For each Queued job the control agent committed, a runner task loads the customers page by
page from Redis (progress `loading profiles` n/N), hands them to the process pool
(`training` for similar customers, `analysing` for suggestions), stores suggestions (with
their time to live), and publishes the `AnalysisReport` on the control topic, where the
control agent finishes the job in order with every other command. A job canceled meanwhile
stops at the next page or when the pool returns (the pool itself is not interrupted).
After a takeover of the control partition, the new owner runs again the jobs left unfinished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from insights import InsightError
from insights.data import Customer
from state import Job, OutboxRecord, RegistryStore
from state.insights import ProgressStore, SuggestionStore
from state.reads import StateReads

from ..clock import now_ms
from ..failures import is_infrastructure
from ..messages import AnalysisReport
from ..publisher import Publisher
from ..settings import Settings
from ..stalls import retry_forever
from .pool import AnalysisCrashed, run_analysis

__all__ = ["AnalysisRunner"]

log = logging.getLogger(__name__)

Stage = Callable[[str, int, int], Awaitable[None]]


class _Canceled(Exception):
    pass


class AnalysisRunner:
    def __init__(
        self, settings: Settings, reads: StateReads, store: RegistryStore, publisher: Publisher
    ) -> None:
        self.settings = settings
        self.reads = reads
        self.store = store
        self.publisher = publisher
        self.progress = ProgressStore(reads, settings.job_retention_s)
        self.suggestions = SuggestionStore(reads, settings.suggestion_ttl_s)
        self.running: dict[str, asyncio.Task[None]] = {}

    def start(self, job: Job) -> None:
        """Run `job` in the background unless it already runs here."""
        if job.job_id in self.running:
            return
        task = asyncio.ensure_future(self._run(job))
        self.running[job.job_id] = task
        task.add_done_callback(lambda _t: self.running.pop(job.job_id, None))

    async def stop(self) -> None:
        for task in list(self.running.values()):
            task.cancel()

    async def _run(self, job: Job) -> None:
        report = await self.analyse(job)
        record = OutboxRecord(self.settings.control_topic, job.job_id.encode(), report.encode())
        await retry_forever(
            f"analysis report of job {job.job_id}", lambda: self.publisher.publish([record])
        )

    async def analyse(self, job: Job) -> AnalysisReport:
        """Run the analysis of `job` to its report (never raises but for cancellation)."""
        job_id = job.job_id

        async def stage(name: str, done: int, total: int) -> None:
            if await self.store.job_canceled(job_id):
                raise _Canceled
            await self.progress.set(job_id, name, done, total, now_ms())

        try:
            result = await self._analysis(job, stage)
            await stage("done", 1, 1)
            return AnalysisReport(job_id, "successful", result)
        except _Canceled:
            return AnalysisReport(job_id, "canceled")
        except InsightError as exc:
            return AnalysisReport(job_id, "failed", error=exc.to_dict())
        except AnalysisCrashed as exc:
            return AnalysisReport(job_id, "failed", error=exc.to_dict())
        except Exception as exc:
            if is_infrastructure(exc):
                raise
            log.exception("analysis job %s (%s) failed", job_id, job.command)
            error = {"code": "internal", "message": f"the analysis failed: {type(exc).__name__}"}
            return AnalysisReport(job_id, "failed", error=error)

    async def _customers(self, stage: Stage) -> list[Customer]:
        total = await self.reads.customer_count()
        customers: list[Customer] = []
        await stage("loading profiles", 0, total)
        async for page in self.reads.all_profiles():
            customers.extend(
                Customer(p.customer_id, dict(p.attrs), {t: list(r) for t, r in p.events.items()})
                for p in page
            )
            await stage("loading profiles", len(customers), total)
        return customers

    async def _analysis(self, job: Job, stage: Stage) -> dict[str, Any]:
        params = job.reply["params"]
        if job.command == "similar":
            if await self.reads.segment(params["source"]) is None:
                raise InsightError(
                    "not_found", f"source segment {params['source']!r} was deleted", "source"
                )
            members = {m async for ids in self.reads.member_ids(params["source"]) for m in ids}
            if not members:
                raise InsightError(
                    "empty_segment",
                    f"source segment {params['source']!r} has no members now",
                    "source",
                )
            customers = await self._customers(stage)
            await stage("training and scoring", 0, 1)
            args = (customers, members, now_ms(), params["size"], params["min_score"])
            hold = self.settings.analysis_hold_file  # tests only (LS_ANALYSIS_HOLD_FILE)
            result = dict(await run_analysis("lookalikes", *args, params["attributes"], hold=hold))
            # compact on the control topic: [[customer id, score], ...]
            result["chosen"] = [[c["customer_id"], c["score"]] for c in result.pop("customers")]
            return {"source": params["source"], **result}
        customers = await self._customers(stage)
        await stage("analysing", 0, 1)
        if job.command == "suggest_measure":
            result = await run_analysis(
                "measure",
                customers,
                params["primary"],
                params["using"],
                now_ms(),
                params["target"],
                params["max_depth"],
            )
        else:
            result = await run_analysis(
                "activity",
                customers,
                params["event"],
                params["value"],
                params["lookback_ms"],
                now_ms(),
            )
        stamp = now_ms()
        expires = stamp + int(self.settings.suggestion_ttl_s * 1000)
        for suggestion in result["suggestions"]:
            suggestion.update(suggested_at=stamp, expires_at=expires, job_id=job.job_id)
        await self.suggestions.save(result["suggestions"])
        return dict(result)
