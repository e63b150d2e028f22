"""Credentials in webhook URLs are masked wherever a URL is shown."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from streams.exports.urls import MASK, mask_url, scrub

_SECRET = st.text(string.ascii_letters + string.digits, min_size=12, max_size=40).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s)
)


@given(user=st.text(string.ascii_lowercase, min_size=1, max_size=10), password=_SECRET)
def test_user_info_never_shown(user: str, password: str) -> None:
    shown = mask_url(f"https://{user}:{password}@crm.example.com/hooks/x?n=1")
    assert shown == "https://***@crm.example.com/hooks/x?n=1"
    assert password not in shown


@given(
    name=st.sampled_from(["token", "api_key", "X-Signature", "access_token", "password", "code"]),
    value=_SECRET,
)
def test_secret_query_values_never_shown(name: str, value: str) -> None:
    shown = mask_url(f"https://h.example/hook?segment=vip&{name}={value}")
    assert shown == f"https://h.example/hook?segment=vip&{name}={MASK}"


@given(value=_SECRET.filter(lambda s: len(s) >= 16))
def test_a_token_in_the_path_is_masked(value: str) -> None:
    assert mask_url(f"https://hooks.example/services/T01/B02/{value}") == (
        "https://hooks.example/services/T01/B02/***"
    )


def test_plain_urls_are_shown_as_they_are() -> None:
    for url in (
        "http://127.0.0.1:8080/hook",
        "https://crm.example.com/hooks/segments?format=json",
        "https://crm.example.com/v2/segment-changes",
    ):
        assert mask_url(url) == url
    assert mask_url("http://[::1/x") == MASK  # unparsable: nothing of it is shown


def test_scrub_masks_the_url_and_its_password_in_messages() -> None:
    url = "https://bob:hunter2hunter2@h.example/hook?token=abc123"
    text = f"Cannot connect to {url} (auth bob:hunter2hunter2 refused)"
    shown = scrub(text, url)
    assert "hunter2hunter2" not in shown and "abc123" not in shown
    assert "https://***@h.example/hook?token=***" in shown
