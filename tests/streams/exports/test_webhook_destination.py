"""Webhook destination against a real aiohttp server on a loopback port."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from state.exports import DeliveredStore
from streams.exports import ExportContext, ExportDefinition, parse_export, run_export_segment

from ..fixtures import free_port
from .fixtures import put_customers

SECRET = "test-signing-secret"


class Receiver:
    """Verifies each request's HMAC, records the accepted batches; can fail on demand.

    What is wrong with a request goes to `problems`, which the `receiver` fixture asserts
    empty: an `assert` inside the handler would only become an HTTP 500 inside aiohttp."""

    def __init__(self) -> None:
        self.batches: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.fail_next = 0
        self.requests = 0
        self.bad_signatures = 0
        self.accept: int | None = None
        """When set, how many more batches to acknowledge; after that every request fails."""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        signature = request.headers.get("X-Livesegments-Signature", "")
        if not hmac.compare_digest(signature, expected):
            self.bad_signatures += 1
            self.problems.append(f"request {self.requests}: bad signature {signature!r}")
            return web.Response(status=401)
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503)
        if self.accept is not None:
            if self.accept <= 0:
                return web.Response(status=500)
            self.accept -= 1
        batch = json.loads(body)
        run = request.headers.get("X-Livesegments-Run")
        if run != batch["run_id"]:
            self.problems.append(
                f"request {self.requests}: header X-Livesegments-Run {run!r} != "
                f"body run_id {batch['run_id']!r}"
            )
            return web.Response(status=400)
        self.batches.append(batch)
        return web.Response(status=204)

    def take(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Added (id -> attributes) and removed ids of the batches so far; then forget them."""
        added = {a["customer_id"]: a["attributes"] for b in self.batches for a in b["added"]}
        removed = {r for b in self.batches for r in b["removed"]}
        self.batches = []
        return added, removed


