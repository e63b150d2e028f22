"""AI-found segments and insights over HTTP: overlap, differentiators, suggested segments
(by measure, by activity), preview and accept, and similar customers (lookalikes).

Similar customers and the two suggestions are analysis jobs: the route sends the control
command (`streams.control.analyses`) and answers 202 with the job, whose progress and result
`GET /jobs/{id}` shows. Overlap (set counts) and differentiators (one pass, no training) stay
synchronous: they take seconds. Differentiators run in the analyses' process pool, never on
the worker's event loop. Accepting a suggestion sends the normal `create` command through the
control topic: the new segment is an ordinary dynamic segment, exact in real time.
"""

from __future__ import annotations

import time
from typing import Any

from insights import InsightError
from insights.data import Customer
from insights.overlap import Overlap, check_segment_ids, count_regions
from segment_rules import NO_LIMITS, compile_segment, parse_definition
from state.insights import SuggestionStore, all_customers, partition_member_sets

from ..analyses import AnalysisCrashed, run_analysis
from .api import ApiBase, Page
from .auth import require_token
from .errors import ApiError
from .requests import json_response, query_int, read_json

__all__ = ["InsightViews", "register"]

PREVIEW = 20


def _now() -> int:
    return int(time.time() * 1000)


def _bad(exc: InsightError) -> ApiError:
    return ApiError(400, exc.code, exc.message, exc.path)


class InsightViews:
    def __init__(self, api: ApiBase) -> None:
        self.api = api
        self.suggestions = SuggestionStore(api.reads, api.settings.suggestion_ttl_s)

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
        try:
            return await run_analysis(task, *args)
        except InsightError as exc:
            raise _bad(exc) from None
        except AnalysisCrashed as exc:
            raise ApiError(500, exc.code, exc.message) from None

    async def _job(self, web: Any, command: dict[str, Any]) -> Any:
        """Send an analysis command; 202 with its job (Queued)."""
        result = await self.api.gateway.command(command)
        return json_response(web, result["job"], status=202)

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

    # -- suggestions (jobs) ---------------------------------------------------------------
    async def by_measure(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=True)
        body = await read_json(request)
        return await self._job(web, {**_fields(body, _MEASURE), "command": "suggest_measure"})

    async def by_activity(self, web: Any, request: Any) -> Any:
        require_token(self.api.settings, request, mutation=True)
        body = await read_json(request)
        return await self._job(web, {**_fields(body, _ACTIVITY), "command": "suggest_activity"})

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

    # -- similar customers (a job making an expansion segment) ----------------------------
    async def similar(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.api.settings, request, mutation=True)
        raw = await request.read()
        body = await read_json(request) if raw.strip() else {}
        command = {**_fields(body, _SIMILAR), "command": "similar", "source": id}
        return await self._job(web, command)


_MEASURE = ("primary", "using", "target", "max_depth")
_ACTIVITY = ("event", "value", "lookback")
_SIMILAR = ("size", "min_score", "attributes", "segment_id", "name")


def _fields(body: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The request's fields a command takes (the control plane checks them); others refused."""
    for key in body:
        if key not in names:
            raise ApiError(
                400, "unknown_field", f"unknown field {key!r}; expected {', '.join(names)}", key
            )
    return {k: body[k] for k in names if k in body}


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
