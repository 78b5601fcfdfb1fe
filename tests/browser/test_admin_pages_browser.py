"""The admin area driven in Chromium as a lab manager would, on SQLite (route tests cover both databases)."""

from __future__ import annotations

import re
import shutil
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from printlab import __version__
from printlab.clock import utcnow
from printlab.domain import sign_in as rules
from printlab.domain.statuses import Status
from printlab.models import AdminLogEntry, Event, Job, OutboxMessage, Staff
from printlab.services.jobs import workflow
from printlab.services.lab import staff as staff_service
from printlab.services.lab import workstations
from printlab.services.lab.catalog import load_catalog

from ..factories import STAFF, actor, make_job, make_staff, quote_token, submit_job
from .conftest import OTHER_STAFF, PASSWORD, PHONE, Live, Tab, act_as, choose_acting_as, sign_in

pytestmark = pytest.mark.browser

ADMIN_PC = "ADMIN-PC"
NEWCOMER = "Casey Newhire"


@pytest.fixture
def admin(live: Live, open_tab: Any) -> Tab:
    """A browser tab signed in on an admin workstation."""
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    tab = open_tab("admin")
    sign_in(tab, live, ADMIN_PC)
    assert tab.page.locator(".workstation").inner_text() == f"{ADMIN_PC} (admin)"
    return tab


# -- steps -------------------------------------------------------------------------------------


def submit(tab: Tab, button: Any) -> Any:
    """Click a button that sends a form, wait for the page it leads to, and audit that page."""
    with tab.page.expect_navigation() as navigation:
        button.click()
    tab.audit()
    settle(tab)
    return navigation.value


def open_job(tab: Tab, live: Live, job_id: str) -> None:
    tab.go(f"{live.url}/jobs/{job_id}")
    settle(tab)


def settle(tab: Tab) -> None:
    """On a job page, let the 3D preview finish downloading the model: leaving mid-download makes
    the test server drop the connection without closing the file (a ResourceWarning, an error here)."""
    if re.search(r"/jobs/[^/]+$", tab.page.url):
        tab.page.wait_for_load_state("networkidle")


def flash(tab: Tab) -> str:
    return tab.page.locator(".flashes").inner_text()


def row(tab: Tab, first_cell: str) -> Any:
    """The table row whose first cell is exactly `first_cell`."""
    cell = tab.page.locator("td:first-child", has_text=re.compile(f"^{re.escape(first_cell)}$"))
    return tab.page.locator("tbody tr").filter(has=cell)


def sign_in_with(tab: Tab, live: Live, workstation: str, password: str) -> int:
    """Sign in through /login; returns the HTTP status of the answer (303→200 on success, 401 refused)."""
    tab.go(f"{live.url}/login")
    tab.page.get_by_label("Workstation").fill(workstation)
    tab.page.get_by_label("Password").fill(password)
    response = submit(tab, tab.page.get_by_role("button", name="Sign in"))
    return response.status


def acting_as_names(tab: Tab) -> list[str]:
    return tab.page.locator("#acting-as-choice option").all_inner_texts()


def admin_log_actions(live: Live) -> list[str]:
    """What the admin log holds, newest first."""
    return list(live.fresh().scalars(select(AdminLogEntry.action).order_by(AdminLogEntry.id.desc())))


def job_events(live: Live, job_id: str, event_type: str) -> list[Event]:
    query = select(Event).where(Event.job_id == job_id, Event.event_type == event_type).order_by(Event.id)
    return list(live.fresh().scalars(query))


def wait_for_mail(live: Live, count: int) -> list[str]:
    """The names in the mail folder once the worker thread has written `count` messages there."""
    mail_dir = live.app.extensions["printlab"].config.mail_dir
    deadline = time.monotonic() + 15
    while True:
        # Hidden names are messages still being written.
        names = sorted(p.name for p in mail_dir.glob("*.eml") if not p.name.startswith("."))
        if len(names) >= count or time.monotonic() > deadline:
            return names
        time.sleep(0.1)


# -- staff and workstations --------------------------------------------------------------------


def test_staff_added_are_new_in_acting_as_then_leave_it_when_deactivated_and_return(live, admin):
    job = make_job(live.session, live.storage)
    page = admin.page
    page.get_by_role("navigation", name="Staff").get_by_role("link", name="Admin").click()
    page.wait_for_url(f"{live.url}/admin")
    admin.audit()
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Staff").click()
    page.wait_for_url(f"{live.url}/admin/staff")
    admin.audit()

    act_as(admin, STAFF)
    page.get_by_label("New staff member's full name").fill(f"  {NEWCOMER} ")
    submit(admin, page.get_by_role("button", name="Add", exact=True))
    assert f"Added {NEWCOMER}." in flash(admin)
    assert "active" in row(admin, NEWCOMER).locator("td").nth(1).inner_text()
    assert live.fresh().get(Staff, NEWCOMER).is_active

    open_job(admin, live, job.id)
    assert f"{NEWCOMER} (new)" in acting_as_names(admin)

    admin.go(f"{live.url}/admin/staff")
    newcomer = row(admin, NEWCOMER)
    # Every form carries the name chosen earlier in this tab, in the page header.
    assert newcomer.locator("input[name=acting_as]").input_value() == STAFF
    submit(admin, newcomer.get_by_role("button", name=f"Deactivate {NEWCOMER}"))
    assert f"{NEWCOMER} is deactivated" in flash(admin)
    assert row(admin, NEWCOMER).locator("td").nth(1).inner_text().startswith("inactive since ")
    assert not live.fresh().get(Staff, NEWCOMER).is_active
    open_job(admin, live, job.id)
    assert not [name for name in acting_as_names(admin) if NEWCOMER in name]

    admin.go(f"{live.url}/admin/staff")
    submit(admin, row(admin, NEWCOMER).get_by_role("button", name=f"Reactivate {NEWCOMER}"))
    assert f"{NEWCOMER} is active again." in flash(admin)
    assert live.fresh().get(Staff, NEWCOMER).is_active
    open_job(admin, live, job.id)
    assert f"{NEWCOMER} (new)" in acting_as_names(admin)
    assert admin_log_actions(live)[:3] == ["StaffReactivated", "StaffDeactivated", "StaffAdded"]


