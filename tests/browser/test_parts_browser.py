"""A job of several parts in Chromium, on a desktop and a 375 px phone: the student chooses three model
files (adding and removing files, setting copies with the keyboard), sends them with one progress bar,
sees one minimum charge for the whole job on the status page, and staff see every part in the approve
dialog."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from printlab.models import AnalysisState, Job

from ..conftest import MODELS
from .conftest import DESKTOP, PHONE, Live, Tab, choose_acting_as, sign_in

pytestmark = pytest.mark.browser

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
CYLINDERS = MODELS / "3mf_consortium_multiple_cylinders.3mf"
BOX = MODELS / "box.obj"
DONUT = MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl"


def fits_the_width(tab: Tab) -> None:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= tab.page.viewport_size["width"], f"the page is {width} px wide"


def analysed(live: Live, job_id: str) -> Job:
    deadline = time.monotonic() + 60
    while True:
        job = live.fresh().get(Job, job_id)
        if job is not None and job.analysis is not None and job.analysis.state == AnalysisState.DONE:
            return job
        assert time.monotonic() < deadline, "the model check did not finish"
        time.sleep(0.2)


def send_three_parts(tab: Tab, live: Live) -> Job:
    page = tab.page
    tab.go(f"{live.url}/submit")
    page.get_by_label("Full name").fill("Jane Doe")
    page.get_by_label("Email").fill("jane.doe@example.edu")
    page.get_by_label("Discipline").select_option("Engineering")
    page.get_by_label("Class number").fill("ME 2110")
    page.get_by_label("Filament").check()
    page.get_by_label("Color").select_option("True Red")
    page.get_by_label("Printer").select_option("Prusa MK4S")
    files = page.locator("#file")
    files.set_input_files([CUBE, CYLINDERS])
    files.set_input_files([DONUT])  # choosing again adds to the list
    files.set_input_files([BOX])
    rows = page.locator("#parts-list .part-row")
    expect(rows).to_have_count(4)
    expect(page.locator("#parts-total")).to_contain_text("4 files")
    fits_the_width(tab)
    # The donut was a mistake: removed with the keyboard; focus stays in the list.
    page.get_by_role("button", name=f"Remove {DONUT.name}").focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(3)
    assert page.evaluate("document.activeElement.className") == "part-remove"
    assert page.evaluate("document.getElementById('file').files.length") == 3
    page.get_by_label(f"Copies of {CUBE.name}").fill("2")
    copies_of_box = page.get_by_label(f"Copies of {BOX.name}")
    copies_of_box.focus()
    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    page.locator("#acknowledged_minimum_charge").check()
    page.get_by_role("button", name="Send my model").click()
    page.wait_for_url(re.compile(r"/submit/done/"))
    tab.audit()
    return live.newest_job()


@VIEWPORTS
def test_a_three_part_job_with_copies_pays_one_minimum_charge(live: Live, open_tab, viewport):
    student = open_tab("student", viewport)
    job = send_three_parts(student, live)
    assert [(p.original_filename, p.copies) for p in job.parts] == [
        (CUBE.name, 2), (CYLINDERS.name, 1), (BOX.name, 3),
    ]  # fmt: skip
    job = analysed(live, job.id)

    page = student.page
    student.go(live.status_url(job.id))
    summary = page.locator("dl.summary")
    expect(summary).to_contain_text(f"{CUBE.name}: 2 copies")
    expect(summary).to_contain_text(f"{CYLINDERS.name}: 1 copy")
    expect(summary).to_contain_text(f"{BOX.name}: 3 copies")
    expect(summary).to_contain_text("one minimum charge")
    cost = page.locator("#analysis").inner_text()
    low, high = job.analysis.results["cost_range_usd"]  # type: ignore[union-attr]
    assert low == "3.00"  # the minimum, once, for the whole job (each part alone would be $3.00)
    assert f"${low} to ${high}" in cost and "$9.00" not in cost
    expect(page.locator("#analysis")).to_contain_text("3 files, 6 prints in all")
    fits_the_width(student)

    staff = open_tab("staff", viewport)
    sign_in(staff, live)
    staff.go(f"{live.url}/jobs/{job.id}")
    expect(staff.page.locator("#parts .job-parts > li")).to_have_count(3)
    fits_the_width(staff)
    staff.go(f"{live.url}/jobs/{job.id}/act/approve")
    choose_acting_as(staff)
    parts = staff.page.locator("#approval-parts .job-parts > li")
    expect(parts).to_have_count(3)
    expect(parts.nth(0)).to_contain_text(f"Part 1: {CUBE.name} — 2 copies")
    expect(parts.nth(1)).to_contain_text(f"Part 2: {CYLINDERS.name} — 1 copy")
    expect(parts.nth(2)).to_contain_text(f"Part 3: {BOX.name} — 3 copies")
    expect(staff.page.locator("#approval-parts-title")).to_contain_text("one minimum charge")
    expect(parts.nth(1).locator(".model-preview")).to_have_attribute("data-preview-state", re.compile("."))
    fits_the_width(staff)
