"""The segment routes: reads, changes, members, CSV, trend, estimates, attribute stats.

Errors are ``{"error": {"code", "message", "path"?}}`` with 400/401/404/409/504.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web as aioweb

from insights.bands import band_of
from state import Job, StoredSegment

from .analysis import attribute_stats, estimate
from .api import ApiBase
from .auth import require_token
from .errors import ApiError, StreamBroken
from .members_csv import csv_chunks
from .requests import json_response, parse_time, query_flag, query_int, read_json

__all__ = ["Api", "job_summary", "segment_row"]

log = logging.getLogger(__name__)


def segment_row(segment: StoredSegment, members: int, last_refresh: int | None) -> dict[str, Any]:
    definition = segment.definition
    return {
        "id": segment.segment_id,
        "name": definition.get("name"),
        "type": definition.get("type", "dynamic"),
        "state": "active" if segment.active else "inactive",
        "members": members,
        "created_at": segment.created_at,
        "modified_at": segment.modified_at,
        "tags": list(definition.get("tags", [])),
        "last_refresh": last_refresh,
    }


def _scores(segment: StoredSegment) -> dict[str, float] | None:
    """An expansion segment's member -> score (None for a segment of rules)."""
    if segment.definition.get("type") != "expansion":
        return None
    return dict(segment.definition.get("members") or {})


def job_summary(job: Job) -> dict[str, Any]:
    totals = {
        k: sum(int(stats.get(k, 0)) for stats in job.done.values())
        for k in ("evaluated", "entered", "exited")
    }
    return {
        "job_id": job.job_id,
        "command": job.command,
        "segment_ids": list(job.segment_ids),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "partitions": job.partitions,
        "partitions_done": len(job.done),
        **totals,
    }