def test_a_new_workstation_signs_in_with_its_one_time_password_is_reset_and_made_admin(live, admin, open_tab):
    page = admin.page
    admin.go(f"{live.url}/admin/workstations")
    act_as(admin, STAFF)
    page.get_by_label("New workstation name").fill("LAB-PC-9")
    submit(admin, page.get_by_role("button", name="Add workstation"))
    shown = page.locator("#new-password")
    assert "LAB-PC-9" in shown.inner_text() and "shown only once" in shown.inner_text()
    first_password = shown.locator("code").inner_text()
    assert len(first_password) >= 10
    admin.screenshot("admin-workstations-new-password")
    assert row(admin, "LAB-PC-9").locator("td").nth(3).inner_text() == "never"

    pc9 = open_tab("LAB-PC-9")
    assert sign_in_with(pc9, live, "LAB-PC-9", first_password) == 200
    assert pc9.page.locator(".workstation").inner_text() == "LAB-PC-9"
    assert pc9.page.get_by_role("link", name="Admin", exact=True).count() == 0

    admin.go(f"{live.url}/admin/workstations")
    assert first_password not in page.content()
    # In the lab's time zone, like every time on the pages: "03 Dec 2026 08:05 CST".
    assert re.fullmatch(
        r"\d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d [A-Z]{3,4}",
        row(admin, "LAB-PC-9").locator("td").nth(3).inner_text(),
    )
    reset_row = row(admin, "LAB-PC-9")
    assert reset_row.locator("input[name=acting_as]").first.input_value() == STAFF  # remembered in this tab
    submit(admin, reset_row.get_by_role("button", name="Reset password of LAB-PC-9"))
    second_password = page.locator("#new-password code").inner_text()
    assert second_password != first_password

    pc9.page.get_by_role("button", name="Sign out").click()
    pc9.page.wait_for_url(f"{live.url}/login")
    pc9.audit()
    assert sign_in_with(pc9, live, "LAB-PC-9", first_password) == 401
    assert "don't match" in pc9.page.get_by_role("alert").inner_text()
    assert sign_in_with(pc9, live, "LAB-PC-9", second_password) == 200

    admin.go(f"{live.url}/admin/workstations")
    submit(admin, row(admin, "LAB-PC-9").get_by_role("button", name="Make admin"))
    assert "LAB-PC-9 is now an admin workstation." in flash(admin)
    assert row(admin, "LAB-PC-9").locator("td").nth(1).inner_text() == "yes"
    assert workstations.is_admin_workstation(live.fresh(), "LAB-PC-9")
    pc9.go(f"{live.url}/dashboard")
    assert pc9.page.locator(".workstation").inner_text() == "LAB-PC-9 (admin)"
    pc9.page.get_by_role("link", name="Admin", exact=True).click()
    pc9.page.wait_for_url(f"{live.url}/admin")
    pc9.audit()

    submit(admin, row(admin, ADMIN_PC).get_by_role("button", name="Remove admin"))
    assert "can't remove its own admin rights" in flash(admin)
    assert workstations.is_admin_workstation(live.fresh(), ADMIN_PC)
    expected = ["WorkstationAdminChanged", "SignInFailed", "WorkstationPasswordReset", "WorkstationAdded"]
    assert admin_log_actions(live)[:4] == expected


def test_a_computer_that_typed_wrong_passwords_waits_until_an_admin_lets_it_in(live, admin, open_tab):
    workstations.add_workstation(live.session, "LAB-PC-7", PASSWORD)
    desk = open_tab("desk")
    for _ in range(rules.FREE_TRIES):
        assert sign_in_with(desk, live, "LAB-PC-7", "not-the-password") == 401
    # Now the right password waits too, and the page says for how long and who can help.
    assert sign_in_with(desk, live, "LAB-PC-7", PASSWORD) == 429
    message = desk.page.get_by_role("alert").inner_text()
    assert "Too many wrong passwords" in message and "ask an admin" in message

    admin.go(f"{live.url}/admin/workstations")
    waiting = admin.page.get_by_role("region", name="Waiting after wrong passwords")
    assert f"LAB-PC-7 from 127.0.0.1: {rules.FREE_TRIES} wrong passwords" in waiting.inner_text()
    admin.screenshot("admin-workstations-waiting")
    act_as(admin, STAFF)
    submit(admin, waiting.get_by_role("button", name="Let LAB-PC-7 sign in again"))
    assert "LAB-PC-7 can be signed in to again" in flash(admin)
    assert admin.page.get_by_role("region", name="Waiting after wrong passwords").count() == 0
    assert sign_in_with(desk, live, "LAB-PC-7", PASSWORD) == 200
    assert admin_log_actions(live)[0] == "WorkstationSignInReleased"


