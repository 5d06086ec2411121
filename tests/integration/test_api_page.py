"""The live page in headless Chromium (Debian's ``chromium``, driven by Playwright)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from cardiowatch.settings import Settings
from tests.integration.api_harness import (
    ApiProcess,
    api_settings,
    create_token,
    make_alert,
    make_vitals,
    start_api,
    write,
)

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def page() -> Iterator[Page]:
    """A page of the system Chromium (never a browser downloaded by Playwright)."""
    if not CHROMIUM.exists():
        found = shutil.which("chromium")
        pytest.fail(
            f"{CHROMIUM} not found{f' (but {found} is)' if found else ''}: the page test needs "
            "Debian's chromium; run scripts/ensure-system-deps (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.fixture
def api(services: Settings, tmp_path: Path) -> Iterator[tuple[Settings, ApiProcess]]:
    settings = api_settings(services, tmp_path)
    write(
        settings,
        vitals=[
            make_vitals("bed-1", hr=72.0),
            make_vitals("bed-2", hr=151.0, alarms=["tachycardia"]),
            make_vitals("bed-3", hr=60.0),
        ],
    )
    process = start_api(settings, tmp_path / "logs")
    try:
        yield settings, process
    finally:
        process.stop()
    assert "Traceback" not in process.log(), process.log()


def test_page_shows_patients_in_scope_and_a_live_alert(
    api: tuple[Settings, ApiProcess], page: Page, tmp_path: Path
) -> None:
    settings, process = api
    token, _ = create_token(settings, patients=["bed-1", "bed-2"])
    page.goto(process.base_url + "/")
    page.fill("#token", token)
    page.click("#login button[type=submit]")

    grid = page.locator("#grid .patient")
    expect(grid).to_have_count(2)
    expect(page.locator('.patient[data-patient-id="bed-1"] .hr')).to_have_text("72 bpm")
    expect(page.locator('.patient[data-patient-id="bed-2"] .hr')).to_have_text("151 bpm")
    assert page.locator('.patient[data-patient-id="bed-3"]').count() == 0
    expect(page.locator("#status")).to_have_text("live")

    alert = make_alert("bed-2", alarm_type="tachycardia", priority="high", onset_sample=7200)
    assert write(settings, alerts=[alert]) == 1
    item = page.locator(f'#alerts .alert[data-alert-id="{alert.id}"]')
    expect(item).to_be_visible()
    expect(item).to_contain_text("tachycardia raise")
    expect(item).to_have_class("alert priority-high")
    assert item.locator("canvas").count() == 1  # the strip around the onset
    chip = page.locator('.patient[data-patient-id="bed-2"] .chip')
    expect(chip).to_have_text("tachycardia")
    expect(chip).to_have_class("chip priority-high")
    overview = tmp_path / "live-page.png"
    page.screenshot(path=str(overview), full_page=True)

    page.click('.patient[data-patient-id="bed-2"]')
    expect(page.locator("#patient-title")).to_have_text("bed-2")
    expect(page.locator("#patient-alerts .alert")).to_have_count(1)
    detail = tmp_path / "live-page-patient.png"
    page.screenshot(path=str(detail), full_page=True)
    assert overview.stat().st_size > 10_000
    print(f"screenshots: {overview} {detail}")
