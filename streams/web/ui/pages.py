"""The HTML pages: sign-in, segments, details, builder, quick, jobs, exports, schedules.

Every page reads through the worker's own API (`Loopback`) and renders a Jinja2 template;
the page's script does the rest (live updates, changes through `/ui/api/...`). An API error
becomes a page that says it in words.
"""

from __future__ import annotations

import hmac
import zoneinfo
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web as aioweb

from ...settings import Settings
from .guard import need_page_session
from .loopback import Answer, Loopback
from .render import Renderer
from .sessions import COOKIE, CSRF_FIELD, Session, Sessions

__all__ = ["Pages"]

JOB_STATUSES = ("Queued", "Processing", "Successful", "Failure", "Skipped", "Canceled")


def _safe_next(raw: str | None) -> str:
    """Only a path of this UI: never an open redirect."""
    if raw and raw.startswith("/ui/") and not raw.startswith("//"):
        return raw
    return "/ui/"


class _ApiFailed(Exception):
    def __init__(self, what: str, answer: Answer) -> None:
        super().__init__(what)
        self.what = what
        self.answer = answer


class Pages:
    def __init__(
        self, settings: Settings, sessions: Sessions, loopback: Loopback, renderer: Renderer
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.loopback = loopback
        self.renderer = renderer
        self.timezones = sorted(zoneinfo.available_timezones())

    # -- helpers --------------------------------------------------------------------------
    def _render(self, session: Session, name: str, **context: Any) -> aioweb.Response:
        return self.renderer.page(name, csrf=session.csrf, **context)

    async def _read(self, request: Any, what: str, path: str, query: str = "") -> Any:
        answer = await self.loopback.get(request, path, query)
        if not answer.ok:
            raise _ApiFailed(what, answer)
        return answer.json()

    def _failed(self, session: Session, exc: _ApiFailed) -> aioweb.Response:
        error = exc.answer.error()
        status = exc.answer.status if exc.answer.status in (400, 404, 409) else 502
        return self._render(
            session, "error.html", http_status=status, title=exc.what, what=exc.what, error=error
        )

    async def _guarded(self, request: Any, build: Any) -> aioweb.StreamResponse:
        session = need_page_session(self.sessions, request)
        try:
            response: aioweb.StreamResponse = await build(session)
            return response
        except _ApiFailed as exc:
            return self._failed(session, exc)

    # -- sign-in --------------------------------------------------------------------------
    async def signin_form(self, request: Any) -> aioweb.StreamResponse:
        return self.renderer.page(
            "signin.html",
            title="Sign in",
            next=_safe_next(request.query.get("next")),
            error=None,
            configured=bool(self.settings.api_token),
            csrf="",
        )

    async def signin(self, request: Any) -> aioweb.StreamResponse:
        form = await request.post()
        token = str(form.get("token", "")).strip()
        target = _safe_next(str(form.get("next", "")))
        expected = self.settings.api_token
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            message = (
                "this worker has no API token (LS_API_TOKEN), so nobody can sign in: set it "
                "and restart the worker"
                if not expected
                else "that is not this worker's API token (LS_API_TOKEN); check it and retry"
            )
            return self.renderer.page(
                "signin.html",
                http_status=401,
                title="Sign in",
                next=target,
                error=message,
                configured=bool(expected),
                csrf="",
            )
        session = self.sessions.create()
        response = aioweb.Response(status=303, headers={"Location": target})
        response.set_cookie(
            COOKIE, session.session_id, httponly=True, samesite="Strict", path="/ui"
        )
        return response

    async def signout(self, request: Any) -> aioweb.StreamResponse:
        form = await request.post()
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is not None and session.csrf_ok(str(form.get(CSRF_FIELD, ""))):
            self.sessions.end(session.session_id)
        response = aioweb.Response(status=303, headers={"Location": "/ui/signin"})
        response.del_cookie(COOKIE, path="/ui")
        return response

    # -- pages ----------------------------------------------------------------------------
    async def root(self, request: Any) -> aioweb.StreamResponse:
        return aioweb.Response(status=302, headers={"Location": "/ui/"})

    async def segments(self, request: Any) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            rows = (await self._read(request, "the segments", "/segments"))["segments"]
            tags = sorted({t for r in rows for t in r["tags"]})
            return self._render(
                session,
                "segments.html",
                title="Segments",
                rows=rows,
                tags=tags,
                timezones=self.timezones,
            )

        return await self._guarded(request, build)

    async def details(self, request: Any, id: str) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            path = f"/segments/{quote(id, safe='')}"
            segment = await self._read(request, f"segment {id!r}", path)
            preview = await self._read(
                request, f"the members of {id!r}", path + "/members", "limit=100"
            )
            listed = (await self._read(request, "the segments", "/segments"))["segments"]
            return self._render(
                session,
                "details.html",
                title=segment["name"],
                segment=segment,
                preview=preview,
                others=[r for r in listed if r["id"] != id],
                timezones=self.timezones,
            )

        return await self._guarded(request, build)

    async def builder(self, request: Any, id: str | None = None) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            definition: dict[str, Any] | None = None
            active = False
            if id is not None:
                segment = await self._read(
                    request, f"segment {id!r}", f"/segments/{quote(id, safe='')}"
                )
                definition, active = segment["definition"], segment["state"] == "active"
            listed = (await self._read(request, "the segments", "/segments"))["segments"]
            return self._render(
                session,
                "builder.html",
                title=f"Edit {id}" if id else "New segment",
                editing=id,
                active=active,
                definition=definition,
                segment_ids=[r["id"] for r in listed if r["id"] != id],
            )

        return await self._guarded(request, build)

    async def edit(self, request: Any, id: str) -> aioweb.StreamResponse:
        return await self.builder(request, id)

    async def discover(self, request: Any) -> aioweb.StreamResponse:
        """Find segments: similar customers, suggestions by measure or by activity (jobs)."""

        async def build(session: Session) -> aioweb.StreamResponse:
            kind = request.query.get("kind", "similar")
            kind = kind if kind in ("similar", "measure", "activity") else "similar"
            listed = (await self._read(request, "the segments", "/segments"))["segments"]
            return self._render(
                session, "discover.html", title="Find segments", kind=kind, segments=listed
            )

        return await self._guarded(request, build)

    async def quick(self, request: Any) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            return self._render(session, "quick.html", title="Quick segment")

        return await self._guarded(request, build)

    async def jobs(self, request: Any) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            status = request.query.get("status", "")
            segment = request.query.get("segment", "")
            query = urlencode(
                {k: v for k, v in (("status", status), ("segment", segment)) if v}
                | {"limit": "100"}
            )
            listed = (await self._read(request, "the jobs", "/jobs", query))["jobs"]
            return self._render(
                session,
                "jobs.html",
                title="Jobs",
                jobs=listed,
                statuses=JOB_STATUSES,
                status=status,
                segment=segment,
            )

        return await self._guarded(request, build)

    async def job(self, request: Any, id: str) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            job = await self._read(request, f"job {id!r}", f"/jobs/{quote(id, safe='')}")
            return self._render(session, "job.html", title=f"Job {id}", job=job)

        return await self._guarded(request, build)

    async def segment_exports(self, request: Any, id: str) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            path = f"/segments/{quote(id, safe='')}"
            segment = await self._read(request, f"segment {id!r}", path)
            found = await self._read(request, f"the exports of {id!r}", path + "/exports")
            return self._render(
                session,
                "segment_exports.html",
                title=f"Exports of {segment['name']}",
                segment=segment,
                containing=found["containing"],
                not_containing=found["not_containing"],
            )

        return await self._guarded(request, build)

    async def exports(self, request: Any) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            listed = (await self._read(request, "the exports", "/exports"))["exports"]
            runs = (await self._read(request, "the jobs", "/jobs", "limit=200"))["jobs"]
            by_job = {j["job_id"]: j for j in runs}
            return self._render(
                session, "exports.html", title="Exports", exports=listed, jobs=by_job
            )

        return await self._guarded(request, build)

    async def schedules(self, request: Any) -> aioweb.StreamResponse:
        async def build(session: Session) -> aioweb.StreamResponse:
            found = await self._read(request, "the refresh schedules", "/refresh-schedules")
            listed = (await self._read(request, "the segments", "/segments"))["segments"]
            return self._render(
                session,
                "schedules.html",
                title="Schedules",
                schedules=found["refresh_schedules"],
                segments=listed,
                timezones=self.timezones,
            )

        return await self._guarded(request, build)
