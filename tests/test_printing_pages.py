"""The staff pages of printing on a connected printer, on both databases: "Start printing" sends to the
printer with its own message or refuses under the printer field, the job page says where the print is,
a print the printer stopped is flagged on the Printing card and prefilled in "Print failed"."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Job, JobMilestone, OutboxMessage, PrintRun
from printlab.services.jobs import job_desk, printing, workflow
from printlab.services.printers import polling

from . import test_staff_pages as staff_pages
from .factories import STAFF, actor, make_job
from .fleet_factories import connect_octoprint
from .servers import OctoPrintServer
from .test_printing import SECRET, gcode
from .test_staff_pages import act, field_errors, text

pytestmark = pytest.mark.xdist_group("octoprint")

# The staff pages' fixtures: two staff members, a workstation, a client signed in on it.
staffed = staff_pages.staffed
staff_client = staff_pages.staff_client


@pytest.fixture
def connected(session, staffed, octoprint: OctoPrintServer):  # type: ignore[no-untyped-def]
    """The Prusa MK4S connected through the shared OctoPrint, polled once (idle)."""
    printer = connect_octoprint(session, octoprint.url, octoprint.api_key, actor(workstation="ADMIN-PC"))
    connectors = polling.Connectors(SECRET)
    for target in polling.claim_due(session):
        polling.poll_printer(session, target, connectors)
    connectors.close()
    return printer


def ready_job(session, storage, content: bytes | None) -> Job:  # type: ignore[no-untyped-def]
    job = make_job(session, storage, Status.READYTOPRINT)
    if content is not None:
        job_desk.attach_file(
            session, storage, job.id, io.BytesIO(content), "s.gcode", actor=actor(), max_bytes=10**8
        )
    return job


def test_start_printing_on_a_connected_printer_says_the_file_is_on_its_way(
    session, storage, staff_client, connected
):
    job = ready_job(session, storage, gcode(moves=10))
    response = act(staff_client, job.id, "start_printing", printer="Prusa MK4S", acting_as=STAFF)
    assert response.status_code == 303
    page = text(staff_client.get(f"/jobs/{job.id}"))
    assert "Sending the file to the Prusa MK4S: the job moves to Printing when the printer starts it." in page
    assert re.search(r'id="print-run"[^>]*>Being sent to the Prusa MK4S \(asked by Alex Rivera\)', page)
    session.rollback()
    assert session.get(Job, job.id).status == Status.READYTOPRINT.value


def test_a_refusal_is_shown_under_the_printer_field_and_nothing_changes(
    session, storage, staff_client, connected
):
    job = ready_job(session, storage, None)
    response = act(staff_client, job.id, "start_printing", printer="Prusa MK4S", acting_as=STAFF)
    assert response.status_code == 422
    assert field_errors(response)["printer"].startswith(
        "This job has no sliced file the Prusa MK4S can print"
    )
    session.rollback()
    assert session.scalars(select(PrintRun).where(PrintRun.job_id == job.id)).first() is None


def test_a_print_the_printer_stopped_is_flagged_and_print_failed_starts_from_its_reason(
    session, storage, staff_client, connected
):
    job = ready_job(session, storage, gcode(moves=10))
    run = printing.request_print(session, storage, job.id, actor=actor(), printer="Prusa MK4S")
    # The worker's start, as send_run records it once the printer took the file.
    workflow.start_printing(session, storage, job.id, actor=actor(), printer="Prusa MK4S", sent_run=run.id)
    assert printing.stop_run(session, run.id, "Thermal runaway on the nozzle.", now=utcnow())
    board = text(staff_client.get("/dashboard?status=PRINTING"))
    assert "Printer stopped: Thermal runaway on the nozzle." in board
    page = text(staff_client.get(f"/jobs/{job.id}"))
    assert "Printer stopped: Thermal runaway on the nozzle. Check the Prusa MK4S" in page
    assert "The Prusa MK4S stopped the print (started from PrintLab by Alex Rivera) — Thermal runaway" in page
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/print_failed"))
    assert ">The Prusa MK4S stopped: Thermal runaway on the nozzle.</textarea>" in dialog
    response = act(
        staff_client,
        job.id,
        "print_failed",
        acting_as=STAFF,
        reason="The Prusa MK4S stopped: Thermal runaway",
    )
    assert response.status_code == 303
    session.rollback()
    assert session.get(PrintRun, run.id, populate_existing=True).state == "FAILED"
    assert session.get(Job, job.id, populate_existing=True).status == Status.READYTOPRINT.value


def test_the_printers_figures_are_kept_for_the_reports_and_a_revert_forgets_them(session, storage, connected):
    job = ready_job(session, storage, gcode(moves=10))
    run = printing.request_print(session, storage, job.id, actor=actor(), printer="Prusa MK4S")
    workflow.start_printing(session, storage, job.id, actor=actor(), printer="Prusa MK4S", sent_run=run.id)
    report = workflow.PrinterReport(seconds_printed=5400, filament_mm=1000.0)  # as Klipper reports them
    workflow.complete_from_printer(session, storage, job.id, run_id=run.id, report=report)
    session.rollback()
    finished = session.get(PrintRun, run.id, populate_existing=True)
    assert (finished.state, finished.seconds_printed, finished.filament_g) == ("FINISHED", 5400, 3.0)  # PLA
    milestone = session.get(JobMilestone, job.id, populate_existing=True)
    assert (milestone.printed_hours, milestone.printed_g) == (1.5, 3.0)
    outbox = session.scalars(select(OutboxMessage.template).where(OutboxMessage.job_id == job.id)).all()
    assert outbox[-1] == "ready_for_pickup"
    workflow.revert(session, storage, job.id, actor=actor(), reason="Completed by mistake")
    session.rollback()
    milestone = session.get(JobMilestone, job.id, populate_existing=True)
    assert (milestone.printed_hours, milestone.printed_g) == (None, None)
    assert session.get(PrintRun, run.id, populate_existing=True).state == "FINISHED"  # its record stays