def test_a_deactivated_workstation_is_signed_out_at_once_until_reactivated(live, admin, open_tab):
    desk = open_tab("LAB-PC-1")
    sign_in(desk, live)
    copied = desk.page.context.cookies()  # someone saved the session cookie
    stolen = open_tab("copied cookie")
    stolen.page.context.add_cookies(copied)
    stolen.go(f"{live.url}/dashboard")
    assert stolen.page.url == f"{live.url}/dashboard"  # a copy works while the session lasts

    page = admin.page
    admin.go(f"{live.url}/admin/workstations")
    assert row(admin, "LAB-PC-1").locator("td").nth(4).inner_text() == "active"
    mine = row(admin, ADMIN_PC)
    assert mine.get_by_role("button", name=f"Deactivate {ADMIN_PC}").count() == 0
    assert "from another admin workstation" in mine.inner_text()
    deactivate = (
        row(admin, "LAB-PC-1")
        .locator("form")
        .filter(has=page.get_by_role("button", name="Deactivate LAB-PC-1"))
    )
    act_as(admin, STAFF)
    admin.screenshot("admin-workstations-deactivate")
    submit(admin, deactivate.get_by_role("button", name="Deactivate LAB-PC-1"))
    assert "LAB-PC-1 is deactivated: it is signed out and can't sign in." in flash(admin)
    assert row(admin, "LAB-PC-1").locator("td").nth(4).inner_text() == "deactivated"

    for tab in (desk, stolen):
        tab.go(f"{live.url}/dashboard")
        assert tab.page.url.startswith(f"{live.url}/login"), tab.name
    assert sign_in_with(desk, live, "LAB-PC-1", PASSWORD) == 403
    assert "LAB-PC-1 has been deactivated" in desk.page.get_by_role("alert").inner_text()

    submit(admin, row(admin, "LAB-PC-1").get_by_role("button", name="Reactivate LAB-PC-1"))
    assert "LAB-PC-1 is active again" in flash(admin)
    assert sign_in_with(desk, live, "LAB-PC-1", PASSWORD) == 200
    stolen.go(f"{live.url}/dashboard")
    assert stolen.page.url.startswith(f"{live.url}/login")  # the old copy stays ended

    copied = desk.page.context.cookies()
    desk.page.get_by_role("button", name="Sign out").click()
    desk.page.wait_for_url(f"{live.url}/login")
    desk.audit()
    stolen.page.context.add_cookies(copied)
    stolen.go(f"{live.url}/dashboard")
    assert stolen.page.url.startswith(f"{live.url}/login")  # signing out ended the copy too
    assert admin_log_actions(live)[:2] == ["WorkstationReactivated", "WorkstationDeactivated"]


def test_the_workstations_page_fits_a_phone(live, admin, open_tab):
    phone = open_tab("admin-phone", PHONE)
    sign_in(phone, live, ADMIN_PC)
    phone.go(f"{live.url}/admin/workstations")
    width = phone.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the workstations page scrolls sideways at 375 px: {width}"
    button = phone.page.get_by_role("button", name="Deactivate LAB-PC-1")
    button.focus()
    assert phone.page.evaluate("() => document.activeElement.textContent") == "Deactivate LAB-PC-1"


# -- the lab catalog and the banner ------------------------------------------------------------


def test_catalog_minimum_charge_and_a_new_printer_reach_the_forms_and_bad_input_is_kept(
    live, admin, open_tab
):
    job = make_job(live.session, live.storage)
    page = admin.page
    admin.go(f"{live.url}/admin/catalog")
    limits = page.locator("#limits")
    act_as(admin, STAFF)
    limits.get_by_label("Minimum charge ($)").fill("7.5")
    submit(admin, page.get_by_role("button", name="Save the catalog"))
    assert page.url.endswith("/admin/catalog")
    assert "Catalog saved." in flash(admin)
    assert page.locator("#lim-minimum_charge").input_value() == "7.50"
    assert load_catalog(live.fresh()).minimum_charge == Decimal("7.50")

    student = open_tab("student")
    student.go(f"{live.url}/submit")
    assert "Every print costs at least $7.50." in student.page.locator(".notice").inner_text()
    assert (
        "at least $7.50" in student.page.get_by_label(re.compile("I understand")).locator("..").inner_text()
    )

    admin.go(f"{live.url}/jobs/{job.id}/act/approve")
    assert page.locator("#action-form #acting_as").input_value() == STAFF  # remembered in this tab
    assert "(at least $7.50)" in page.locator(".price-preview").inner_text()
    price = page.locator("#price-output")
    page.get_by_label("Weight (g)").fill("10")
    expect(price).to_have_text("$7.50")
    page.get_by_label("Weight (g)").fill("100")
    expect(price).to_have_text("$10.00")  # $0.10/g: above the minimum, the weight decides

    admin.go(f"{live.url}/admin/catalog")
    limits.get_by_label("Minimum charge ($)").fill("lots")
    response = submit(admin, page.get_by_role("button", name="Save the catalog"))
    assert response.status == 422
    summary = page.get_by_role("alert")
    assert "Not saved" in summary.inner_text()
    assert page.locator("#minimum_charge-error").is_visible()
    assert page.locator("#lim-minimum_charge").input_value() == "lots"
    admin.screenshot("admin-catalog-invalid")
    assert load_catalog(live.fresh()).minimum_charge == Decimal("7.50")

    limits.get_by_label("Minimum charge ($)").fill("7.50")
    printers = page.locator("#printers")
    new_row = printers.locator("tbody tr").last
    new_row.locator("input[name=printer-name]").fill("Bambu X1C")
    new_row.locator("select").select_option("Filament")
    for axis in "xyz":
        new_row.locator(f"input[name=printer-{axis}]").fill("256")
    submit(admin, page.get_by_role("button", name="Save the catalog"))
    assert "Catalog saved." in flash(admin)
    assert "Bambu X1C" in [p.name for p in load_catalog(live.fresh()).printers_for("Filament")]

    student.go(f"{live.url}/submit")
    form = student.page
    form.get_by_role("radio", name=re.compile("^Filament")).check()
    form.get_by_label("Printer").select_option("Bambu X1C")
    assert form.locator("#printer option:checked").inner_text() == "Bambu X1C (256 × 256 × 256 mm)"
    form.get_by_role("radio", name=re.compile("^Resin")).check()
    assert form.locator("#printer option[value='Bambu X1C']").evaluate("o => o.disabled && o.hidden")
    assert form.get_by_label("Printer").input_value() == ""


