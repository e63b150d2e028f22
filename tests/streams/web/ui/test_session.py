"""Without a session every page redirects to sign-in and every change is refused."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from ..fixtures import TOKEN, ApiHarness, definition

pytestmark = pytest.mark.integration

PAGES = (
    "/ui/",
    "/ui/new",
    "/ui/quick",
    "/ui/jobs",
    "/ui/exports",
    "/ui/schedules",
    "/ui/segments/known",
    "/ui/segments/known/edit",
    "/ui/segments/known/exports",
)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _call(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(base + path, data=body, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _sign_in(base: str, token: str = TOKEN) -> tuple[int, dict[str, str], bytes]:
    form = urllib.parse.urlencode({"token": token, "next": "/ui/jobs"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    return _call(base, "POST", "/ui/signin", form, headers)


def _cookie(headers: dict[str, str]) -> str:
    return headers["Set-Cookie"].split(";", 1)[0]


def test_every_page_redirects_to_sign_in_without_a_session(ui: ApiHarness) -> None:
    for path in PAGES:
        status, headers, _ = _call(ui.url, "GET", path)
        assert status == 303, path
        assert headers["Location"] == "/ui/signin?next=" + urllib.parse.quote(path, safe=""), path
    status, _, page = _call(ui.url, "GET", "/ui/signin")
    assert status == 200
    assert b'<label for="token">API token' in page


def test_every_change_is_refused_without_a_session_or_csrf_token(ui: ApiHarness) -> None:
    ui.api.ok(
        "POST", "/segments", {"segment": definition("keep", {"attr": "age", "op": "exists"})}, 201
    )
    changes = [
        ("DELETE", "/ui/api/segments/keep", None),
        ("POST", "/ui/api/segments/keep/activate", None),
        ("POST", "/ui/api/segments/keep/rename", b'{"name": "x"}'),
        ("PUT", "/ui/api/segments/keep", b'{"segment": {"name": "x"}}'),
        ("POST", "/ui/data/segments/keep/schedule", b'{"action": "activate"}'),
    ]
    for method, path, body in changes:
        status, _, answer = _call(ui.url, method, path, body)
        assert status == 401 and b"no_session" in answer, (method, path)
    _, headers, _ = _sign_in(ui.url)
    cookie = {"Cookie": _cookie(headers)}
    for method, path, body in changes:
        status, _, answer = _call(ui.url, method, path, body, cookie)
        assert status == 403 and b"csrf" in answer, (method, path)
        wrong = {**cookie, "X-CSRF-Token": "not-the-token"}
        assert _call(ui.url, method, path, body, wrong)[0] == 403, (method, path)
    shown = ui.api.ok("GET", "/segments/keep")
    assert (shown["name"], shown["state"]) == ("Keep", "inactive")
    # reads work with the session alone, without the token in the browser
    status, _, answer = _call(ui.url, "GET", "/ui/api/segments/keep", None, cookie)
    assert status == 200 and b'"id": "keep"' in answer


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(ui: ApiHarness) -> None:
    status, headers, page = _sign_in(ui.url, "wrong")
    assert status == 401
    assert b"not this worker&#39;s API token" in page
    assert "Set-Cookie" not in headers
    status, headers, _ = _sign_in(ui.url)
    assert (status, headers["Location"]) == (303, "/ui/jobs")
    flags = headers["Set-Cookie"].lower()
    assert "httponly" in flags and "samesite=strict" in flags
    cookie = {"Cookie": _cookie(headers)}
    status, _, page = _call(ui.url, "GET", "/ui/", None, cookie)
    assert status == 200
    csrf = page.split(b'data-csrf="', 1)[1].split(b'"', 1)[0].decode()
    form = urllib.parse.urlencode({"csrf": csrf}).encode()
    form_headers = {**cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert _call(ui.url, "POST", "/ui/signout", form, form_headers)[0] == 303
    assert _call(ui.url, "GET", "/ui/", None, cookie)[0] == 303


def test_sign_in_never_redirects_off_the_ui(ui: ApiHarness) -> None:
    form = urllib.parse.urlencode({"token": TOKEN, "next": "//evil.example/x"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, answer_headers, _ = _call(ui.url, "POST", "/ui/signin", form, headers)
    assert (status, answer_headers["Location"]) == (303, "/ui/")
