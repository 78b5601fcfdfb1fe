"""The approve dialog in Chromium, on a desktop and a 375 px phone: only printable files to choose from,
the colours and printers of the chosen method, the model check's estimate and warnings, and a message
to the student that reaches the quote email."""

from __future__ import annotations

import shutil
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import AnalysisState, Job, OutboxMessage

from ..conftest import MODELS
from ..factories import make_job
from .conftest import DESKTOP, PHONE, Live, Tab, choose_acting_as, sign_in

pytestmark = pytest.mark.browser

VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def analysed_job(live: Live, model: str = "stl_binary_20mm_xyz_cube.stl", **overrides) -> Job:
    """A job made through the real workflow whose model check the app's worker has finished."""
    job = make_job(live.session, live.storage, model=MODELS / model, **overrides)
    deadline = time.monotonic() + 30
    while True:
        fresh = live.fresh().get(Job, job.id)
        if fresh.analysis is not None and fresh.analysis.state == AnalysisState.DONE:
            return fresh
        assert time.monotonic() < deadline, "the model check did not finish"
        time.sleep(0.2)


def open_approve(tab: Tab, live: Live, job: Job) -> None:
    tab.go(f"{live.url}/jobs/{job.id}/act/approve")
    choose_acting_as(tab)
    expect(tab.page.locator("#action-submit")).to_be_enabled()


def fits_the_width(tab: Tab) -> None:
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= tab.page.viewport_size["width"], f"the dialog is {width} px wide"


def enabled_options(tab: Tab, select_id: str) -> list[str]:
    return tab.page.eval_on_selector(
        f"#{select_id}", "s => Array.from(s.options).filter(o => !o.disabled && !o.hidden).map(o => o.value)"
    )


@VIEWPORTS
def test_only_printable_files_and_the_warnings_beside_the_button(live: Live, open_tab, viewport):
    # 2 mm across: drawn in inches. A long name makes a long stored file name, which must wrap.
    job = analysed_job(live, "box.obj", student_name="Maximiliana Alexandrina Konstantinopoulou Vanderbilt")
    upload = live.storage.resolve(job.file_path)
    shutil.copyfile(MODELS / "box.mtl", upload.with_suffix(".mtl"))
    staff = open_tab("LAB-PC-1", viewport=viewport)
    sign_in(staff, live)
    open_approve(staff, live, job)
    page = staff.page

    choices = page.locator("input[name=authoritative_file]")
    expect(choices).to_have_count(1)
    expect(choices.first).to_have_value(upload.name)
    expect(choices.first).to_be_checked()
    assert upload.with_suffix(".mtl").name not in page.inner_text("#authoritative_file")

    warnings = page.locator("#model-warnings")
    expect(warnings).to_be_visible()
    expect(warnings).to_contain_text("only 2 mm across")
    below = page.locator("#action-submit").bounding_box()
    box = warnings.bounding_box()
    assert box["y"] + box["height"] <= below["y"] < box["y"] + box["height"] + 80  # right above the button
    assert page.locator("#action-submit").get_attribute("aria-describedby") == "model-warnings"
    # Not watertight: no volume, so no weight is made up.
    expect(page.locator("#weight_g")).to_have_value("")
    fits_the_width(staff)
    staff.screenshot(f"approve-obj-{viewport['width']}")


@VIEWPORTS
def test_the_estimate_is_prefilled_and_marked_as_one(live: Live, open_tab, viewport):
    job = analysed_job(live)
    staff = open_tab("LAB-PC-1", viewport=viewport)
    sign_in(staff, live)
    open_approve(staff, live, job)
    page = staff.page
    expect(page.locator("#weight_g")).to_have_value("4.4")
    expect(page.locator("#time_hours")).to_have_value("0.5")
    expect(page.locator("label[for=weight_g] .badge.estimate")).to_have_text("estimate")
    expect(page.locator("#weight-note")).to_contain_text("From the model check — estimate")
    expect(page.locator("#time-note")).to_contain_text("From the model check — estimate")
    expect(page.locator("#price-output")).to_have_text("$3.00")
    expect(page.locator("#model-warnings")).to_have_count(0)
    fits_the_width(staff)


