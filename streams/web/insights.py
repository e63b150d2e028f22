"""AI-found segments and insights over HTTP: overlap, differentiators, suggested segments
(by measure, by activity), preview and accept, and similar customers (lookalikes).

The analyses (`insights/`) are pure and CPU-bound: they run in a one-process pool (spawned,
so no state of the worker is inherited), never on the worker's event loop, which keeps
consuming events meanwhile. Profiles are read page by page from Redis first and sent to the
pool as plain values. Accepting a suggestion sends the normal `create` command through the
control topic: the new segment is an ordinary dynamic segment, exact in real time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from insights import InsightError, tasks
from insights.data import Customer
from insights.overlap import Overlap, check_segment_ids, count_regions
from segment_rules import NO_LIMITS, compile_segment, parse_definition
from state.insights import SuggestionStore, all_customers, partition_member_sets

from .api import ApiBase, Page
from .auth import require_token
from .errors import ApiError
from .requests import json_response, query_int, read_json

__all__ = ["InsightViews", "register"]

PREVIEW = 20
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def _now() -> int:
    return int(time.time() * 1000)


def _bad(exc: InsightError) -> ApiError:
    return ApiError(400, exc.code, exc.message, exc.path)


def _duration_ms(raw: Any, path: str) -> int:
    text = str(raw)
    if len(text) >= 2 and text[:-1].isdigit() and text[-1] in _UNIT_MS and int(text[:-1]) > 0:
        return int(text[:-1]) * _UNIT_MS[text[-1]]
    raise ApiError(400, "bad_duration", f"{raw!r} is not a duration like 90d or 12h", path)


class InsightViews:
    def __init__(self, api: ApiBase) -> None:
        self.api = api
        self.suggestions = SuggestionStore(api.reads)

    async def _customers(self) -> list[Customer]:
        return [
            Customer(p.customer_id, dict(p.attrs), {t: list(r) for t, r in p.events.items()})
            async for p in all_customers(self.api.reads)
        ]

    async def _members(self, segment_id: str, path: str) -> set[str]:
        if await self.api.reads.segment(segment_id) is None:
            raise ApiError(404, "not_found", f"no segment {segment_id!r}", path)
        return {m async for ids in self.api.reads.member_ids(segment_id) for m in ids}

    async def _run(self, task: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_executor(), tasks.run, task, *args)
        except InsightError as exc:
            raise _bad(exc) from None
        except BrokenProcessPool:
            global _pool
            _pool = None  # the next analysis starts a fresh process
            raise ApiError(
                500, "analysis_failed", f"the {task} analysis process died (see worker log)"
            ) from None

    # -- insights -------------------------------------------------------------------------
    async def overlap(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        body = await read_json(request)
        ids = body.get("segment_ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "wrong_type", "'segment_ids' must be a list of segment ids",
                           "segment_ids")  # fmt: skip
        try:
            check_segment_ids(ids)
        except InsightError as exc:
            raise _bad(exc) from None
        for i, sid in enumerate(ids):
            if await self.api.reads.segment(sid) is None:
                raise ApiError(404, "not_found", f"no segment {sid!r}", f"segment_ids[{i}]")
        result = Overlap(tuple(ids), {})
        for partition in range(self.api.reads.partitions):
            sets = await partition_member_sets(self.api.reads, partition, ids)
            result = result.add(count_regions(sets))
        return json_response(web, result.to_dict())

    async def differentiators(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        members = await self._members(id, "segment_id")
        vs = request.query.get("vs") or None
        baseline_ids = await self._members(vs, "vs") if vs else None
        limit = query_int(request, "limit", 10, 1, 100)
        customers = await self._customers()
        segment = [c for c in customers if c.customer_id in members]
        baseline = (
            customers if baseline_ids is None
            else [c for c in customers if c.customer_id in baseline_ids]
        )  # fmt: skip
        result = await self._run("differentiators", segment, baseline, _now(), limit)
        return json_response(web, {"segment_id": id, "vs": vs or "all customers", **result})

    # -- suggestions ----------------------------------------------------------------------
    async def _suggested(self, result: dict[str, Any]) -> dict[str, Any]:
        stamp = _now()
        await self.suggestions.save([{**s, "suggested_at": stamp} for s in result["suggestions"]])
        return result

    async def by_measure(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        body = await read_json(request)
        primary = body.get("primary")
        if not isinstance(primary, str) or not primary:
            raise ApiError(400, "missing_field", "'primary' (an attribute name) is required",
                           "primary")  # fmt: skip
        using = body.get("using") or []
        if not isinstance(using, list) or not all(isinstance(u, str) for u in using):
            raise ApiError(400, "wrong_type", "'using' must be a list of attribute names", "using")
        depth = body.get("max_depth", 3)
        if not isinstance(depth, int) or not 1 <= depth <= 6:
            raise ApiError(400, "invalid_value", "'max_depth' must be 1..6", "max_depth")
        customers = await self._customers()
        result = await self._run(
            "measure", customers, primary, using, _now(), body.get("target"), depth
        )
        return json_response(web, await self._suggested(result))

    async def by_activity(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=False)
        body = await read_json(request)
        event = body.get("event")
        if not isinstance(event, str) or not event:
            raise ApiError(400, "missing_field", "'event' (an event type) is required", "event")
        value = body.get("value")
        if value is not None and not isinstance(value, str):
            raise ApiError(400, "wrong_type", "'value' must be a property name", "value")
        lookback = _duration_ms(body.get("lookback", "90d"), "lookback")
        if lookback > self.api.settings.history_max_age_ms:
            raise ApiError(
                400, "limit_exceeded",
                f"lookback {body.get('lookback')!r} is longer than the event history kept "
                "(LS_HISTORY_MAX_AGE_MS)", "lookback",
            )  # fmt: skip
        customers = await self._customers()
        result = await self._run("activity", customers, event, value, lookback, _now())
        return json_response(web, await self._suggested(result))

    async def _suggestion(self, suggestion_id: str) -> dict[str, Any]:
        found = await self.suggestions.get(suggestion_id)
        if found is None:
            raise ApiError(404, "not_found", f"no suggestion {suggestion_id!r}", "suggestion_id")
        return found

    async def preview(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        suggestion = await self._suggestion(id)
        limit = query_int(request, "limit", PREVIEW, 1, 1000)
        compiled = compile_segment(parse_definition(suggestion["definition"], NO_LIMITS))
        now = _now()
        cutoff = now - self.api.settings.history_max_age_ms
        members: list[str] = []
        count = 0
        async for profile in all_customers(self.api.reads):
            if compiled.evaluate(profile.snapshot(cutoff), now):
                count += 1
                members.append(profile.customer_id)
        members.sort()
        body = {**suggestion, "estimate": count, "members": members[:limit]}
        return json_response(web, body)

    async def accept(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=True)
        raw = await request.read()
        body = await read_json(request) if raw.strip() else {}
        suggestion = await self._suggestion(id)
        definition = dict(suggestion["definition"])
        for field in ("id", "name"):
            if isinstance(body.get(field), str) and body[field]:
                definition[field] = body[field]
        command = {
            "command": "create",
            "segment": definition,
            "activate": body.get("activate", False) is True,
        }
        result = await self.api.gateway.command(command)
        return json_response(web, {"suggestion_id": id, **result}, status=201)

    # -- similar customers ----------------------------------------------------------------
    async def similar(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=False)
        raw = await request.read()
        body = await read_json(request) if raw.strip() else {}
        members = await self._members(id, "segment_id")
        size = body.get("size")
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ApiError(400, "invalid_value", "'size' must be a positive integer", "size")
        min_score = body.get("min_score", 0.4)
        if not isinstance(min_score, int | float) or isinstance(min_score, bool):
            raise ApiError(400, "wrong_type", "'min_score' must be a number 0..1", "min_score")
        attributes = body.get("attributes")
        if attributes is not None and (
            not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes)
        ):
            raise ApiError(400, "wrong_type", "'attributes' must be a list of names",
                           "attributes")  # fmt: skip
        customers = await self._customers()
        result = await self._run(
            "lookalikes", customers, members, _now(), size, float(min_score), attributes
        )
        return json_response(web, {"source": id, **result})


def register(page: Page, api: ApiBase) -> InsightViews:
    """Add the routes through `page(path, name, **method_handlers)`."""
    views = InsightViews(api)
    page("/insights/overlap", "insights_overlap", post=views.overlap)
    page("/segments/{id}/differentiators", "segment_differentiators", get=views.differentiators)
    page("/segments/{id}/similar", "segment_similar", post=views.similar)
    page("/suggestions/measure", "suggestions_measure", post=views.by_measure)
    page("/suggestions/activity", "suggestions_activity", post=views.by_activity)
    page("/suggestions/{id}", "suggestion", get=views.preview)
    page("/suggestions/{id}/accept", "suggestion_accept", post=views.accept)
    return views
