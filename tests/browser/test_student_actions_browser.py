"""The student's own actions in Chromium, on a desktop and a 375 px phone: cancel from the status page,
decline a quote, and answer staff's "needs changes" with a corrected file from the emailed link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from printlab.domain.statuses import Status
from printlab.models import Event, Job
from printlab.services.jobs import workflow

from ..conftest import MODELS
from ..factories import actor, make_job
from .conftest import PHONE, Live, Tab, choose_acting_as, milestones, sign_in

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
SCREENS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])


def fits(tab: Tab) -> None:
    """The page is no wider than the window (a phone never scrolls sideways)."""
    width = tab.page.evaluate("document.documentElement.scrollWidth")
    assert width <= tab.page.viewport_size["width"], f"page is {width} px wide"


@SCREENS
def test_a_student_cancels_their_request_from_the_status_page(live: Live, open_tab, viewport):  # type: ignore[no-untyped-def]
    job = make_job(live.session, live.storage, Status.UPLOADED)
    tab = open_tab("student", viewport=viewport)
    page = tab.page

    tab.go(live.status_url(job.id))
    page.get_by_role("link", name="Cancel my request").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Cancel job [0-9a-f]+\?$"))
    tab.audit()
    fits(tab)
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, cancel my request").click()
    tab.audit()
    fits(tab)

    expect(page.locator(".flashes")).to_contain_text("You cancelled this request")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancelled by the student")
    assert milestones(tab)[-1] == "Cancelled by the student"
    assert not page.get_by_role("link", name="Cancel my request").count()
    row = live.fresh().get(Job, job.id)
    assert row is not None and row.status == Status.REJECTED.value


def test_a_stale_status_page_cannot_cancel_what_staff_approved_meanwhile(live: Live, open_tab):  # type: ignore[no-untyped-def]
    job = make_job(live.session, live.storage, Status.UPLOADED)
    tab = open_tab("student")
    tab.go(f"{live.status_url(job.id)}/cancel")
    workflow.approve(live.session, live.storage, job.id, actor=actor(), weight_g=30, time_hours=1)
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name="Yes, cancel my request").click()
    assert navigation.value.status == 409
    tab.audit()
    expect(tab.page.locator("#cancel-error")).to_contain_text("Nothing was cancelled")
    expect(tab.page.locator("#cancel-error")).to_contain_text("Quote ready")
    row = live.fresh().get(Job, job.id)
    assert row is not None and row.status == Status.PENDING.value


@SCREENS
def test_a_student_declines_a_quote_and_staff_see_it_on_the_dashboard(live: Live, open_tab, viewport):  # type: ignore[no-untyped-def]
    job = make_job(live.session, live.storage, Status.PENDING)
    staff = open_tab("staff")
    sign_in(staff, live)
    staff.go(f"{live.url}/dashboard?status=REJECTED")
    assert not staff.page.locator(f"a[href='/jobs/{job.id}']").count()

    tab = open_tab("student", viewport=viewport)
    page = tab.page
    tab.go(live.quote_link(job.id))
    fits(tab)
    page.get_by_label("Why not? (optional)").fill("I'll print it at home")
    with page.expect_navigation():
        page.get_by_role("button", name="Decline the quote").click()
    tab.audit()
    fits(tab)
    expect(page.get_by_role("heading", level=1)).to_have_text("You declined the quote")

    # The dashboard's poll picks the change up (its version moved): the job is in the Rejected tab.
    expect(staff.page.locator(f"a[href='/jobs/{job.id}']")).to_be_visible(timeout=60_000)
    staff.go(f"{live.url}/jobs/{job.id}")
    expect(staff.page.locator("body")).to_contain_text("Quote declined by the student (from the quote page)")
    expect(staff.page.locator("body")).to_contain_text("I'll print it at home")


@SCREENS
def test_staff_ask_for_changes_and_the_student_sends_a_corrected_file(live: Live, open_tab, viewport):  # type: ignore[no-untyped-def]
    job = make_job(live.session, live.storage, Status.UPLOADED)
    staff = open_tab("staff")
    sign_in(staff, live)
    staff.go(f"{live.url}/jobs/{job.id}/act/request_changes")
    choose_acting_as(staff)
    staff.page.get_by_label("Walls too thin").check()
    staff.page.get_by_label("In your own words (optional)").fill("Make the base at least 2 mm thick.")
    with staff.page.expect_navigation():
        staff.page.locator("#action-submit").click()
    staff.audit()
    expect(staff.page.locator("#waiting-banner")).to_contain_text("Waiting for the student's corrected file")
    staff.go(f"{live.url}/dashboard?status=UPLOADED&waiting=1")
    expect(staff.page.locator(f"a[href='/jobs/{job.id}']")).to_contain_text("waiting for the student")
    expect(staff.page.locator("#waiting-filter .count")).to_have_text("1")

    tab = open_tab("student", viewport=viewport)
    page = tab.page
    tab.go(live.emailed_link(job.id, "changes_needed", "/replace/"))
    fits(tab)
    expect(page.locator("#asked-for")).to_contain_text("Make the base at least 2 mm thick.")
    page.get_by_label("Your corrected model file").set_input_files(MODELS / "box.mtl")  # not a model
    with page.expect_navigation() as refused:
        page.get_by_role("button", name="Send the corrected file").click()
    assert refused.value.status == 422
    tab.audit()
    fits(tab)
    page.get_by_label("Your corrected model file").set_input_files(MODELS / "box.obj")
    with page.expect_navigation():
        page.get_by_role("button", name="Send the corrected file").click()
    page.wait_for_url(re.compile(r"/status/"))
    tab.audit()
    fits(tab)
    expect(page.locator(".flashes")).to_contain_text("we've received your corrected file")
    assert milestones(tab)[-2:] == ["The lab asked for a corrected file", "Corrected file received"]

    row = live.fresh().get(Job, job.id)
    assert row is not None and row.file_path == f"Uploaded/{row.display_name}.obj"
    assert live.storage.resolve(f"Uploaded/{row.display_name}_v1.stl").is_file()
    replaced = live.session.query(Event).filter_by(job_id=job.id, event_type="FileReplaced").one()
    assert replaced.details["old_file"] == "_v1.stl"
    # The link has done its work: opening it again says so.
    tab.go(live.emailed_link(job.id, "changes_needed", "/replace/"))
    expect(page.locator("#link-message")).to_contain_text("We already have your corrected file")