def test_banner_is_set_seen_on_the_student_form_and_dashboard_then_cleared(live, admin, open_tab):
    page = admin.page
    admin.go(f"{live.url}/admin")
    page.get_by_label("Acting as").select_option(STAFF)
    page.get_by_label("Message (leave empty for none)").fill("Closed Friday for maintenance")
    submit(admin, page.get_by_role("button", name="Save banner"))
    assert "Banner saved." in flash(admin)
    assert page.get_by_role("note").inner_text() == "Closed Friday for maintenance"
    admin.screenshot("admin-overview-banner")

    student = open_tab("student")
    student.go(f"{live.url}/submit")
    assert student.page.locator(".site-banner").inner_text() == "Closed Friday for maintenance"
    admin.go(f"{live.url}/dashboard")
    assert page.locator(".site-banner").inner_text() == "Closed Friday for maintenance"

    admin.go(f"{live.url}/admin")
    assert (
        page.get_by_label("Message (leave empty for none)").input_value() == "Closed Friday for maintenance"
    )
    page.get_by_label("Message (leave empty for none)").fill("")
    submit(admin, page.get_by_role("button", name="Save banner"))
    assert "Banner removed." in flash(admin)
    student.go(f"{live.url}/submit")
    assert student.page.locator(".site-banner").count() == 0
    admin.go(f"{live.url}/dashboard")
    assert page.locator(".site-banner").count() == 0


# -- one job: overrides and file deletion ------------------------------------------------------


def override(tab: Tab, kind: str, reason: str, target: str | None = None) -> Any:
    page = tab.page
    if not page.locator("#acting-as-choice").input_value():
        act_as(tab, STAFF)
    page.get_by_role("radio", name=kind).check()
    if target:
        page.get_by_label("New status (for “Change status”)").select_option(label=target)
    page.get_by_label("Reason (required)").fill(reason)
    return submit(tab, page.get_by_role("button", name="Apply override"))


def test_overrides_change_status_force_confirm_and_break_a_lock(live, admin, open_tab):
    page = admin.page
    completed = make_job(live.session, live.storage, Status.COMPLETED, student_email="c@example.edu")
    open_job(admin, live, completed.id)
    page.locator("details.more-actions summary").click()  # overrides wait under "More"
    page.get_by_role("link", name="Admin override…").click()
    page.wait_for_url(f"{live.url}/admin/jobs/{completed.id}/override")
    admin.audit()
    assert "Now Completed" in page.locator("main").inner_text()
    override(admin, "Change status", "The first print warped; printing again", target="Printing")
    assert page.url == f"{live.url}/jobs/{completed.id}"
    assert "Change status: done." in flash(admin)
    assert page.locator("h1 .status-pill").inner_text() == "Printing"
    assert "The first print warped" in page.locator(".timeline li").last.inner_text()
    moved = live.fresh().get(Job, completed.id)
    assert moved.status == "PRINTING" and moved.file_path.startswith("Printing/")
    assert live.storage.resolve(moved.file_path).exists()

    pending = make_job(live.session, live.storage, Status.PENDING, student_email="p@example.edu")
    admin.go(f"{live.url}/admin/jobs/{pending.id}/override")
    override(admin, "Force confirm (the student agreed in person)", "Agreed at the desk")
    assert "Force confirm (the student agreed in person): done." in flash(admin)
    assert page.locator("h1 .status-pill").inner_text() == "Ready to Print"
    assert live.fresh().get(Job, pending.id).status == "READYTOPRINT"
    assert [e.details["override"] for e in job_events(live, pending.id, "AdminOverride")] == ["force_confirm"]

    # A lock held by a dialog open on another computer: broken, then someone else's dialog is the
    # one that holds the job, and the first dialog's Approve is refused.
    uploaded = make_job(live.session, live.storage, student_email="u@example.edu")
    desk = open_tab("LAB-PC-1")
    sign_in(desk, live)
    desk.go(f"{live.url}/jobs/{uploaded.id}/act/approve")
    choose_acting_as(desk, OTHER_STAFF)
    open_job(admin, live, uploaded.id)
    assert f"Being edited by {OTHER_STAFF}" in page.locator(".banner.lock").inner_text()
    admin.go(f"{live.url}/admin/jobs/{uploaded.id}/override")
    assert f"locked by {OTHER_STAFF}" in page.locator("main").inner_text()
    admin.screenshot("admin-override")
    override(admin, "Break the lock", "Sam left the dialog open and went home")
    assert "Break the lock: done." in flash(admin)
    assert page.locator(".banner.lock").count() == 0
    assert live.fresh().get(Job, uploaded.id).locked_by is None
    broken = job_events(live, uploaded.id, "AdminOverride")
    assert [(e.details["override"], e.details["was_locked_by"]) for e in broken] == [
        ("break_lock", OTHER_STAFF)
    ]

    with page.expect_response(lambda r: r.url.endswith("/lock") and r.status == 200):
        admin.go(f"{live.url}/jobs/{uploaded.id}/act/approve")  # Acting as remembered: locks at once
    assert page.locator("#action-submit").is_enabled()
    desk.page.get_by_label("Weight (g)").fill("20")
    desk.page.get_by_label(re.compile("^Print time")).fill("1")
    refused = submit(desk, desk.page.locator("#action-submit"))
    assert refused.status == 409
    assert STAFF in desk.page.get_by_role("alert").inner_text()
    assert live.fresh().get(Job, uploaded.id).status == "UPLOADED"
    assert job_events(live, uploaded.id, "JobApproved") == []


