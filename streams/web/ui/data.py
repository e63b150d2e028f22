"""What the page's scripts call: the API through the session, and three UI-only helpers.

- ``/ui/api/<path>``: the HTTP API's ``/<path>``, called with the worker's token for a
  signed-in browser (changes need the session's CSRF token); answers pass through as is.
- ``GET /ui/data/segments/{id}/uses``: what uses a segment (``in_segment`` dependents and
  exports), for the delete confirmation.
- ``POST /ui/data/convert``: a definition as YAML or JSON text, for the builder's views.
- ``POST /ui/data/segments/{id}/schedule``: a local date and time in a named time zone,
  turned into the instant the API's schedule takes.
"""

from __future__ import annotations

import json
import zoneinfo
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote

import yaml  # type: ignore[import-untyped, unused-ignore]
from aiohttp import web as aioweb

from segment_rules import NO_LIMITS, DefinitionError, parse_definition
from segment_rules.catalog import dependencies

from ..requests import read_json
from .guard import error_response, need_session
from .loopback import Answer, Loopback
from .sessions import Sessions

__all__ = ["Data", "static_asset"]

_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


def _reply(answer: Answer) -> aioweb.Response:
    headers = {"Cache-Control": "no-store"}
    if "Content-Disposition" in answer.headers:
        headers["Content-Disposition"] = answer.headers["Content-Disposition"]
    response = aioweb.Response(body=answer.body, status=answer.status, headers=headers)
    response.headers["Content-Type"] = answer.headers.get("Content-Type", "application/json")
    return response


def _json(body: Any, status: int = 200) -> aioweb.Response:
    return aioweb.Response(
        body=json.dumps(body, ensure_ascii=False).encode(),
        status=status,
        content_type="application/json",
    )


def static_asset(name: str) -> aioweb.Response:
    """A file of the package's static/ folder (404 for anything else)."""
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES:
        return aioweb.Response(status=404, text="no such asset")
    asset = resources.files(__package__ or "streams.web.ui").joinpath("static", name)
    if not asset.is_file():
        return aioweb.Response(status=404, text="no such asset")
    return aioweb.Response(
        body=asset.read_bytes(),
        content_type=_STATIC_TYPES[suffix],
        headers={"Cache-Control": "no-cache"},
    )


class Data:
    def __init__(self, sessions: Sessions, loopback: Loopback, reads: Any) -> None:
        self.sessions = sessions
        self.loopback = loopback
        self.reads = reads

    async def proxy(self, request: Any, tail: str) -> aioweb.StreamResponse:
        need_session(self.sessions, request)
        if tail.startswith("ui/") or tail == "ui":
            return error_response(404, "not_found", f"no API path /{tail}")
        body = await request.read() if request.method not in ("GET", "HEAD") else None
        return await self.loopback.forward(
            request, request.method, "/" + tail, body or None, request.query_string
        )

    async def uses(self, request: Any, id: str) -> aioweb.StreamResponse:
        need_session(self.sessions, request)
        segments = await self.reads.segments()
        if id not in segments:
            return error_response(404, "not_found", f"no segment {id!r}")
        dependents = []
        for other_id, other in sorted(segments.items()):
            try:
                refs = dependencies(parse_definition(other.definition, NO_LIMITS))
            except DefinitionError:
                continue
            if id in refs:
                dependents.append({"id": other_id, "name": other.definition.get("name")})
        answer = await self.loopback.get(request, f"/segments/{quote(id, safe='')}/exports")
        if not answer.ok:
            return _reply(answer)
        exports = [{"id": e["id"], "name": e.get("name")} for e in answer.json()["containing"]]
        return _json({"segment_id": id, "dependents": dependents, "exports": exports})

    async def convert(self, request: Any) -> aioweb.StreamResponse:
        need_session(self.sessions, request)
        try:
            body = await read_json(request)
        except Exception as exc:
            return error_response(400, "invalid_json", str(exc))
        if body.get("to") == "yaml":
            text = yaml.safe_dump(body.get("value"), sort_keys=False, allow_unicode=True)
            return _json({"text": text})
        if body.get("to") == "json":
            try:
                value = yaml.safe_load(str(body.get("text", "")))
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
                return error_response(400, "invalid_yaml", f"the YAML does not parse{where}: {exc}")
            if not isinstance(value, dict):
                return error_response(
                    400, "wrong_type", "the YAML must be a mapping (a segment definition)"
                )
            return _json({"value": value})
        return error_response(400, "invalid_value", "'to' must be 'yaml' or 'json'")

    async def schedule(self, request: Any, id: str) -> aioweb.StreamResponse:
        need_session(self.sessions, request)
        try:
            body = await read_json(request)
        except Exception as exc:
            return error_response(400, "invalid_json", str(exc))
        zone_name = str(body.get("timezone") or "UTC")
        try:
            zone = zoneinfo.ZoneInfo(zone_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return error_response(
                400, "invalid_timezone", f"unknown time zone {zone_name!r} (e.g. Europe/Berlin)"
            )
        local = str(body.get("local") or "")
        try:
            moment = datetime.fromisoformat(local)
        except ValueError:
            return error_response(
                400,
                "invalid_value",
                f"date and time {local!r} are not valid; expected e.g. 2030-01-01T06:00",
            )
        at = moment.replace(tzinfo=zone).isoformat()
        command = {"action": body.get("action"), "at": at}
        answer = await self.loopback.send(
            request, "POST", f"/segments/{quote(id, safe='')}/schedules", command
        )
        return _reply(answer)