class Server:
    """The receiver's aiohttp server on a fixed loopback port; can go down and come back."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self.runner = runner
        self.port = port
        self.site: web.TCPSite | None = None

    async def start(self) -> None:
        self.site = web.TCPSite(self.runner, "127.0.0.1", self.port)
        await self.site.start()

    async def stop(self) -> None:
        assert self.site is not None
        await self.site.stop()
        self.site = None


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str, Server]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    server = Server(runner, free_port())
    await server.start()
    yield hook, f"http://127.0.0.1:{server.port}/hook", server
    await runner.cleanup()
    assert not hook.problems, "the webhook receiver saw bad requests:\n" + "\n".join(hook.problems)


def _export(url: str, batch_size: int = 3, retries: int = 3, **extra: Any) -> ExportDefinition:
    destination = {
        "type": "webhook",
        "url": url,
        "secret": SECRET,
        "batch_size": batch_size,
        "retries": retries,
        "backoff_s": 0.01,
        **extra,
    }
    return parse_export(
        {
            "id": "hook",
            "name": "Hook",
            "segments": ["seg"],
            "attributes": ["n"],
            "destination": destination,
        }
    )


async def test_three_runs_deliver_exactly_the_deltas(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    export = _export(url)
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i, "x": 0} for i in range(7)})

    first = await run_export_segment(ctx, export, "seg", "run-1")
    assert (first.status, first.count) == ("Successful", 7)
    assert first.details["batches"] == 3  # batches of 3: 3 + 3 + 1
    assert all(len(b["added"]) + len(b["removed"]) <= 3 for b in hook.batches)
    assert {(b["run_id"], b["export_id"], b["segment_id"]) for b in hook.batches} == {
        ("run-1", "hook", "seg")
    }
    added, removed = hook.take()
    assert added == {f"c{i}": {"n": i} for i in range(7)} and removed == set()

    # c0, c1 leave; c7, c8 join; c2's profile changes but it stays a member
    await put_customers(
        ctx.redis,
        ctx.keyspace,
        {"c7": {"n": 7}, "c8": {"n": 8}, "c2": {"n": 22}},
        {"c0": False, "c1": False, "c7": True, "c8": True},
    )
    second = await run_export_segment(ctx, export, "seg", "run-2")
    assert (second.status, second.count) == ("Successful", 4)
    added, removed = hook.take()
    assert added == {"c7": {"n": 7}, "c8": {"n": 8}} and removed == {"c0", "c1"}

    await put_customers(ctx.redis, ctx.keyspace, {}, {"c0": True, "c8": False})
    third = await run_export_segment(ctx, export, "seg", "run-3")
    added, removed = hook.take()
    assert added == {"c0": {"n": 0}} and removed == {"c8"}
    assert third.details == {"added": 1, "removed": 1, "batches": 1, "attempts": 1}

    nothing = await run_export_segment(ctx, export, "seg", "run-4")
    assert (nothing.status, nothing.count, hook.requests) == ("Successful", 0, 3 + 2 + 1)
    assert hook.bad_signatures == 0


async def test_a_receiver_failing_twice_then_succeeding_gets_each_batch_once(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i} for i in range(4)})
    hook.fail_next = 2
    result = await run_export_segment(ctx, _export(url, batch_size=10), "seg", "r")
    assert (result.status, result.count) == ("Successful", 4)
    assert result.details["attempts"] == 3 and hook.requests == 3
    assert len(hook.batches) == 1 and len(hook.batches[0]["added"]) == 4


async def test_a_run_that_fails_midway_resumes_where_it_stopped(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    export = _export(url, batch_size=2, retries=1)
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i} for i in range(6)})
    hook.accept = 1  # the first batch is acknowledged, every later request fails
    failed = await run_export_segment(ctx, export, "seg", "run-1")
    assert (failed.status, failed.count) == ("Failure", 2)
    assert failed.errors and "HTTP 500" in failed.errors[0] and "2 attempts" in failed.errors[0]
    first, _ = hook.take()
    store = DeliveredStore(ctx.redis, ctx.keyspace, "hook", "seg", "-")
    assert await store.delivered_ids() == set(first) and len(first) == 2

    hook.accept = None
    resumed = await run_export_segment(ctx, export, "seg", "run-2")
    assert (resumed.status, resumed.count) == ("Successful", 4)
    rest, removed = hook.take()
    assert set(rest) == {f"c{i}" for i in range(6)} - set(first) and removed == set()
    assert await store.delivered_ids() == {f"c{i}" for i in range(6)}
    scratch = f"{{{ctx.keyspace.prefix}:export:*:run:*"
    assert not [k async for k in ctx.redis.scan_iter(match=scratch)]  # scratch sets gone


async def test_a_receiver_down_for_a_whole_run_fails_it_and_the_next_run_resumes(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, server = receiver
    export = _export(url, batch_size=2, retries=2)
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i} for i in range(3)})
    await server.stop()  # nothing listens on the port any more
    down = await run_export_segment(ctx, export, "seg", "run-1")
    assert (down.status, down.count) == ("Failure", 0)
    assert "3 attempts" in (down.reason or "") and "127.0.0.1" in (down.reason or "")
    assert SECRET not in repr(down)

    await server.start()  # back on the same port
    up = await run_export_segment(ctx, export, "seg", "run-2")
    assert (up.status, up.count) == ("Successful", 3)
    added, _ = hook.take()
    assert set(added) == {"c0", "c1", "c2"}


async def test_over_the_limit_is_skipped_with_nothing_delivered(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i} for i in range(5)})
    result = await run_export_segment(ctx, _export(url, max_profiles=4), "seg", "r")
    assert (result.status, result.count) == ("Skipped", 5)
    assert "limit of 4" in (result.reason or "")
    assert hook.requests == 0
    ok = await run_export_segment(ctx, _export(url, max_profiles=5), "seg", "r2")
    assert (ok.status, ok.count) == ("Successful", 5)
