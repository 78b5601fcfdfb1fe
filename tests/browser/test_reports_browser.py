"""The reports page in Chromium: choosing a period, each chart drawn over its table, at 1366 and 375 px."""

from __future__ import annotations

import pytest

from printlab.domain.statuses import Status
from printlab.services.lab import workstations

from ..factories import make_job
from .conftest import PASSWORD, PHONE, sign_in

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 768}
ADMIN_PC = "ADMIN-PC"


@pytest.fixture
def history(live):  # type: ignore[no-untyped-def]
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    made = [
        make_job(live.session, live.storage, Status.PAIDPICKEDUP, student_email="a@example.edu"),
        make_job(live.session, live.storage, Status.COMPLETED, student_email="b@example.edu"),
        make_job(live.session, live.storage, Status.REJECTED, student_email="c@example.edu"),
    ]
    return made


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_choose_a_period_and_see_each_chart_with_its_table(live, history, open_tab, viewport):
    tab = open_tab(f"reports-{viewport['width']}", viewport=viewport)
    sign_in(tab, live, ADMIN_PC)
    page = tab.page
    page.get_by_role("link", name="Reports").click()
    page.wait_for_url(f"{live.url}/reports")
    tab.audit()
    page.get_by_label("Period").select_option(label="Last 7 days")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_url(f"{live.url}/reports?period=7d**")
    tab.audit()

    assert page.locator("#report-period").inner_text().startswith("Last 7 days")
    for table in ("throughput-table", "turnaround-table", "reasons-table", "printers-table"):
        canvas = page.locator(f'canvas[data-table="{table}"]')
        canvas.wait_for()
        assert canvas.get_attribute("data-drawn") == "true", table  # Chart.js drew it from the table
        box = canvas.bounding_box()
        assert box is not None and 0 < box["width"] <= viewport["width"] and box["height"] > 100
        assert page.locator(f"#{table} caption").is_visible()
    throughput = page.locator("#throughput-table tbody tr")
    assert sum(int(x) for x in throughput.locator("td[data-value]").all_inner_texts()) == 2
    assert "Walls too thin" in page.locator("#reasons-table").inner_text()
    assert page.locator("#summary-heading + table").inner_text().count("Revenue") == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    tab.screenshot(f"reports-{viewport['width']}")


def test_a_lab_computer_sees_counts_and_times_but_no_money(live, history, open_tab):
    tab = open_tab("reports-desk", viewport=LAPTOP)
    sign_in(tab, live)  # LAB-PC-1: not an admin workstation
    tab.go(f"{live.url}/reports?period=30d")
    tab.audit()
    body = tab.page.locator("main").inner_text()
    assert "Submissions" in body and "Upload to approval" in body
    assert "$" not in body and "Revenue" not in body and "Owed" not in body


def test_a_period_ending_before_it_starts_is_explained_on_the_page(live, history, open_tab):
    tab = open_tab("reports-bad", viewport=PHONE)
    sign_in(tab, live)
    page = tab.page
    tab.go(f"{live.url}/reports")
    tab.audit()
    page.get_by_label("Period").select_option(label="Custom dates")
    page.get_by_label("From (custom dates)").fill("2026-03-15")
    page.get_by_label("To (custom dates)").fill("2026-03-01")
    page.get_by_role("button", name="Show report").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text().endswith("The end date is before the start date.")
    assert page.get_by_label("To (custom dates)").get_attribute("aria-invalid") == "true"
    tab.audit()
