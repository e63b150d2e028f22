"""The Segments page in a real Chromium: the operator's journey, one worker for the module.

The tests run in file order and build on each other (create, then act on what was made),
as an operator would; each one still asserts its own outcome through the HTTP API.
"""

from __future__ import annotations

import re
import tempfile

import pytest
from playwright.sync_api import Page, expect

from ..fixtures import ApiHarness, definition
from .fixtures import shoot, until

pytestmark = pytest.mark.integration


def _row(page: Page, segment_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#segments tbody tr[data-id="{segment_id}"]')


def _menu(page: Page, segment_id: str, action: str) -> None:
    row = _row(page, segment_id)
    row.locator("summary").click()
    row.locator(".menu-items").get_by_role("button", name=action).click()


def test_builder_creates_and_activates_with_an_estimate(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/new")
    page.get_by_label("ID", exact=True).fill("ui-gold")
    page.get_by_label("Name", exact=True).fill("Gold customers")
    page.get_by_label("Tags").fill("ui, vip")
    rule = page.locator(".rule").first
    rule.get_by_label("attribute", exact=True).fill("tier")
    rule.get_by_label("value", exact=True).fill("gold")
    expect(page.locator("#estimate")).to_contain_text("10 of 40 customers (25.0%)")
    assert '"value": "gold"' in page.locator("#def-text").input_value()
    shoot(page, "builder")
    page.get_by_role("button", name="Save and activate").click()
    page.wait_for_url(ui.url + "/ui/segments/ui-gold")
    expect(page.locator("#member-count")).to_have_text("10")
    shown = ui.api.ok("GET", "/segments/ui-gold")
    assert (shown["state"], shown["members"], shown["tags"]) == ("active", 10, ["ui", "vip"])
    page.goto(ui.url + "/ui/")
    expect(_row(page, "ui-gold").locator(".members")).to_have_text("10")
    expect(_row(page, "ui-gold").locator(".state")).to_contain_text("active")
    shoot(page, "segments")


def test_a_definition_error_shows_next_to_its_field(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/new")
    page.get_by_label("ID", exact=True).fill("ui-broken")
    page.get_by_label("Name", exact=True).fill("Broken")
    group = page.locator(".rule .group-box").first
    group.get_by_label("attribute", exact=True).fill("tier")
    group.get_by_label("value", exact=True).fill("gold")
    group.get_by_role("button", name="+ In segment").click()
    field = page.locator('[data-path="rules[0].where.all[1].in_segment"]')
    field.fill("no-such-segment")
    error = page.locator('.field:has([data-path="rules[0].where.all[1].in_segment"]) .field-error')
    expect(error).to_contain_text("no-such-segment")
    expect(field).to_have_attribute("aria-invalid", "true")
    page.get_by_role("button", name="Save as draft").click()
    expect(error).to_contain_text("no-such-segment")
    expect(page.locator("#flash")).to_contain_text("Not saved")
    assert ui.api.call("GET", "/segments/ui-broken")[0] == 404


def test_the_text_view_follows_the_form_and_drives_it(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/new")
    text = page.locator("#def-text")
    text.fill(
        '{"id": "ui-yaml", "name": "From text", "rules": [{"where": '
        '{"attr": "country", "op": "eq", "value": "DE"}}]}'
    )
    expect(page.get_by_label("ID", exact=True)).to_have_value("ui-yaml")
    expect(page.locator(".rule").first.get_by_label("value", exact=True)).to_have_value("DE")
    expect(page.locator("#estimate")).to_contain_text("20 of 40 customers")
    page.get_by_label("YAML").check()
    expect(text).to_have_value(re.compile(r"attr: country"))


def test_details_trend_time_frames_tooltip_and_preview(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/segments/ui-gold")
    points = page.locator("#trend circle.point")
    expect(points.first).to_be_visible()
    page.get_by_role("button", name="7 days").click()
    expect(page.get_by_role("button", name="7 days")).to_have_attribute("aria-pressed", "true")
    until(lambda: ui.api.ok("GET", "/segments/ui-gold/trend")["points"], what="a trend point")
    last = points.last
    expect(last).to_be_visible()
    last.hover()
    tooltip = page.locator("#tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("10 members")
    label = last.get_attribute("aria-label") or ""
    assert label.startswith("10 members at ")
    page.mouse.move(0, 0)
    last.focus()
    expect(tooltip).to_contain_text("10 members")
    page.get_by_role("button", name="Custom").click()
    expect(page.locator("#custom-frame")).to_be_visible()
    preview = page.locator("#preview")
    headers = preview.locator("thead th").all_inner_texts()
    assert headers == ["Customer", "age", "country", "tier"]
    rows = preview.locator("tbody tr")
    assert 0 < rows.count() <= 100
    assert rows.count() == 10
    assert set(preview.locator("tbody td:nth-child(4)").all_inner_texts()) == {"gold"}
    page.get_by_role("button", name="24 hours").click()
    last.hover()
    shoot(page, "details")


def test_duplicate_rename_and_schedule_from_the_row_menu(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/")
    _menu(page, "ui-gold", "Create duplicate")
    dialog = page.locator("#dlg-duplicate")
    dialog.get_by_label("New id").fill("ui-gold-2")
    dialog.get_by_label("New name").fill("Gold again")
    dialog.get_by_role("button", name="Create duplicate").click()
    expect(_row(page, "ui-gold-2")).to_be_visible()
    assert ui.api.ok("GET", "/segments/ui-gold-2")["name"] == "Gold again"

    _menu(page, "ui-gold-2", "Rename")
    dialog = page.locator("#dlg-rename")
    dialog.get_by_label("New name").fill("Gold, renamed")
    dialog.get_by_role("button", name="Rename").click()
    expect(_row(page, "ui-gold-2").locator("td").nth(1)).to_have_text("Gold, renamed")

    _menu(page, "ui-gold", "Schedule deactivation…")
    dialog = page.locator("#dlg-schedule")
    dialog.get_by_label("Date").fill("2030-01-01")
    dialog.get_by_label("Time", exact=True).fill("06:00")
    dialog.get_by_label("Time zone").fill("Europe/Berlin")
    dialog.get_by_role("button", name="Schedule").click()
    expect(page.locator("#flash")).to_contain_text("Schedule deactivate done")
    pending = ui.api.ok("GET", "/segments/ui-gold/schedules")["schedules"]
    assert [(s["action"], s["at"]) for s in pending] == [("deactivate", 1893474000000)]
    page.goto(ui.url + "/ui/segments/ui-gold")
    expect(page.locator("#schedules")).to_contain_text("deactivate")


def test_refresh_from_the_action_bar_reaches_successful(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/")
    _row(page, "ui-gold").get_by_role("checkbox").check()
    _row(page, "ui-gold-2").get_by_role("checkbox").check()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.locator("#actionbar").get_by_role("button", name="Refresh").click()
    expect(page.locator("#flash")).to_contain_text("started")
    badge = _row(page, "ui-gold").locator(".refresh .badge")
    expect(badge).to_have_text("refresh: Successful", timeout=60_000)
    jobs = ui.api.ok("GET", "/jobs?segment=ui-gold")["jobs"]
    assert jobs[0]["command"] == "refresh" and jobs[0]["status"] == "Successful"
    page.goto(ui.url + "/ui/jobs")
    expect(page.locator("#jobs tbody tr").first).to_contain_text("Successful")
    shoot(page, "jobs")
    page.locator("#jobs tbody tr").first.get_by_role("link", name="Successful").click()
    page.get_by_text("See details").first.click()
    expect(page.get_by_text("Processing time").first).to_be_visible()
    shoot(page, "job")


def test_download_csv_matches_the_api(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/")
    row = _row(page, "ui-gold")
    row.locator("summary").click()
    with page.expect_download() as info:
        row.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == "ui-gold-members.csv"
    with open(download.path(), "rb") as got:
        browser_csv = got.read()
    status, api_csv, _ = ui.api.raw("GET", "/segments/ui-gold/members.csv")
    assert status == 200
    assert sorted(browser_csv.splitlines()) == sorted(api_csv.splitlines())
    assert len(browser_csv.splitlines()) == 11


def test_add_the_segment_to_an_export_from_manage_exports(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    export = {
        "id": "ui-crm",
        "name": "CRM files",
        "segments": ["known"],
        "destination": {"type": "files", "directory": tempfile.mkdtemp(prefix="ui-export-")},
    }
    ui.api.ok("POST", "/exports", {"export": export}, status=201)
    page.goto(ui.url + "/ui/segments/ui-gold/exports")
    item = page.locator('#not-containing li[data-export="ui-crm"]')
    item.get_by_role("button", name="Add segment").click()
    expect(page.locator('#containing li[data-export="ui-crm"]')).to_be_visible()
    assert "ui-gold" in ui.api.ok("GET", "/exports/ui-crm")["segments"]
    shoot(page, "manage-exports")
    page.goto(ui.url + "/ui/exports")
    expect(page.locator('#exports tr[data-export="ui-crm"]')).to_contain_text("ui-gold")


def test_quick_segment_shows_values_and_an_estimate(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/quick")
    page.get_by_label("Attribute").fill("tier")
    page.get_by_label("Attribute").press("Tab")
    expect(page.locator("#q-stats svg.bars text").first).to_be_visible()
    expect(page.locator("#q-stats")).to_contain_text("on 40 of 40 customers (categorical)")
    page.get_by_label("Value", exact=False).fill("silver")
    page.get_by_label("Segment ID").fill("ui-silver")
    page.get_by_label("Name", exact=True).fill("Silver customers")
    expect(page.locator("#q-estimate")).to_contain_text("Estimated size: 10 of 40 customers")
    page.get_by_role("button", name="Save and activate").click()
    page.wait_for_url(ui.url + "/ui/segments/ui-silver")
    expect(page.locator("#member-count")).to_have_text("10")


def test_recurring_refresh_schedules_and_refresh_all(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    page.goto(ui.url + "/ui/schedules")
    page.get_by_label("Cron").fill("0 6 * * *")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Gold customers").check()
    page.get_by_role("button", name="Add schedule").click()
    row = page.locator("#refresh-schedules tbody tr[data-schedule]")
    expect(row).to_contain_text("Europe/Berlin")
    listed = ui.api.ok("GET", "/refresh-schedules")["refresh_schedules"]
    assert [(r["cron"], r["segment_ids"]) for r in listed] == [("0 6 * * *", ["ui-gold"])]
    row.get_by_role("button", name="Remove").click()
    expect(row).to_have_count(0)
    assert ui.api.ok("GET", "/refresh-schedules")["refresh_schedules"] == []
    page.get_by_label("Cron").fill("every day")
    page.get_by_label("All segments").check()
    page.get_by_role("button", name="Add schedule").click()
    expect(page.locator("#refresh-error")).to_contain_text("every day")

    page.goto(ui.url + "/ui/")
    before = len(ui.api.ok("GET", "/jobs?limit=500")["jobs"])
    page.get_by_role("button", name="Refresh all").click()
    expect(page.locator("#flash")).to_contain_text("Refresh of all segments started")
    until(lambda: len(ui.api.ok("GET", "/jobs?limit=500")["jobs"]) > before, what="a new job")


def test_delete_names_dependents_and_exports(signed_in: Page, ui: ApiHarness) -> None:
    page = signed_in
    parent = definition("ui-parent", {"in_segment": "ui-gold"})
    ui.api.ok("POST", "/segments", {"segment": parent}, status=201)
    page.goto(ui.url + "/ui/")
    _menu(page, "ui-gold", "Delete")
    dialog = page.locator("#dlg-delete")
    expect(dialog.locator(".uses")).to_contain_text("used by in_segment in ui-parent")
    expect(dialog.locator(".uses")).to_contain_text("in exports ui-crm")
    dialog.get_by_role("button", name="Delete").click()
    expect(dialog.locator(".error")).to_contain_text("ui-parent")  # the API refuses: in use
    dialog.get_by_role("button", name="Cancel").click()
    assert ui.api.call("GET", "/segments/ui-gold")[0] == 200

    _menu(page, "ui-parent", "Delete")
    expect(dialog.locator(".uses")).to_contain_text("no segment uses it; in no export")
    dialog.get_by_role("button", name="Delete").click()
    expect(_row(page, "ui-parent")).to_have_count(0)
    assert ui.api.call("GET", "/segments/ui-parent")[0] == 404
