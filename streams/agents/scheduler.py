"""The scheduler timer, on the leader only: due schedules become control commands.

Every `interval_s` it reads the schedules due now (two sorted sets by due time) and publishes
`run_schedule` / `run_refresh_schedule` on the control topic, so a scheduled action goes
through the same ordered, audited path as an operator's command. The request id is
`schedule:<id>:<due>` (`refresh-schedule:<id>:<due>`): publishing the same one twice (a new
leader, or a retry) is applied once by the control agent, which removes or advances the
schedule in the same commit. A schedule that was due while no worker ran is found at the
next tick and runs once.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from state.schedules import ScheduleStore

from ..settings import Settings

__all__ = ["DueCommands", "Scheduler", "register"]

log = logging.getLogger(__name__)

RETRY_MS = 5000
"""A command published for a due schedule is published again when the schedule is still
pending this long after (the control agent was busy or the message was lost)."""


class DueCommands:
    """Publishes the control commands of due schedules, each again after `RETRY_MS` while it
    stays due (their deterministic request ids make a repeat harmless)."""

    def __init__(self, app: Any, topic: str) -> None:
        self.app = app
        self.topic = topic
        self._sent: dict[str, int] = {}
        """request id -> when it was published (epoch ms)."""

    async def publish(self, commands: list[dict[str, Any]], now: int) -> int:
        pending = {c["request_id"] for c in commands}
        self._sent = {k: v for k, v in self._sent.items() if k in pending}
        sent = 0
        for command in commands:
            request_id = command["request_id"]
            if now - self._sent.get(request_id, -RETRY_MS) < RETRY_MS:
                continue
            value = json.dumps(command, sort_keys=True).encode()
            delivery = await self.app.producer.send(
                self.topic, request_id.encode(), value, None, None, None
            )
            await delivery
            self._sent[request_id] = now
            sent += 1
            log.info("due: published %s", request_id)
        return sent


class Scheduler:
    def __init__(self, app: Any, settings: Settings, store: ScheduleStore) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self.due = DueCommands(app, settings.control_topic)

    def commands(
        self, once: list[tuple[str, int]], recurring: list[tuple[str, int]]
    ) -> list[dict[str, Any]]:
        found = [
            {"command": "run_schedule", "schedule_id": i, "due": due,
             "request_id": f"schedule:{i}:{due}"}
            for i, due in once
        ] + [
            {"command": "run_refresh_schedule", "schedule_id": i, "due": due,
             "request_id": f"refresh-schedule:{i}:{due}"}
            for i, due in recurring
        ]  # fmt: skip
        return found

    async def tick(self, now_ms: int | None = None) -> int:
        """Publish a command for every due schedule not published recently; returns how many."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        once, recurring = await self.store.due(now)
        return await self.due.publish(self.commands(once, recurring), now)


def register(app: Any, settings: Settings, store: ScheduleStore, interval_s: float) -> Any:
    scheduler = Scheduler(app, settings, store)

    @app.timer(interval=interval_s, on_leader=True, name="scheduler")  # type: ignore[untyped-decorator]
    async def schedules() -> None:
        try:
            await scheduler.tick()
        except Exception:
            log.exception("scheduler tick failed; retried at the next tick")

    return scheduler