def test_an_override_from_a_page_the_student_confirmed_behind_is_refused_on_a_phone(live, admin, open_tab):
    """The admin's page still shows Pending when the student confirms: the override changes nothing."""
    pending = make_job(live.session, live.storage, Status.PENDING, student_email="race@example.edu")
    phone = open_tab("admin-phone", PHONE)
    sign_in(phone, live, ADMIN_PC)
    phone.go(f"{live.url}/admin/jobs/{pending.id}/override")
    width = phone.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the override page scrolls sideways at 375 px: {width}"
    student = open_tab("student", PHONE)
    student.go(live.quote_link(pending.id))
    submit(student, student.page.get_by_role("button", name=re.compile("^Confirm")))
    assert live.fresh().get(Job, pending.id).status == "READYTOPRINT"

    refused = override(phone, "Change status", "Too big for our printers", target="Rejected")
    assert refused.status == 409
    alert = phone.page.locator("#conflict").inner_text()
    assert "changed by the student at" in alert and "is now Ready to Print" in alert
    assert "Now Ready to Print" in phone.page.locator("main").inner_text()  # the page shows it as it is
    job = live.fresh().get(Job, pending.id)
    assert job.status == "READYTOPRINT" and job_events(live, pending.id, "AdminOverride") == []
    emails = live.fresh().scalars(select(OutboxMessage.template).where(OutboxMessage.job_id == pending.id))
    assert "rejected" not in list(emails)


def test_deleting_files_from_a_page_the_job_moved_on_from_is_refused(live, admin):
    page = admin.page
    job = make_job(live.session, live.storage)
    admin.go(f"{live.url}/admin/jobs/{job.id}/delete-files")
    workflow.approve(
        live.session, live.storage, job.id, actor=actor(OTHER_STAFF, "LAB-PC-2"), weight_g=12, time_hours=1
    )
    page.get_by_label("Acting as").select_option(STAFF)
    page.get_by_label("Reason (required)").fill("The student asked us to remove the model")
    refused = submit(admin, page.get_by_role("button", name="Delete 2 files"))
    assert refused.status == 409
    assert f"changed by {OTHER_STAFF}" in page.locator("#conflict").inner_text()
    moved = live.fresh().get(Job, job.id)
    assert sorted(page.locator("main li code").all_inner_texts()) == sorted(
        [moved.file_path, moved.metadata_path]
    )
    assert all((live.storage.root / name).exists() for name in (moved.file_path, moved.metadata_path))
    assert job_events(live, job.id, "FileDeleted") == []


def test_deleting_a_jobs_files_names_them_first_and_leaves_the_job_without_files(live, admin):
    page = admin.page
    job = make_job(live.session, live.storage, Status.REJECTED)
    names = sorted([job.file_path, job.metadata_path])
    open_job(admin, live, job.id)
    assert page.locator("table.files tbody tr").count() >= 1
    page.locator("details.more-actions summary").click()
    page.get_by_role("link", name="Delete files…").click()
    page.wait_for_url(f"{live.url}/admin/jobs/{job.id}/delete-files")
    admin.audit()
    assert sorted(page.locator("main li code").all_inner_texts()) == names
    admin.screenshot("admin-delete-files")
    page.get_by_label("Acting as").select_option(STAFF)
    page.get_by_label("Reason (required)").fill("The student asked us to remove the model")
    submit(admin, page.get_by_role("button", name="Delete 2 files"))
    assert page.url == f"{live.url}/jobs/{job.id}"
    assert "Deleted 2 file(s) of this job." in flash(admin)
    assert "No files on the lab's storage for this job." in page.locator("main").inner_text()
    assert not any((live.storage.root / name).exists() for name in names)
    assert len(job_events(live, job.id, "FileDeleted")) == 1
    admin.go(f"{live.url}/admin/jobs/{job.id}/delete-files")
    assert "This job has no files on the lab's storage." in page.locator("main").inner_text()


# -- health, the log, mail, retention, integrity -----------------------------------------------


