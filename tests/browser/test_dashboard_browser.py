"""The dashboard in Chromium: the first phone screen, one-row tabs and filters on a desktop, the skip link, search."""

from __future__ import annotations

from typing import Any

import pytest

from printlab.domain.statuses import Status

from ..factories import make_job
from .conftest import PHONE, Live, Tab, sign_in

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}


@pytest.fixture
def jobs(live: Live) -> list[Any]:
    made = [
        make_job(
            live.session,
            live.storage,
            student_name=f"Student {number}",
            student_email=f"s{number}@example.edu",
            class_number="ARCH 4010",
        )
        for number in range(3)
    ]
    made.append(
        make_job(
            live.session,
            live.storage,
            Status.PAIDPICKEDUP,
            student_name="Maria Lopez",
            student_email="maria@example.edu",
        )
    )
    return made


def _tops(tab: Tab, selector: str) -> list[float]:
    return tab.page.eval_on_selector_all(
        selector, "els => els.map(e => Math.round(e.getBoundingClientRect().top))"
    )


def _page_width(tab: Tab) -> int:
    return tab.page.evaluate("() => document.documentElement.scrollWidth")


def test_on_a_phone_the_first_card_is_on_the_first_screen_and_tabs_scroll_sideways(live, jobs, open_tab):
    tab = open_tab("phone", viewport=PHONE)
    sign_in(tab, live)
    page = tab.page

    first_card = page.locator(".card").first.bounding_box()
    assert first_card is not None and first_card["y"] < PHONE["height"], first_card
    assert _page_width(tab) <= PHONE["width"]
    assert len(set(_tops(tab, ".tabs li"))) == 1  # one row of tabs
    tabs = page.locator(".tabs ul")
    assert tabs.evaluate("el => el.scrollWidth > el.clientWidth")  # ... that scrolls sideways
    assert tabs.evaluate("el => getComputedStyle(el).overflowX") == "auto"

    filters = page.locator("details.filters")
    assert not filters.evaluate("el => el.open")  # the filters wait behind a disclosure
    assert not page.get_by_label("Printer").is_visible()
    page.get_by_text("Filters", exact=True).click()
    assert page.get_by_label("Printer").is_visible()
    tab.screenshot("dashboard-phone")


def test_on_a_laptop_filters_and_tabs_stay_on_one_row(live, jobs, open_tab):
    tab = open_tab("laptop", viewport=LAPTOP)
    sign_in(tab, live)
    page = tab.page
    page.get_by_text("Filters", exact=True).click()

    assert len(set(_tops(tab, ".tabs li"))) == 1
    assert not page.locator(".tabs ul").evaluate("el => el.scrollWidth > el.clientWidth")  # all visible
    fields = _tops(tab, ".filter-fields > *")
    assert max(fields) - min(fields) < 40, fields  # one row (aligned at the bottom, so nearly equal tops)
    assert _page_width(tab) <= LAPTOP["width"]
    new = page.locator(".badge.new").first  # NEW is a quiet marker: outlined text, no filled red block
    assert new.evaluate("el => getComputedStyle(el).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert "(under a day)" in page.locator(".card").first.inner_text()  # the age colour in words
    assert "over 3 days" in page.locator(".age-legend").inner_text()  # and its legend
    tab.screenshot("dashboard-laptop")


def test_the_filters_open_without_javascript(live, jobs, open_tab):
    signed_in = open_tab("signed-in")
    sign_in(signed_in, live)
    cookies = signed_in.page.context.cookies()
    tab = open_tab("no-script", viewport=PHONE, java_script_enabled=False)
    tab.page.context.add_cookies(cookies)
    tab.go(f"{live.url}/dashboard")
    tab.page.get_by_text("Filters", exact=True).click()
    assert tab.page.get_by_label("Printer").is_visible()
    tab.page.get_by_label("Printer").select_option("Prusa XL")
    tab.page.get_by_role("button", name="Apply").click()
    tab.audit()
    assert "printer=Prusa+XL" in tab.page.url
    assert tab.page.locator("details.filters").evaluate("el => el.open")  # an active filter shows


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_a_handful_of_tab_presses_reach_the_first_card(live, jobs, open_tab, viewport):
    tab = open_tab("keyboard", viewport=viewport)
    sign_in(tab, live)
    tab.go(f"{live.url}/dashboard")
    page = tab.page
    first_card = page.locator(".card-link").first.get_attribute("href")

    presses = 0
    page.keyboard.press("Tab")
    presses += 1
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Skip to jobs"
    assert page.locator(".skip-link").first.bounding_box()["x"] >= 0  # shown when focused  # type: ignore[index]
    page.keyboard.press("Enter")
    presses += 1
    for _ in range(6):
        page.keyboard.press("Tab")
        presses += 1
        if page.evaluate("() => document.activeElement.getAttribute('href')") == first_card:
            break
    else:
        pytest.fail("the first card was not reached")
    assert presses <= 8, presses


def test_search_finds_a_job_in_any_status_and_a_job_number_opens_it(live, jobs, open_tab):
    tab = open_tab("search")
    sign_in(tab, live)
    page = tab.page
    page.get_by_label("Search jobs").fill("lopez")
    page.keyboard.press("Enter")
    page.wait_for_url("**q=lopez**")
    tab.audit()
    card = page.locator(".card").filter(has_text="Maria Lopez")
    assert card.locator(".status-badge").inner_text() == "Paid & Picked Up"
    assert page.locator(".tabs a[aria-current=page]").inner_text().startswith("All matches")

    number = jobs[0].id[:6]
    page.get_by_label("Search jobs").fill(number)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/jobs/{jobs[0].id}")
    tab.audit()
