"""Webhook destination against a real aiohttp server on a loopback port."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from state.export_cursors import DeliveredStore
from streams.exports import ExportContext, ExportDefinition, parse_export, run_export_segment
from streams.exports.webhook import backoff_delay

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
        self.redirects = 0
        self.landings: list[str] = []
        self.release = asyncio.Event()

    async def moved(self, request: web.Request) -> web.Response:
        """Answers 302 to a page that takes any method, as a moved endpoint would."""
        self.redirects += 1
        raise web.HTTPFound("/landing?token=landing-token-789")

    async def landing(self, request: web.Request) -> web.Response:
        self.landings.append(request.method)
        return web.Response(status=200, text="ok")

    async def slow(self, request: web.Request) -> web.Response:
        """Never answers (until the test ends)."""
        self.requests += 1
        await self.release.wait()
        return web.Response(status=204)

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
    app.router.add_post("/moved", hook.moved)
    app.router.add_route("*", "/landing", hook.landing)
    app.router.add_post("/slow", hook.slow)
    runner = web.AppRunner(app)
    await runner.setup()
    server = Server(runner, free_port())
    await server.start()
    yield hook, f"http://127.0.0.1:{server.port}/hook", server
    hook.release.set()
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


async def test_a_redirect_fails_the_run_and_nothing_counts_as_delivered(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    # followed, the 302 turned the POST into a GET that /landing answered 200, and the batch
    # was recorded as delivered although no receiver ever got it
    hook, url, _ = receiver
    await put_customers(ctx.redis, ctx.keyspace, {f"c{i}": {"n": i} for i in range(3)})
    moved = url.replace("/hook", "/moved")
    result = await run_export_segment(ctx, _export(moved, retries=3), "seg", "run-1")
    assert (result.status, result.count) == ("Failure", 0)
    reason = result.reason or ""
    assert "HTTP 302" in reason and "redirects are not followed" in reason
    assert "/landing?token=***" in reason and "landing-token-789" not in reason
    assert hook.redirects == 1  # not retried: the same POST gets the same answer
    assert hook.landings == []
    store = DeliveredStore(ctx.redis, ctx.keyspace, "hook", "seg", "-")
    assert await store.delivered_ids() == set()
    delivered = await run_export_segment(ctx, _export(url), "seg", "run-2")
    assert (delivered.status, delivered.count) == ("Successful", 3)


@given(
    attempt=st.integers(1, 1000),
    base=st.floats(0, 60, allow_nan=False),
    cap=st.floats(0.001, 3600, allow_nan=False),
)
def test_backoff_doubles_and_never_passes_the_cap(attempt: int, base: float, cap: float) -> None:
    delay = backoff_delay(attempt, base, cap)
    assert 0 <= delay <= cap
    assert delay <= backoff_delay(attempt + 1, base, cap)
    if attempt <= 65 and base * 2 ** (attempt - 1) <= cap:
        assert delay == base * 2 ** (attempt - 1)  # doubling until the cap
    if base >= 0.001:
        assert backoff_delay(100, base, cap) == cap


async def test_backoff_is_capped_in_a_run(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    await put_customers(ctx.redis, ctx.keyspace, {"c0": {"n": 0}})
    ctx.webhook_max_backoff_s = 0.05
    hook.fail_next = 2
    export = _export(url, retries=2, backoff_s=60)  # uncapped: 60 s, then 120 s
    result = await asyncio.wait_for(run_export_segment(ctx, export, "seg", "r"), 30)
    assert (result.status, result.details["attempts"]) == ("Successful", 3)


async def test_a_receiver_that_never_answers_fails_the_run_by_the_timeout(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, _ = receiver
    await put_customers(ctx.redis, ctx.keyspace, {"c0": {"n": 0}})
    ctx.webhook_timeout_s = 0.5
    export = _export(url.replace("/hook", "/slow"), retries=1)
    result = await asyncio.wait_for(run_export_segment(ctx, export, "seg", "r"), 30)
    assert result.status == "Failure" and "TimeoutError" in (result.reason or "")
    assert hook.requests == 2


async def test_credentials_in_the_url_never_appear_in_errors(
    ctx: ExportContext, receiver: tuple[Receiver, str, Server]
) -> None:
    hook, url, server = receiver
    await put_customers(ctx.redis, ctx.keyspace, {"c0": {"n": 0}})
    secret_url = url.replace("http://", "http://bob:pw-secret-123@") + "?token=tok-secret-456"
    export = _export(secret_url, retries=1)
    hook.fail_next = 2
    refused = await run_export_segment(ctx, export, "seg", "r1")
    await server.stop()
    unreachable = await run_export_segment(ctx, export, "seg", "r2")
    await server.start()
    for result in (refused, unreachable):
        shown = repr(result)
        assert result.status == "Failure"
        assert "pw-secret-123" not in shown and "tok-secret-456" not in shown
        assert f"http://***@127.0.0.1:{server.port}/hook?token=***" in (result.reason or "")
    assert "pw-secret-123" not in repr(export) and "tok-secret-456" not in repr(export)