def test_health_shows_each_component_version_and_storage_root(live, admin):
    page = admin.page
    admin.go(f"{live.url}/admin/health")
    states = {
        r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text()
        for r in page.locator("tbody tr").all()
    }
    assert states == {
        "database": "ok",
        "outbox": "ok",
        "webhooks": "ok",
        "worker": "ok",
        "storage": "ok",
        "rate limits": "ok",
        "failed emails": "ok",
    }
    assert "backend: sqlite" in row(admin, "database").inner_text()
    assert "counters: this process" in row(admin, "rate limits").inner_text()
    assert "waiting: 0 · failed: 0" in row(admin, "webhooks").inner_text()
    assert re.search(r"free space: [\d.]+ GB · disk size: [\d.]+ GB", row(admin, "storage").inner_text())
    facts = page.locator("dl.summary").inner_text()
    assert __version__ in facts and str(live.storage.root) in facts
    admin.screenshot("admin-health")


def test_admin_log_lists_what_was_done_newest_first_with_who_and_where(live, admin):
    page = admin.page
    admin.go(f"{live.url}/admin/staff")
    act_as(admin, STAFF)
    page.get_by_label("New staff member's full name").fill(NEWCOMER)
    submit(admin, page.get_by_role("button", name="Add", exact=True))
    admin.go(f"{live.url}/admin/catalog")
    reasons = page.locator("#reasons")
    reasons.get_by_label("One per line").fill("Walls too thin\nToo big for our printers")
    submit(admin, page.get_by_role("button", name="Save the catalog"))
    admin.go(f"{live.url}/admin")
    page.get_by_label("Message (leave empty for none)").fill("Back on Monday")
    submit(admin, page.get_by_role("button", name="Save banner"))

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Admin log").click()
    page.wait_for_url(f"{live.url}/admin/log")
    admin.audit()
    rows = page.locator("tbody tr").all()
    what = [r.locator("td").nth(1).inner_text() for r in rows[:3]]
    assert what == [
        f"Banner set to “Back on Monday” by {STAFF}",
        f"Catalog changed by {STAFF}: rejection reasons",
        f"Staff member {NEWCOMER} added by {STAFF}",
    ]
    for entry in rows[:3]:
        assert entry.locator("td").nth(2).inner_text() == f"at {ADMIN_PC}"
        assert re.search(r"\d{2}:\d{2} (CST|CDT)", entry.locator("td").nth(0).inner_text())  # the lab's zone
    admin.screenshot("admin-log")


def test_mail_page_lists_the_mail_folder_and_a_message_opens(live, admin):
    page = admin.page
    make_job(live.session, live.storage, Status.PENDING, student_email="mail.reader@example.edu")
    assert len(wait_for_mail(live, 2)) == 2  # the receipt and the quote

    admin.go(f"{live.url}/admin")
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Mail").click()
    page.wait_for_url(f"{live.url}/admin/mail")
    admin.audit()
    assert page.locator("#count-failed").inner_text() == "0"
    folder = page.locator("#mail-folder")
    assert "2 message(s)" in folder.locator("caption").inner_text()
    assert folder.locator("tbody tr").filter(has_text="mail.reader@example.edu").count() == 2
    sent = page.locator("section[aria-labelledby=emails-heading] tbody").inner_text()
    assert "Receipt email" in sent and "Quote email" in sent
    admin.screenshot("admin-mail")

    quote_link = folder.get_by_role("link", name=re.compile("quote", re.IGNORECASE))
    subject = quote_link.inner_text()
    quote_link.click()
    page.wait_for_url(re.compile(r"/admin/mail/folder/[^/]+$"))
    admin.audit()
    assert page.locator("h1").inner_text() == subject
    body = page.locator("#mail-body")
    link = body.locator("a[href^='http://printlab.test/confirm/']")
    assert link.count() == 1 and link.get_attribute("href") == link.inner_text()
    html = page.get_by_role("link", name="Show the HTML version")
    answer = page.request.get(f"{live.url}{html.get_attribute('href')}")
    assert answer.status == 200 and "default-src 'none'" in answer.headers["content-security-policy"]
    assert link.inner_text() in answer.text()


def old_job(live: Live, status: Status, days: int, email: str) -> Job:
    """A job that reached `status` `days` ago, through the real workflow."""
    when = utcnow() - timedelta(days=days)
    session, storage, who = live.session, live.storage, actor()
    job = submit_job(session, storage, now=when, student_email=email)
    if status == Status.REJECTED:
        workflow.reject(session, storage, job.id, actor=who, reasons=["Walls too thin"], now=when)
    else:
        workflow.approve(session, storage, job.id, actor=who, weight_g=42, time_hours=2, now=when)
        workflow.confirm(session, storage, quote_token(session, job.id), now=when)
        workflow.start_printing(session, storage, job.id, actor=who, now=when)
        workflow.complete(session, storage, job.id, actor=who, now=when)
        workflow.record_pickup(
            session,
            storage,
            job.id,
            actor=who,
            method="CARD",
            weighed_g=40,
            payment_reference="R-9",
            now=when,
        )
    return live.fresh().get(Job, job.id)


