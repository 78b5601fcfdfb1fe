"""The printer fleet end to end in Chromium, with a real OctoPrint and its Virtual Printer and the app's own
worker: an admin adds the printer and tests its connection; staff start a job's print from PrintLab and
watch it on the board while the student watches their status page; the job completes by itself and the
ready-for-pickup email is written. Then a second print, cancelled on the printer: the dashboard flags it
and staff confirm "Print failed" with the printer's reason."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage
from printlab.services.jobs import job_desk
from printlab.services.lab import workstations

from ..factories import STAFF, actor, make_job
from ..servers import OctoPrintServer
from ..test_printing import gcode
from .conftest import PASSWORD, Live, Tab, act_as, sign_in
from .test_lifecycle import open_action, send_action

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("octoprint")]

ADMIN_PC = "ADMIN-PC"
DESKTOP = {"width": 1366, "height": 768}


def ready_job(live: Live, moves: int, student: str) -> Job:
    """A confirmed job for the Prusa MK4S with a PrusaSlicer G-code for it attached (as staff do)."""
    job = make_job(
        live.session, live.storage, Status.READYTOPRINT, printer="Prusa MK4S", student_name=student
    )
    job_desk.attach_file(
        live.session, live.storage, job.id, io.BytesIO(gcode(moves)), "sliced.gcode", actor=actor(),
        max_bytes=10**8,
    )  # fmt: skip
    return job


def status_of(live: Live, job_id: str) -> str:
    live.session.rollback()
    return live.session.get(Job, job_id, populate_existing=True).status  # type: ignore[union-attr]


def start_on_the_printer(tab: Tab, live: Live, job: Job) -> None:
    tab.go(f"{live.url}/jobs/{job.id}")
    open_action(tab, "Start printing")
    tab.page.get_by_label("Printer").select_option("Prusa MK4S")
    with tab.page.expect_navigation():
        tab.page.locator("#action-submit").click()
    tab.audit()
    expect(tab.page.locator(".flashes")).to_contain_text("Sending the file to the Prusa MK4S")


def test_a_print_sent_from_printlab_finishes_by_itself_and_a_cancelled_one_is_confirmed_failed(
    live: Live, open_tab: Any, octoprint: OctoPrintServer
) -> None:
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    staff = open_tab("admin", DESKTOP)
    page = staff.page
    sign_in(staff, live, ADMIN_PC)

    # The admin adds the printer and tests its connection.
    staff.go(f"{live.url}/admin/printers")
    act_as(staff)
    form = page.locator("#add-printer-form")
    form.get_by_label("Printer").select_option("Prusa MK4S")
    form.get_by_label("Connection").select_option(label="OctoPrint")
    form.get_by_label("Address").fill(octoprint.url)
    form.get_by_label("API key").fill(octoprint.api_key)
    with page.expect_navigation():
        form.get_by_role("button", name="Add printer").click()
    staff.audit()
    with page.expect_navigation():
        page.get_by_role("button", name="Test connection of Prusa MK4S").click()
    staff.audit()
    expect(page.locator("#connection-test")).to_contain_text("connection works")

    # Staff start a job's print from PrintLab: the worker sends the file and OctoPrint prints it.
    job = ready_job(live, moves=2500, student="Priya Printing")
    start_on_the_printer(staff, live, job)
    deadline = time.monotonic() + 60
    while status_of(live, job.id) != Status.PRINTING.value and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status_of(live, job.id) == Status.PRINTING.value

    # The board shows the print in the printer's lane; the student's page says it is printing.
    staff.go(f"{live.url}/printers")
    lane = page.locator("section.lane", has_text="Prusa MK4S")
    expect(lane.locator(".state-badge")).to_have_text("Printing", timeout=30_000)
    expect(lane).to_contain_text(job.display_name)
    expect(lane).to_contain_text(f"Started by {STAFF}")
    expect(lane.locator("progress")).to_have_count(1)
    student = open_tab("student", {"width": 375, "height": 812})
    student.go(live.status_url(job.id))
    expect(student.page.locator("h1")).to_contain_text("Printing")

    # The printer reports the print finished: the job completes by itself, and the email is written.
    deadline = time.monotonic() + 120
    while status_of(live, job.id) != Status.COMPLETED.value and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status_of(live, job.id) == Status.COMPLETED.value
    staff.go(f"{live.url}/jobs/{job.id}")
    expect(page.locator(".status-pill")).to_have_text("Completed")
    expect(page.locator("main")).to_contain_text("reported the print finished")
    emails = live.session.scalars(select(OutboxMessage.template).where(OutboxMessage.job_id == job.id)).all()
    assert "ready_for_pickup" in emails, emails
    student.go(live.status_url(job.id))
    expect(student.page.locator("h1")).to_contain_text(re.compile("Ready|Completed|pickup", re.I))

    # A second print, cancelled on the printer: flagged on the dashboard, confirmed "Print failed".
    second = ready_job(live, moves=6000, student="Sam Stopped")
    start_on_the_printer(staff, live, second)
    deadline = time.monotonic() + 60
    while status_of(live, second.id) != Status.PRINTING.value and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    octoprint.call("POST", "/api/job", {"command": "cancel"})
    staff.go(f"{live.url}/dashboard?status=PRINTING")
    card = page.locator(".card", has_text="Sam Stopped")
    expect(card.locator(".flag-stopped")).to_contain_text("Printer stopped", timeout=60_000)
    staff.go(f"{live.url}/jobs/{second.id}")
    open_action(staff, "Print failed")
    expect(page.locator("#action-form textarea")).to_have_value(re.compile("The Prusa MK4S stopped"))
    send_action(staff, "Print failed")
    assert status_of(live, second.id) == Status.READYTOPRINT.value
