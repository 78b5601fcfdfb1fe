"""Two worker processes reach for the same print waiting to be sent, at the same instant, 20 times, on
PostgreSQL: exactly one sends it to the real OctoPrint and starts it, the job moves to Printing once."""

from __future__ import annotations

import io
import time

import pytest
from sqlalchemy import select

from printlab.domain.printers import Activity, same_file
from printlab.domain.statuses import Status
from printlab.models import Event, Job, PrintRun
from printlab.services.jobs import job_desk, printing, workflow
from printlab.services.printers import polling
from printlab.services.printers.connector import NothingToCancel
from printlab.services.printers.octoprint import OctoPrint

from .factories import STAFF, actor, make_job, make_staff
from .fleet_factories import connect_octoprint
from .test_concurrency import START_AHEAD_S, TRIALS, racers  # noqa: F401 -- the fixture
from .test_printing import SECRET, gcode

pytestmark = [
    pytest.mark.xdist_group("octoprint"),
    pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres_only)]),
]


def _idle(connector: OctoPrint) -> None:
    deadline = time.monotonic() + 60
    while connector.status().activity is not Activity.IDLE:
        assert time.monotonic() < deadline, "the printer never went idle"
        time.sleep(0.1)


def test_two_workers_never_start_the_same_print_twice(session, storage, racers, octoprint):  # noqa: F811
    make_staff(session)
    connect_octoprint(session, octoprint.url, octoprint.api_key, actor(workstation="ADMIN-PC"))
    connectors = polling.Connectors(SECRET)
    problems, overlapped = [], 0
    with OctoPrint(octoprint.url, octoprint.api_key) as printer_screen:
        for trial in range(1, TRIALS + 1):
            _idle(printer_screen)
            for target in polling.claim_due(session):
                polling.poll_printer(session, target, connectors)
            job = make_job(
                session, storage, Status.READYTOPRINT, student_email=f"racer.trial{trial}@example.edu"
            )
            job_desk.attach_file(
                session,
                storage,
                job.id,
                io.BytesIO(gcode(moves=3000)),
                "sliced.gcode",
                actor=actor(),
                max_bytes=10**8,
            )
            run = printing.request_print(session, storage, job.id, actor=actor(), printer="Prusa MK4S")
            session.rollback()
            at = time.time() + START_AHEAD_S
            for racer in racers:
                racer.send({"action": "send_print", "job_id": job.id, "staff": racer.seat.staff,
                            "workstation": racer.seat.workstation, "expected": None, "at": at,
                            "args": {"run_id": run.id, "secret": SECRET}})  # fmt: skip
            results = [racer.answer() for racer in racers]
            starts = [r["started"] for r in results]
            overlapped += max(starts) < min(r["ended"] for r in results)
            winners = [r for r in results if r["ok"]]
            losers = [r for r in results if not r["ok"]]
            if len(winners) != 1 or losers[0]["error"] != "NotSent" or "traceback" in losers[0]:
                problems.append(f"trial {trial}: {results}")
            session.rollback()
            row = session.get(Job, job.id, populate_existing=True)
            sent = session.get(PrintRun, run.id, populate_existing=True)
            moves = session.scalars(select(Event).where(Event.job_id == job.id)).all()
            to_printing = [
                e for e in moves if isinstance(e.details, dict) and e.details.get("to") == "PRINTING"
            ]
            now = printer_screen.status()
            if (row.status, sent.state, sent.attempts, len(to_printing)) != ("PRINTING", "PRINTING", 1, 1):
                problems.append(f"trial {trial}: job {row.status}, run {sent.state} after {sent.attempts} tries, "
                                f"{len(to_printing)} moves to Printing")  # fmt: skip
            if to_printing and to_printing[0].triggered_by != STAFF:
                problems.append(f"trial {trial}: moved by {to_printing[0].triggered_by}")
            if not same_file(now.file, sent.printer_file):
                problems.append(f"trial {trial}: the printer has {now.file}, not {sent.printer_file}")
            try:
                printer_screen.cancel()
            except NothingToCancel:
                problems.append(f"trial {trial}: the printer wasn't printing")
            workflow.print_failed(session, storage, job.id, actor=actor(), reason="Race trial over")
    connectors.close()
    print(f"\nsend race on PostgreSQL: {TRIALS} trials, calls overlapped in {overlapped}/{TRIALS}")
    assert not problems, "\n".join(problems)
    assert overlapped >= TRIALS // 2, "the two processes hardly raced"