def test_retention_shows_how_many_jobs_it_would_archive_before_archiving_them(live, admin):
    # The worker archives due jobs by itself once a minute; keep it from racing the page.
    sweeper = live.app.extensions["printlab.worker"].periodic[0]
    sweeper.interval_seconds = 3600
    picked_up = old_job(live, Status.PAIDPICKEDUP, 120, "old.pickup@example.edu")
    rejected = old_job(live, Status.REJECTED, 100, "old.reject@example.edu")
    recent = old_job(live, Status.REJECTED, 10, "recent@example.edu")
    page = admin.page
    admin.go(f"{live.url}/admin/retention")
    assert page.locator("#due-paidpickedup").inner_text() == "1"
    assert page.locator("#due-rejected").inner_text() == "1"
    assert page.locator("#due-total").inner_text() == "2"
    admin.screenshot("admin-retention")
    page.get_by_label("Acting as").select_option(STAFF)
    submit(admin, page.get_by_role("button", name="Archive 2 job(s) now"))
    assert "Archived 2 job(s)." in flash(admin)
    assert page.locator("#due-total").inner_text() == "0"
    assert "Nothing to archive." in page.locator("main").inner_text()
    session = live.fresh()
    for job in (picked_up, rejected):
        archived = session.get(Job, job.id)
        assert archived.status == "ARCHIVED" and archived.file_path.startswith("Archived/")
        assert live.storage.resolve(archived.file_path).exists()
    assert session.get(Job, recent.id).status == "REJECTED"


def test_integrity_page_finds_a_file_in_the_wrong_folder_repairs_it_and_is_clean(live, admin):
    job = make_job(live.session, live.storage, Status.PENDING)
    right = live.storage.root / job.file_path
    wrong = live.storage.root / "Printing" / PurePosixPath(job.file_path).name
    shutil.move(right, wrong)
    page = admin.page
    admin.go(f"{live.url}/admin/integrity")
    assert int(page.locator("#finding-count").inner_text()) >= 1
    missing = page.locator("section").filter(
        has=page.get_by_role("heading", name=re.compile("file is missing"))
    )
    assert job.file_path in missing.inner_text()
    assert f"Put back the copy at Printing/{wrong.name}" in missing.inner_text()
    admin.screenshot("admin-integrity-findings")

    page.get_by_label("Acting as").select_option(STAFF)
    submit(admin, page.get_by_role("button", name=re.compile(r"^Repair all")))
    outcomes = page.locator("#outcomes tbody tr")
    assert outcomes.count() >= 1
    assert set(outcomes.evaluate_all("rows => rows.map(r => r.dataset.result)")) <= {"done", "nothing to do"}
    assert page.locator("#clean").is_visible()
    assert page.locator("#finding-count").inner_text() == "0"
    assert right.exists() and not wrong.exists()
    overrides = [e.details.get("override") for e in job_events(live, job.id, "AdminOverride")]
    assert overrides and all(o for o in overrides)

    admin.go(f"{live.url}/admin/integrity")
    assert page.locator("#clean").inner_text().startswith("No problems found")


# -- who may enter, keyboard, accessibility ----------------------------------------------------


def admin_urls(live: Live, job_id: str, mail_name: str) -> list[str]:
    return [
        f"{live.url}{path}"
        for path in (
            "/admin",
            "/admin/staff",
            "/admin/workstations",
            "/admin/catalog",
            "/admin/health",
            "/admin/log",
            "/admin/mail",
            f"/admin/mail/folder/{mail_name}",
            "/admin/retention",
            "/admin/integrity",
            f"/admin/jobs/{job_id}/override",
            f"/admin/jobs/{job_id}/delete-files",
        )
    ]


def test_a_non_admin_workstation_is_refused_on_every_admin_page(live, open_tab):
    job = make_job(live.session, live.storage)
    mail_name = wait_for_mail(live, 1)[0]
    desk = open_tab("LAB-PC-1")
    sign_in(desk, live)
    assert desk.page.get_by_role("link", name="Admin", exact=True).count() == 0
    assert desk.page.locator(".workstation").inner_text() == "LAB-PC-1"
    for url in admin_urls(live, job.id, mail_name):
        response = desk.go(url)
        assert response.status == 403, url
        assert desk.page.locator("h1").inner_text() == "Not allowed", url
        assert "This page is for admin workstations" in desk.page.locator("main").inner_text(), url
        assert desk.page.get_by_role("link", name="Admin", exact=True).count() == 0, url
    desk.screenshot("admin-refused")


def test_adding_a_staff_member_by_keyboard_alone(live, admin):
    page = admin.page
    admin.go(f"{live.url}/admin/staff")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Shift+Tab")  # back to the header, where "Acting as" is chosen for the tab
    for _ in range(15):
        if page.evaluate("document.activeElement.id") == "acting-as-choice":
            break
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "acting-as-choice"
    page.keyboard.type("Alex")  # typing picks the option, as on a closed select
    assert page.locator("#acting_as-add").input_value() == STAFF
    for _ in range(30):  # past the header's links and the admin pages' navigation
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "name":
            break
    assert page.evaluate("document.activeElement.id") == "name"
    page.keyboard.type("Kim Keyboard")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    admin.audit()
    assert "Added Kim Keyboard." in flash(admin)
    assert live.fresh().get(Staff, "Kim Keyboard").is_active


