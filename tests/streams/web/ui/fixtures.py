"""A real Chromium (Debian's, driven by Playwright) against a worker with the API and UI.

No browser is ever downloaded: the tests use the `chromium` on PATH (scripts/bootstrap.sh
installs Debian's package) and fail, not skip, when it is missing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from ..fixtures import TOKEN, ApiHarness, definition

ROOT = Path(__file__).resolve().parents[4]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run scripts/bootstrap.sh (apt-get)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def ui(api_harness: ApiHarness) -> ApiHarness:
    """The worker with 40 customers (tier, age, country) and an active 'known' segment."""
    h = api_harness
    h.api.ok(
        "POST",
        "/segments",
        {"segment": definition("known", {"attr": "age", "op": "exists"}), "activate": True},
        status=201,
    )
    tiers = ("gold", "silver", "bronze", "platinum")
    h.populate(
        "known",
        {
            f"c{i:02d}": {"tier": tiers[i % 4], "age": 20 + i, "country": "DE" if i % 2 else "FR"}
            for i in range(40)
        },
    )
    return h


def sign_in(page: Page, base: str, token: str = TOKEN) -> None:
    page.goto(base + "/ui/signin")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def signed_in(browser: Browser, ui: ApiHarness) -> Iterator[Page]:
    context: BrowserContext = browser.new_context(
        viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, ui.url)
    page.wait_for_url(ui.url + "/ui/")
    yield page
    context.close()


def shoot(page: Page, name: str) -> None:
    """Save a screenshot of the page for the README (docs/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def until(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value (returned) or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)
