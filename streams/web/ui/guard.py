"""Who may use the Segments page: session checks for pages, reads and changes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from aiohttp import web as aioweb

from .sessions import COOKIE, CSRF_HEADER, Session, Sessions

__all__ = ["Refused", "error_response", "need_page_session", "need_session", "signin_redirect"]

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Refused(Exception):
    """A request without a session (or CSRF token) for something that needs one."""

    def __init__(self, response: aioweb.StreamResponse) -> None:
        super().__init__(response.status)
        self.response = response


def error_response(status: int, code: str, message: str) -> aioweb.Response:
    body = {"error": {"code": code, "message": message}}
    return aioweb.Response(
        body=json.dumps(body).encode(), status=status, content_type="application/json"
    )


def signin_redirect(request: Any) -> aioweb.Response:
    target = request.path_qs if request.method == "GET" else "/ui/"
    return aioweb.Response(
        status=303, headers={"Location": f"/ui/signin?next={quote(target, safe='')}"}
    )


def need_page_session(sessions: Sessions, request: Any) -> Session:
    """The session of a page request, else a redirect to the sign-in page."""
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise Refused(signin_redirect(request))
    return session


def need_session(sessions: Sessions, request: Any, csrf: str | None = None) -> Session:
    """The session of a data request; a change must also carry the session's CSRF token."""
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise Refused(
            error_response(
                401,
                "no_session",
                "you are not signed in to the Segments page (or your session ended): "
                "sign in again at /ui/signin",
            )
        )
    if request.method not in _SAFE:
        presented = csrf if csrf is not None else request.headers.get(CSRF_HEADER)
        if not session.csrf_ok(presented):
            raise Refused(
                error_response(
                    403,
                    "csrf",
                    "this change lacks the page's CSRF token (header X-CSRF-Token); "
                    "reload the page and try again",
                )
            )
    return session