def test_every_admin_page_passes_the_accessibility_audit(live, admin):
    """Labels, alt text, one h1, lang="en" and unique ids on each admin page, also in its other states."""
    job = make_job(live.session, live.storage, Status.PENDING)
    mail_name = wait_for_mail(live, 1)[0]
    # A file of no job, so that the Integrity page shows its findings and its Repair form.
    shutil.copy(live.storage.root / job.file_path, live.storage.root / "Printing" / "stray.stl")
    page = admin.page
    for url in admin_urls(live, job.id, mail_name):
        assert admin.go(url).status == 200, url
        assert page.locator("h1").count() == 1, url
        if url.endswith("/admin/integrity"):
            assert page.get_by_role("button", name="Repair", exact=True).count() >= 1

    admin.go(f"{live.url}/admin/workstations")
    act_as(admin, STAFF)
    page.get_by_label("New workstation name").fill("LAB-PC-5")
    submit(admin, page.get_by_role("button", name="Add workstation"))
    assert page.locator("#new-password code").count() == 1
    admin.go(f"{live.url}/admin/staff")
    page.get_by_label("New staff member's full name").fill(STAFF)
    assert submit(admin, page.get_by_role("button", name="Add", exact=True)).status == 422  # already there
    admin.go(f"{live.url}/admin/catalog")
    methods = page.locator("#methods")
    methods.get_by_label("Price per gram ($)").first.fill("-1")
    assert submit(admin, page.get_by_role("button", name="Save the catalog")).status == 422

    # Sent "Acting as" someone deactivated at another admin workstation since the page was shown:
    # the refusal is said at the form that was sent (and in the catalog's summary), not at every form.
    cases = [
        ("Pat Early", "/admin/staff", ("New staff member's full name", "Kim Late"), "Add", 1),
        ("Pat Middle", "/admin/workstations", ("New workstation name", "KIOSK-7"), "Add workstation", 1),
        ("Pat Late", "/admin/catalog", None, "Save the catalog", 2),
    ]
    for person, url, field, button, times in cases:
        make_staff(live.session, person)
        admin.go(f"{live.url}{url}")
        sent = page.locator("#catalog-form" if field is None else "form:has(#acting_as-add)")
        act_as(admin, person)
        if field:
            sent.get_by_label(field[0]).fill(field[1])
        staff_service.set_active(live.session, person, False, by=actor(STAFF, ADMIN_PC))
        assert submit(admin, sent.get_by_role("button", name=button, exact=True)).status == 422, url
        assert page.get_by_text(f"{person} is not on the active staff list.").count() == times, url
        if person == "Pat Early":
            admin.screenshot("admin-staff-refused")
    assert admin.findings == {}, admin.findings


# -- API tokens --------------------------------------------------------------------------------


def test_an_api_token_is_made_shown_once_used_and_revoked_on_a_phone(live, admin, open_tab):
    import json
    import urllib.error
    import urllib.request

    from printlab.models import ApiToken

    phone = open_tab("admin-phone", PHONE)
    sign_in(phone, live, ADMIN_PC)
    phone.go(f"{live.url}/admin/api-tokens")
    page = phone.page
    act_as(phone, STAFF)
    page.get_by_label("What it is for").fill("Lobby screen")
    page.get_by_label("Acts as").select_option(STAFF)
    page.get_by_label("Read only").check()
    submit(phone, page.get_by_role("button", name="Make token"))
    secret = page.locator("#new-token-value").inner_text()
    assert secret.startswith("plt_")
    assert "shown only once" in page.locator("#new-token").inner_text()
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the API tokens page scrolls sideways at 375 px: {width}"
    live.session.rollback()
    stored = live.session.scalars(select(ApiToken)).one()
    assert stored.token_hash != secret and secret not in stored.prefix + stored.name

    # The token works, and its use shows on the page; the token itself never shows again.
    request = urllib.request.Request(f"{live.url}/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.load(answer)["status"] == "UPLOADED"
    phone.go(f"{live.url}/admin/api-tokens")
    assert secret not in page.content()
    listed = row(phone, f"Lobby screen ({secret[:8]}…)")
    assert "never" not in listed.locator("td[data-label='Last used']").inner_text()
    assert listed.locator("td[data-label='May']").inner_text().startswith("Read only")

    submit(phone, page.get_by_role("button", name="Revoke Lobby screen"))
    assert "Lobby screen” revoked" in flash(phone)
    assert (
        "revoked"
        in row(phone, f"Lobby screen ({secret[:8]}…)").locator("td[data-label='State']").inner_text()
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    assert refused.value.headers["Content-Type"] == "application/problem+json"
    refused.value.close()
    live.session.rollback()  # a fresh snapshot: the server wrote since
    log = live.session.scalars(select(AdminLogEntry.action).order_by(AdminLogEntry.id)).all()
    assert log[-2:] == ["ApiTokenCreated", "ApiTokenRevoked"]


def test_the_api_token_form_keeps_what_was_typed_and_names_each_problem(live, admin):
    page = admin.page
    admin.go(f"{live.url}/admin/api-tokens")
    act_as(admin, STAFF)
    page.get_by_label("What it is for").fill("Finance sync")
    page.get_by_label("Acts as").select_option(STAFF)
    page.get_by_label("Days until it expires").fill("999")
    page.get_by_label("Requests a minute").fill("0")
    answer = submit(admin, page.get_by_role("button", name="Make token"))
    assert answer.status == 422
    summary = page.locator("#error-summary").inner_text()
    assert "from 1 to 366" in summary and "from 1 to 6000" in summary
    assert page.get_by_label("What it is for").input_value() == "Finance sync"
    assert page.locator("#new-token").count() == 0
