"""Factories for the fleet's live rows: printer records (through the admin service), and the rows the
worker's poller and "Start printing" write (`printer_poll`, `print_run`), written directly here so the
board, the dashboard and the student's page can be tested without a printer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import Printer
from printlab.domain.statuses import Status
from printlab.models import Job, LabPrinter, PrinterPoll, PrintRun, PrintRunState, QueuePlace
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor
from printlab.services.printers import fleet

SECRET = "test-secret-key-that-is-long-enough-0123456789"  # the lab_env fixture's PRINTLAB_SECRET_KEY
ADMIN_PC = "ADMIN-PC"


def connect_octoprint(session: Session, url: str, api_key: str, admin: Actor) -> LabPrinter:
    """The Prusa MK4S added by an admin at ADMIN-PC (made here) as an OctoPrint printer, and its connection
    tested once, which opens OctoPrint's link to its Virtual Printer."""
    workstations.add_workstation(session, ADMIN_PC, "a-long-password-1", is_admin=True)
    form = {"name": "Prusa MK4S", "connection": "OCTOPRINT", "address": url, "api_key": api_key}
    printer = fleet.add_printer(session, form, secret=SECRET, by=admin)
    fleet.check_connection(session, printer.id, secret=SECRET)
    return printer


def make_printer(
    session: Session,
    name: str = "Prusa MK4S",
    connection: str = "OCTOPRINT",
    *,
    state: str = "IN_SERVICE",
    address: str = "http://10.0.0.7",
) -> LabPrinter:
    """A record for the catalog printer `name`, added (and paused or retired) as an admin would."""
    form: dict[str, str] = {"name": name, "connection": connection}
    if connection != "NONE":
        form |= {"address": address, "api_key": "key-0123456789"}
    printer = fleet.add_printer(session, form, secret=SECRET)
    if state != "IN_SERVICE":
        printer = fleet.set_state(session, printer.id, state)
    session.expire_all()
    return session.get(LabPrinter, printer.id)  # type: ignore[return-value]


def make_poll(
    session: Session,
    printer: LabPrinter,
    activity: str = "printing",
    *,
    now: datetime | None = None,
    **values: Any,
) -> PrinterPoll:
    """The worker's last poll of `printer` as it would write it (replacing the one before)."""
    now = now or utcnow()
    poll = session.get(PrinterPoll, printer.id) or PrinterPoll(printer_id=printer.id)
    defaults: dict[str, Any] = {
        "software": "OctoPrint 1.11.8",
        "detail": {"printing": "Printing", "idle": "Operational", "offline": None}.get(activity),
        "failures": 0 if activity != "offline" else 3,
        "polled_at": now,
        "answered_at": now if activity != "offline" else now - timedelta(minutes=2),
        "next_poll_at": now + timedelta(seconds=5),
        "changed_at": now,
    }
    for key, value in {"activity": activity, **defaults, **values}.items():
        setattr(poll, key, value)
    session.add(poll)
    session.commit()
    return poll


def make_run(
    session: Session,
    job: Job,
    printer: LabPrinter,
    state: str = PrintRunState.PRINTING,
    *,
    requested_by: str = "Alex Rivera",
    started_at: datetime | None = None,
    **values: Any,
) -> PrintRun:
    """A print run of `job` on `printer` as "Start printing" and the worker leave it."""
    now = utcnow()
    run = PrintRun(
        job_id=job.id,
        printer_id=printer.id,
        printer_name=printer.name,
        state=state,
        source_file=f"{job.display_name}.gcode",
        printer_file=f"{job.display_name}.gcode",
        requested_at=(started_at or now) - timedelta(seconds=20),
        requested_by=requested_by,
        workstation_id="LAB-PC-1",
        attempts=1,
        started_at=None if state == PrintRunState.SENDING else (started_at or now),
        ended_at=now if state not in PrintRunState.OPEN else None,
        **values,
    )
    session.add(run)
    session.commit()
    return run


def set_run(session: Session, run: PrintRun, **values: Any) -> PrintRun:
    """Change a run as the worker would (a stop, a finish)."""
    found = session.scalars(select(PrintRun).where(PrintRun.id == run.id)).one()
    for key, value in values.items():
        setattr(found, key, value)
    session.commit()
    return found


def add_fleet(session: Session, template: Job, printers: Sequence[Printer], jobs: int) -> None:
    """`jobs` more Ready-to-Print jobs copied from `template` across `printers`, half of them placed, and a
    record, a poll and (for every other printer) a running print for each printer."""
    unique = ("id", "confirm_token")
    columns = {c.key: getattr(template, c.key) for c in Job.__table__.columns if c.key not in unique}
    new_ids = []
    for n in range(jobs):
        job_id = f"fleet{n:04d}{template.id[9:]}"
        new_ids.append(job_id)
        session.add(Job(**{**columns, "id": job_id, "printer": printers[n % len(printers)].name}))
    session.commit()
    session.add_all(QueuePlace(job_id=job_id, position=n) for n, job_id in enumerate(new_ids[::2], 1))
    session.commit()
    for n, printer in enumerate(printers):
        record = make_printer(session, printer.name, address=f"http://10.0.1.{n + 1}")
        make_poll(session, record, "printing" if n % 2 else "idle", progress=50.0, seconds_left=900)
        if n % 2:
            running = session.get(Job, new_ids[n])
            assert running is not None
            running.status = Status.PRINTING.value
            session.commit()
            make_run(session, running, record)