@VIEWPORTS
def test_changing_the_method_narrows_colours_and_printers(live: Live, open_tab, viewport):
    job = analysed_job(live)  # Filament, True Red, Prusa MK4S
    staff = open_tab("LAB-PC-1", viewport=viewport)
    sign_in(staff, live)
    open_approve(staff, live, job)
    page = staff.page
    assert "Prusa MK4S" in enabled_options(staff, "printer")
    assert "Formlabs Form 3" not in enabled_options(staff, "printer")

    page.get_by_label("Print method").select_option("Resin")
    assert enabled_options(staff, "color") == ["Black", "White", "Gray", "Clear"]
    assert enabled_options(staff, "printer") == ["Formlabs Form 3"]
    # The filament choices are gone, and nothing is chosen for the student by accident.
    expect(page.locator("#color")).to_have_value("")
    expect(page.locator("#printer")).to_have_value("")
    expect(page.locator("#method-note")).to_have_text("Choose a Resin color and printer.")

    # Back to filament brings the student's choices back.
    page.get_by_label("Print method").select_option("Filament")
    expect(page.locator("#color")).to_have_value("True Red")
    expect(page.locator("#printer")).to_have_value("Prusa MK4S")

    page.get_by_label("Print method").select_option("Resin")
    # "Clear" is a colour of both methods: the resin one is the one offered now.
    resin_clear = page.locator("#color option[data-method=Resin][value=Clear]").element_handle()
    page.get_by_label("Color", exact=True).select_option(element=resin_clear)
    page.get_by_label("Printer", exact=True).select_option("Formlabs Form 3")
    expect(page.locator("#method-note")).to_be_hidden()
    page.get_by_label("Weight (g)").fill("20")
    expect(page.locator("#price-output")).to_have_text("$4.00")
    page.get_by_label("Message to the student (optional)").fill("Resin gives the detail you asked for.")
    fits_the_width(staff)
    page.locator("#action-submit").click()
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()

    approved = live.fresh().get(Job, job.id)
    assert (approved.status, approved.material, approved.color, approved.printer) == (
        "PENDING", "Resin", "Clear", "Formlabs Form 3",
    )  # fmt: skip
    quote = live.session.scalars(
        select(OutboxMessage).where(OutboxMessage.job_id == job.id, OutboxMessage.template == "quote")
    ).one()
    assert quote.context["message"] == "Resin gives the detail you asked for."


@VIEWPORTS
def test_confirm_edit_and_cancel_without_an_admin(live: Live, open_tab, viewport):
    job = make_job(live.session, live.storage, Status.PENDING)
    staff = open_tab("LAB-PC-1", viewport=viewport)
    sign_in(staff, live)
    page = staff.page

    def run(action: str, label: str, **fields: str) -> Job:
        staff.go(f"{live.url}/jobs/{job.id}/act/{action}")
        choose_acting_as(staff)
        for name, value in fields.items():
            page.locator(f"#{name}").fill(value)
        fits_the_width(staff)
        expect(page.locator("#action-submit")).to_have_text(label)
        page.locator("#action-submit").click()
        page.wait_for_url(f"{live.url}/jobs/{job.id}")
        staff.audit()
        expect(page.locator(".flashes")).to_contain_text(f"{label}: done for job")
        return live.fresh().get(Job, job.id)

    confirmed = run("confirm_for_student", "Confirm for student", note="Agreed at the front desk.")
    assert confirmed.status == "READYTOPRINT" and confirmed.student_confirmed

    staff.go(f"{live.url}/jobs/{job.id}/act/edit_quote")
    expect(page.locator(".consequence")).to_contain_text("they must confirm the new one before it is printed")
    edited = run("edit_quote", "Edit quote", weight_g="55", message="The supports add 13 g.")
    assert edited.status == "PENDING" and str(edited.cost_usd) == "5.50" and not edited.student_confirmed

    staff.go(f"{live.url}/jobs/{job.id}/act/cancel")
    expect(page.locator("#cancel-button")).to_have_text("Don't cancel")
    cancelled = run("cancel", "Cancel job", reason="The student no longer needs the part.")
    assert cancelled.status == "REJECTED"
    assert cancelled.reject_reasons == {
        "reasons": [], "other": "The student no longer needs the part.", "cancelled": True
    }  # fmt: skip
