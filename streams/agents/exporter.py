"""The exporter agent and the export schedule timer.

The control agent records an export run as a job and publishes a run request on the
export-runs topic (`streams.topics.export_runs_topic`, one partition). This agent runs the
request's tasks one segment after the other with `streams.exports.runner.run_export_segment`
and reports each task on the control topic (`_export_done`: started, then finished), where
the control agent folds the reports into the job. Slow I/O (files, Kafka, webhooks) happens
here, never in the control agent's loop.

Requests of different exports run concurrently (at most `LS_EXPORT_CONCURRENCY` at once),
those of one export one at a time in order (`Lanes`): a slow or unreachable destination holds
up only its own export. A request is acknowledged to Kafka only once it ran (faust commits
the contiguous acknowledged prefix), so delivery is at least once: a request delivered again
(a crash, a rebalance) runs only the tasks its job has not finished yet.

The timer (leader only) publishes `run_export_schedule` for every scheduled export that is
due, with the request id `export-schedule:<id>:<due>`, like `streams.agents.scheduler`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from redis.asyncio import Redis

from state import KeySpace
from state.export_registry import ExportStore

from ..clock import now_ms
from ..errors import BadMessage
from ..exports.runs import ExportRunner, Lanes
from ..messages import ExportRun, decode_map
from ..settings import Settings
from ..stalls import retry_forever
from .scheduler import DueCommands

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(
    app: Any, topic: Any, settings: Settings, redis: Redis, partitions: int, interval_s: float
) -> ExportRunner:
    runner = ExportRunner(app, settings, redis, partitions)
    exports = ExportStore(redis, KeySpace(settings.key_prefix))
    due_commands = DueCommands(app, settings.control_topic)

    async def carry_out(stream: Any, event: Any, request: ExportRun, where: str) -> None:
        # Redis or Kafka down: retried (the tasks already finished are not run again)
        await retry_forever(f"export run at {where}", functools.partial(runner.run, request))
        await stream.ack(event)  # only now may Kafka's committed offset pass it

    @app.agent(topic, concurrency=1, name="exporter")  # type: ignore[untyped-decorator]
    async def exporter(stream: Any) -> None:
        lanes = Lanes(settings.export_concurrency)
        try:
            async for event in stream.events():
                message = event.message
                where = f"{message.topic}[{message.partition}]@{message.offset}"
                try:
                    request = ExportRun.decode(decode_map(event.value, "export run request"))
                except BadMessage as exc:
                    log.warning("%s: bad export run request dropped: %s", where, exc.message)
                    continue
                key = request.export_id
                message.incref()  # held until the run is over (`carry_out`)
                lanes.submit(key, functools.partial(carry_out, stream, event, request, where))
        finally:
            await lanes.cancel()

    @app.timer(interval=interval_s, on_leader=True, name="export_scheduler")  # type: ignore[untyped-decorator]
    async def export_schedules() -> None:
        try:
            now = now_ms()
            commands = [
                {"command": "run_export_schedule", "export_id": i, "due": at,
                 "request_id": f"export-schedule:{i}:{at}"}
                for i, at in await exports.due(now)
            ]  # fmt: skip
            await due_commands.publish(commands, now)
        except Exception:
            log.exception("export schedule tick failed; retried at the next tick")

    return runner
