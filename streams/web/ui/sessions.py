"""Sign-in sessions of the Segments page: a server-side map behind an HttpOnly cookie.

A session is created when the API token is typed on the sign-in page; the browser only
ever holds a random session id (HttpOnly, SameSite=Strict) and the session's CSRF token,
which every state-changing request must send back (header ``X-CSRF-Token`` or form field
``csrf``). Sessions live in the worker's memory: signing out or restarting ends them.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "Session", "Sessions"]

COOKIE = "ls_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Session:
    session_id: str
    csrf: str
    expires_at: float

    def csrf_ok(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(str(presented), self.csrf)


class Sessions:
    """Session ids -> sessions, expiring `ttl_s` after the last use."""

    def __init__(self, ttl_s: float = 12 * 3600) -> None:
        self.ttl_s = ttl_s
        self._sessions: dict[str, Session] = {}

    def create(self) -> Session:
        self._sweep()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(24), self._expiry())
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for `session_id` (its expiry pushed back), else None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at < time.monotonic():
            del self._sessions[session_id]
            return None
        renewed = Session(session.session_id, session.csrf, self._expiry())
        self._sessions[session_id] = renewed
        return renewed

    def end(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def _expiry(self) -> float:
        return time.monotonic() + self.ttl_s

    def _sweep(self) -> None:
        now = time.monotonic()
        for sid in [sid for sid, s in self._sessions.items() if s.expires_at < now]:
            del self._sessions[sid]
