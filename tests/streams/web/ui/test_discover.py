"""Find segments in a real Chromium: similar customers, suggestions (measure, activity) with
their job's progress and results, accept; the details page's insights. Keyboard first.

The tests run in file order and build on each other, like `test_pages.py`."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from ..fixtures import ApiHarness, definition
from .fixtures import shoot, until

pytestmark = pytest.mark.integration

DAY = 86_400_000


@pytest.fixture(scope="module")
def shop(ui: ApiHarness) -> ApiHarness:
    """The UI's 40 customers, a `de` segment (20) and purchases by every third customer."""
    where = {"attr": "country", "op": "eq", "value": "DE"}
    ui.api.ok("POST", "/segments", {"segment": definition("de", where), "activate": True}, 201)
    buys = {"event": "purchase", "agg": "count", "op": "gte", "value": 1}
    ui.api.ok("POST", "/segments", {"segment": definition("buyers", buys), "activate": True}, 201)
    now = int(time.time() * 1000)
    buyers = set()
    for i in range(0, 40, 3):
        for k in range(1 + i % 4):
            ui.client.send_event(
                f"c{i:02d}", "purchase", {"amount": 10 * (k + 1)}, ts=now - k * DAY
            )
        buyers.add(f"c{i:02d}")
    ui.client.flush()
    ui.wait_members("buyers", buyers, timeout=60)
    ui.wait_members("de", {f"c{i:02d}" for i in range(1, 40, 2)}, timeout=60)
    return ui


def test_similar_customers_from_the_create_menu_by_keyboard(
    signed_in: Page, shop: ApiHarness
) -> None:
    page = signed_in
    page.goto(shop.url + "/ui/")
    menu = page.locator("details.create-menu summary")
    menu.focus()
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Similar customers")
    expect(link).to_be_visible()
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(shop.url + "/ui/discover?kind=similar")
    page.get_by_label("Source segment").select_option("de")
    page.get_by_label("Size").fill("5")
    page.get_by_label("Minimum score").fill("0")
    page.get_by_label("Minimum score").press("Enter")  # submits the form
    expect(page.locator("#job-status")).to_have_text("Successful", timeout=120_000)
    expect(page.locator("#quality")).to_contain_text("ROC AUC")
    bands = page.locator("#result table tbody tr")
    expect(bands).to_have_count(4)
    expect(bands.first).to_contain_text("very similar")
    expect(page.get_by_role("link", name="de-similar")).to_be_visible()
    shoot(page, "similar")
    shown = until(lambda: (s := shop.api.ok("GET", "/segments/de-similar"))["members"] == 5 and s)
    assert shown["type"] == "expansion"
    assert not set(shown["definition"]["members"]) & shop.members("de")


def test_an_expansion_segment_shows_its_model_and_scores(signed_in: Page, shop: ApiHarness) -> None:
    page = signed_in
    page.goto(shop.url + "/ui/segments/de-similar")
    expect(page.locator("#expansion")).to_contain_text("Similar customers of de")
    expect(page.locator("#expansion")).to_contain_text("ROC AUC")
    expect(page.locator("#preview thead")).to_contain_text("Score")
    expect(page.locator("#preview tbody tr")).to_have_count(5)


def _suggest(page: Page, base: str, kind: str, fields: dict[str, str], status: str) -> None:
    """Fill the `kind` tab's form, start the job and wait until it ends in `status`."""
    page.goto(f"{base}/ui/discover?kind={kind}")
    for label, value in fields.items():
        page.get_by_label(label).fill(value)
    page.get_by_role("button", name="Suggest segments").click()
    expect(page.locator("#job-status")).to_have_text(status, timeout=120_000)


def test_suggest_by_measure_then_accept_and_activate(signed_in: Page, shop: ApiHarness) -> None:
    page = signed_in
    fields = {"Attribute to explain": "age", "Influencing attributes": "tier,country",
              "Tree depth": "2"}  # fmt: skip
    _suggest(page, shop.url, "measure", fields, "Successful")
    rows = page.locator("#result table tbody tr")
    expect(rows.first).to_contain_text("average age")
    shoot(page, "suggest-measure")
    first = rows.first
    name = first.locator("td").first.inner_text()
    first.get_by_role("button", name="Accept and activate").click()
    expect(page.locator("#flash")).to_contain_text("Created active segment")
    created = first.get_by_role("link").inner_text().removeprefix("Created ")
    shown = shop.api.ok("GET", f"/segments/{created}")
    assert (shown["type"], shown["state"], shown["name"]) == ("dynamic", "active", name)


def test_suggest_by_activity_lists_the_rfm_groups(signed_in: Page, shop: ApiHarness) -> None:
    page = signed_in
    fields = {"Activity (event type)": "purchase", "Value property": "amount", "Look-back": "30d"}
    _suggest(page, shop.url, "activity", fields, "Successful")
    expect(page.locator("#result")).to_contain_text(f"{len(shop.members('buyers'))} of 40")
    expect(page.locator("#result table tbody tr").first.get_by_role("button", name="Accept").first)\
        .to_be_visible()  # fmt: skip


def test_an_analysis_error_names_its_field(signed_in: Page, shop: ApiHarness) -> None:
    page = signed_in
    fields = {"Attribute to explain": "age", "Influencing attributes": "tier,tierr"}
    _suggest(page, shop.url, "measure", fields, "Failure")
    expect(page.locator("#job-error")).to_contain_text("unknown_attribute at using[1]")
    expect(page.get_by_label("Influencing attributes")).to_have_attribute("aria-invalid", "true")


def test_details_show_overlap_and_differentiators(signed_in: Page, shop: ApiHarness) -> None:
    page = signed_in
    page.goto(shop.url + "/ui/segments/de")
    page.get_by_label("Overlap with").select_option(["buyers"])
    page.get_by_role("button", name="Show overlap").click()
    both = len(shop.members("de") & shop.members("buyers"))
    expect(page.locator("#overlap-table")).to_contain_text(f"de and buyers{both}")
    page.get_by_role("button", name="Show differentiators").click()
    first = page.locator("#diff-table tbody tr").first
    expect(first).to_contain_text("country")
    expect(first).to_contain_text("country = DE: 100 % vs 50 %")
    page.locator("#insights").scroll_into_view_if_needed()
    shoot(page, "insights")