class Api(ApiBase):
    """The segment routes: reads, changes, members, CSV, trend, estimates, stats."""

    async def _segment(self, segment_id: str) -> StoredSegment:
        segment = await self.reads.segment(segment_id)
        if segment is None:
            raise ApiError(404, "not_found", f"no segment {segment_id!r}", "segment_id")
        return segment

    async def _schedules_of(self, segment_id: str) -> dict[str, Any]:
        """Pending one-shot schedules and the recurring refreshes naming the segment."""
        refreshes = [
            r.to_dict()
            for r in await self.schedules.refreshes()
            if r.segment_ids is None or segment_id in r.segment_ids
        ]
        pending = await self.schedules.schedules_for(segment_id)
        return {"schedules": [s.to_dict() for s in pending], "refresh_schedules": refreshes}

    # -- reads ----------------------------------------------------------------------------
    async def openapi_doc(self, web: Any, request: Any) -> Any:
        return json_response(web, self.openapi)

    async def list_segments(self, web: Any, request: Any) -> Any:
        require_token(self.settings, request, mutation=False)
        tag = request.query.get("tag") or None
        name = (request.query.get("name") or "").lower()
        segments = await self.reads.segments()
        chosen = [
            seg
            for _sid, seg in sorted(segments.items())
            if (tag is None or tag in seg.definition.get("tags", []))
            and name in str(seg.definition.get("name", "")).lower()
        ]
        counts = await self.reads.member_counts(s.segment_id for s in chosen)
        refreshed = await self.reads.last_refreshes()
        rows = [segment_row(s, counts[s.segment_id], refreshed.get(s.segment_id)) for s in chosen]
        return json_response(web, {"segments": rows})

    async def show_segment(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.settings, request, mutation=False)
        segment = await self._segment(id)
        counts = await self.reads.member_counts([id])
        jobs = await self.reads.jobs_for(id)
        last = max((j.finished_at for j in jobs if j.finished_at is not None), default=None)
        body = {
            **segment_row(segment, counts[id], last),
            "description": segment.definition.get("description"),
            "version": segment.version,
            "definition": segment.definition,
            "jobs": [job_summary(j) for j in jobs],
            **await self._schedules_of(id),
        }
        return json_response(web, body)

    async def members(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.settings, request, mutation=False)
        scores = _scores(await self._segment(id))
        limit = query_int(request, "limit", 100, 1, 1000)
        rows: list[dict[str, Any]] = []
        fields: set[str] = set()
        async for page in self.reads.members(id, page=min(limit, 500)):
            for customer_id, profile in page.profiles:
                attrs = dict(profile.attrs) if profile is not None else {}
                fields.update(attrs)
                row: dict[str, Any] = {"customer_id": customer_id, "attributes": attrs}
                if scores is not None:
                    row["score"] = scores.get(customer_id)
                    row["band"] = band_of(row["score"]) if row["score"] is not None else None
                rows.append(row)
                if len(rows) >= limit:
                    break
            if len(rows) >= limit:
                break
        total = (await self.reads.member_counts([id]))[id]
        body = {
            "segment_id": id,
            "limit": limit,
            "total": total,
            "fields": sorted(fields),
            "members": rows,
        }
        return json_response(web, body)

    async def members_csv(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.settings, request, mutation=False)
        scores = _scores(await self._segment(id))
        bom = query_flag(request, "bom")
        response = aioweb.StreamResponse(
            headers={"Content-Disposition": f'attachment; filename="{id}-members.csv"'}
        )
        response.content_type = "text/csv"
        response.charset = "utf-8"
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            async for chunk in csv_chunks(self.reads, id, bom=bom, scores=scores):
                await response.write(chunk)
        except Exception as exc:
            log.exception("CSV export of %r failed midway; connection dropped", id)
            raise StreamBroken(str(exc)) from exc
        await response.write_eof()
        return response

    async def trend(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.settings, request, mutation=False)
        await self._segment(id)
        start = parse_time(request.query.get("from"), "from")
        end = parse_time(request.query.get("to"), "to")
        points = await self.trends.points(id, start, end)
        body = {
            "segment_id": id,
            "from": start,
            "to": end,
            "interval_s": self.settings.trend_interval_s,
            "points": [p.to_dict() for p in points],
        }
        return json_response(web, body)

    async def estimate(self, web: Any, request: Any) -> Any:
        require_token(self.settings, request, mutation=False)
        body = await read_json(request)
        result = await estimate(
            self.reads, body.get("segment"), self.limits, self.settings.history_max_age_ms
        )
        return json_response(web, result)

    async def attribute_stats(self, web: Any, request: Any, name: str) -> Any:
        require_token(self.settings, request, mutation=False)
        return json_response(web, await attribute_stats(self.reads, name))

    # -- changes (through the control topic) ----------------------------------------------
    async def create(self, web: Any, request: Any) -> Any:
        require_token(self.settings, request, mutation=True)
        body = await read_json(request)
        command = {
            "command": "create",
            "segment": body.get("segment"),
            "activate": body.get("activate", False),
        }
        return json_response(web, await self.command(request, command), status=201)

    async def update(self, web: Any, request: Any, id: str) -> Any:
        require_token(self.settings, request, mutation=True)
        body = await read_json(request)
        definition = body["segment"] if isinstance(body.get("segment"), dict) else body
        body_id = definition.setdefault("id", id)
        if body_id != id:
            raise ApiError(
                400,
                "id_mismatch",
                f"the definition's id {body_id!r} differs from the URL's {id!r}; a segment's "
                "id cannot change: create a new segment instead",
                "segment.id",
            )
        result = await self.command(request, {"command": "update", "segment": definition})
        return json_response(web, result)

    async def delete(self, web: Any, request: Any, id: str) -> Any:
        result = await self.command(request, {"command": "delete", "segment_id": id})
        return json_response(web, result)

    async def activate(self, web: Any, request: Any, id: str) -> Any:
        result = await self.command(request, {"command": "activate", "segment_id": id})
        return json_response(web, result)

    async def deactivate(self, web: Any, request: Any, id: str) -> Any:
        result = await self.command(request, {"command": "deactivate", "segment_id": id})
        return json_response(web, result)

    async def forget(self, web: Any, request: Any, id: str) -> Any:
        """Erase one customer from every partition (the `forget` command); 200 once done."""
        result = await self.command(request, {"command": "forget", "customer_id": id})
        return json_response(web, result)

    async def refresh(self, web: Any, request: Any) -> Any:
        require_token(self.settings, request, mutation=True)
        body = await read_json(request)
        command: dict[str, Any] = {"command": "refresh"}
        if body.get("all") is True:
            command["all"] = True
        else:
            command["segment_ids"] = body.get("segment_ids")
        return json_response(web, await self.command(request, command))
