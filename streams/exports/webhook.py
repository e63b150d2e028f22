"""Webhook destination: signed JSON batches of the changes since the last delivery.

Each batch is ``{"run_id", "export_id", "segment_id", "added": [{"customer_id",
"attributes"}...], "removed": [customer ids]}``, POSTed with
``X-Livesegments-Signature: sha256=<hex HMAC-SHA256 of the body with the secret>`` and
``X-Livesegments-Run: <run id>``. A batch is retried with exponential backoff (`retries`,
`backoff_s`, each wait capped by `LS_WEBHOOK_MAX_BACKOFF_S`), each attempt bounded by
`LS_WEBHOOK_TIMEOUT_S`; once acknowledged (2xx) exactly its changes are recorded as delivered
(`state.export_cursors.DeliveredStore`), so a run that fails midway resumes there next time. The
first run sends every member as added.

Redirects are not followed: a 3xx fails the run at once (followed, a 302 would turn the POST
into a GET that any server answers 200, and the batch would count as delivered). URLs in
messages are masked (`streams.exports.urls`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any, NoReturn

import aiohttp

from state.export_cursors import DeliveredStore

from ._members import Row, member_rows
from .context import ExportContext, SegmentRunResult
from .model import ExportDefinition, WebhookDestination
from .urls import mask_url, scrub

__all__ = ["RUN_HEADER", "SIGNATURE_HEADER", "backoff_delay", "deliver_webhook", "sign"]

SIGNATURE_HEADER = "X-Livesegments-Signature"
RUN_HEADER = "X-Livesegments-Run"


def backoff_delay(attempt: int, base_s: float, cap_s: float) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling, at most `cap_s`."""
    if base_s <= 0:
        return 0.0
    return min(cap_s, base_s * 2.0 ** min(attempt - 1, 64))


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class BatchFailed(Exception):
    """A batch that was not acknowledged after every retry."""


class _Sender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        store: DeliveredStore,
        export: ExportDefinition,
        destination: WebhookDestination,
        segment_id: str,
        run_id: str,
        max_backoff_s: float,
    ) -> None:
        self.max_backoff_s = max_backoff_s
        self.session = session
        self.store = store
        self.export = export
        self.destination = destination
        self.segment_id = segment_id
        self.run_id = run_id
        self.added: list[Row] = []
        self.removed: list[str] = []
        self.batches = 0
        self.sent_added = 0
        self.sent_removed = 0
        self.attempts = 0

    async def add(self, rows: list[Row]) -> None:
        for row in rows:
            self.added.append(row)
            if len(self.added) + len(self.removed) >= self.destination.batch_size:
                await self.flush()

    async def remove(self, ids: list[str]) -> None:
        for customer_id in ids:
            self.removed.append(customer_id)
            if len(self.added) + len(self.removed) >= self.destination.batch_size:
                await self.flush()

    async def flush(self) -> None:
        if not self.added and not self.removed:
            return
        body = json.dumps(
            {
                "run_id": self.run_id,
                "export_id": self.export.id,
                "segment_id": self.segment_id,
                "added": [{"customer_id": c, "attributes": a} for c, a in self.added],
                "removed": self.removed,
            },
            default=str,
            separators=(",", ":"),
        ).encode()
        await self._post(body)
        await self.store.acknowledge([c for c, _ in self.added], self.removed)
        self.batches += 1
        self.sent_added += len(self.added)
        self.sent_removed += len(self.removed)
        self.added, self.removed = [], []

    async def _post(self, body: bytes) -> None:
        destination = self.destination
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(destination.secret, body),
            RUN_HEADER: self.run_id,
        }
        last = ""
        for attempt in range(destination.retries + 1):
            if attempt:
                await asyncio.sleep(
                    backoff_delay(attempt, destination.backoff_s, self.max_backoff_s)
                )
            self.attempts += 1
            try:
                async with self.session.post(
                    destination.url, data=body, headers=headers, allow_redirects=False
                ) as r:
                    if 200 <= r.status < 300:
                        return
                    last = f"HTTP {r.status} {r.reason or ''}".strip()
                    if 300 <= r.status < 400:
                        self._redirected(r.status, r.headers.get("Location"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise BatchFailed(
            f"{self._batch()} not acknowledged by {mask_url(destination.url)} after "
            f"{destination.retries + 1} attempts; last error: {scrub(last, destination.url)}"
        )

    def _batch(self) -> str:
        added, removed = len(self.added), len(self.removed)
        return f"batch {self.batches + 1} ({added} added, {removed} removed)"

    def _redirected(self, status: int, location: str | None) -> NoReturn:
        """A 3xx: never followed, never retried (the same POST gets the same answer)."""
        url = self.destination.url
        target = f" to {mask_url(location)}" if location else ""
        raise BatchFailed(
            f"{self._batch()} not delivered: {mask_url(url)} answered HTTP {status}, a "
            f"redirect{target}; redirects are not followed (a POST would be sent again as a "
            "GET): point the export at the final URL"
        )

    def details(self) -> dict[str, Any]:
        return {
            "added": self.sent_added,
            "removed": self.sent_removed,
            "batches": self.batches,
            "attempts": self.attempts,
        }


async def deliver_webhook(
    ctx: ExportContext,
    export: ExportDefinition,
    destination: WebhookDestination,
    segment_id: str,
    run_id: str,
) -> SegmentRunResult:
    store = DeliveredStore(ctx.redis, ctx.keyspace, export.id, segment_id, run_id)
    timeout = aiohttp.ClientTimeout(total=ctx.webhook_timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sender = _Sender(
            session, store, export, destination, segment_id, run_id, ctx.webhook_max_backoff_s
        )
        try:
            async for rows in member_rows(ctx.reads, segment_id, export.attributes):
                fresh = set(await store.see([c for c, _ in rows]))
                await sender.add([row for row in rows if row[0] in fresh])
            if await store.prepare_removed():
                while ids := await store.pop_removed(destination.batch_size):
                    await sender.remove(ids)
            await sender.flush()
        except BatchFailed as exc:
            return SegmentRunResult(
                "Failure",
                sender.sent_added + sender.sent_removed,
                str(exc),
                (str(exc),),
                sender.details(),
            )
        finally:
            await store.cleanup()
    return SegmentRunResult(
        "Successful", sender.sent_added + sender.sent_removed, None, (), sender.details()
    )
