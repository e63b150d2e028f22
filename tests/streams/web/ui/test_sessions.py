"""Sessions and redirects of the Segments page, without a worker."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.web.ui.pages import _safe_next
from streams.web.ui.render import utc_text
from streams.web.ui.sessions import Sessions


def test_a_session_lives_until_it_is_ended() -> None:
    sessions = Sessions()
    session = sessions.create()
    again = sessions.get(session.session_id)
    assert again is not None and again.csrf == session.csrf
    assert again.csrf_ok(session.csrf)
    assert not again.csrf_ok("")
    assert not again.csrf_ok(None)
    assert not again.csrf_ok(session.csrf + "x")
    sessions.end(session.session_id)
    assert sessions.get(session.session_id) is None
    assert sessions.get(None) is None
    assert sessions.get("made-up") is None


def test_an_expired_session_is_gone() -> None:
    sessions = Sessions(ttl_s=-1)
    session = sessions.create()
    assert sessions.get(session.session_id) is None


def test_sessions_do_not_share_ids_or_csrf_tokens() -> None:
    sessions = Sessions()
    made = [sessions.create() for _ in range(50)]
    assert len({s.session_id for s in made}) == 50
    assert len({s.csrf for s in made}) == 50


@given(st.text())
def test_sign_in_only_redirects_into_the_ui(target: str) -> None:
    chosen = _safe_next(target)
    assert chosen.startswith("/ui/") and not chosen.startswith("//")
    assert chosen in (target, "/ui/")


def test_utc_text() -> None:
    assert utc_text(1893474000000) == "2030-01-01 05:00:00 UTC"
    assert utc_text(None) == ""
    assert utc_text(True) == ""
