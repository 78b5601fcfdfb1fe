"""Printing on a connected printer from PrintLab (issue 14): staff's "Start printing" checked and recorded
as a print run, the worker sending the sliced file and starting it, and each poll of the printer followed
until the print finishes (the job completes by itself) or stops (staff confirm what happened).

"Start printing" on a printer without a connection stays the manual move it always was. On a connected
printer the request changes nothing about the job: it refuses with a sentence (no sliced file the
printer takes, a file sliced for another printer model, a printer paused, offline, busy or in error by
its last poll), or records a SENDING run in the job's row-locked transaction. A worker claims the run
with a conditional UPDATE (so two workers never send it twice), uploads and starts it with no
transaction open, and only then moves the job to Printing as the staff member who asked.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.printers import (
    Activity,
    Connection,
    RunVerdict,
    ServiceState,
    file_kinds_words,
    follow_run,
    model_matches,
    same_file,
    takes_file,
)
from printlab.domain.quotes import is_slicer_file
from printlab.domain.statuses import Action, InvalidTransition, Status, transition_for
from printlab.models import Job, LabPrinter, PrinterPoll, PrintRun, PrintRunState
from printlab.services.errors import ConflictError, NotFound, ServiceError, ValidationError
from printlab.services.files import slicer_files
from printlab.services.files.storage import Storage
from printlab.services.jobs import workflow
from printlab.services.jobs.print_runs import busy_run_on, open_run
from printlab.services.jobs.records import add_event, job_folder, lock_job
from printlab.services.jobs.status_change import Expected, check_dialog_lock, check_expected, next_version
from printlab.services.lab.actors import Actor, require_active_staff
from printlab.services.lab.catalog import load_catalog
from printlab.services.printers.api_keys import KeyUnreadable
from printlab.services.printers.connector import (
    Connector,
    PrinterFault,
    PrinterProblem,
    PrinterTimedOut,
    PrinterUnreachable,
    Timeouts,
)
from printlab.services.printers.fleet import connector_for
from printlab.services.printers.polling import PollOutcome, is_polled

log = logging.getLogger(__name__)

#: A printer whose last answer is older than this is offline for "Start printing", whatever it said.
ANSWER_FRESH = timedelta(seconds=60)
#: Tries at sending a run when the printer can't be reached, times out or fails with a 5xx, and the
#: waits between them (a printer being restarted is usually back within a few minutes).
MAX_SEND_ATTEMPTS = 4
SEND_RETRY_SECONDS = (15, 60, 180)
#: A claim on a run lasts this long: longer than the upload of a large file over a lab's Wi-Fi.
SEND_LEASE = timedelta(minutes=15)
#: Sending a file: short to connect, and each chunk of the upload within the connector's upload timeout.
SEND_TIMEOUTS = Timeouts(connect=3.0, read=10.0, upload=60.0)


@dataclass(frozen=True)
class Started:
    """What "Start printing" did: the job, and the printer its file is being sent to (None when the
    printer isn't connected: the job is Printing now, as before)."""

    job: Job
    sending_to: str | None = None


def connected_printer(session: Session, name: str) -> LabPrinter | None:
    """The catalog printer's record when it has a connection (not retired), else None."""
    return session.scalars(
        select(LabPrinter).where(
            LabPrinter.name == name,
            LabPrinter.state != ServiceState.RETIRED.value,
            LabPrinter.connection != Connection.NONE.value,
            LabPrinter.address.is_not(None),
        )
    ).first()


def start_printing(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    printer: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Started:
    """Staff's "Start printing": on a connected printer, send it the job's sliced file (see `request_print`);
    on any other, move the job to Printing as today (`workflow.start_printing`)."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.")
    chosen = printer or job.printer or ""
    record = connected_printer(session, chosen)
    session.rollback()
    if record is None:
        return Started(
            workflow.start_printing(
                session, storage, job_id, actor=actor, printer=printer, expected=expected, now=now
            )
        )
    run = request_print(session, storage, job_id, actor=actor, printer=chosen, expected=expected, now=now)
    return Started(session.get(Job, job_id) or job, run.printer_name)


def request_print(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    printer: str,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> PrintRun:
    """Check that the connected `printer` can be sent the job's sliced file now, and record a SENDING run
    for the worker. The job itself doesn't change until the printer starts.

    Raises ValidationError (a sentence under the printer field), StaleJob, JobLocked, InvalidTransition.
    """
    now = now or utcnow()
    catalog = load_catalog(session)
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.")
    found = catalog.printer(printer)
    if found is None or found.method != job.material:
        raise ValidationError(
            {"printer": f"Choose a {job.material or ''} printer the lab has.".replace("  ", " ")}
        )
    record = connected_printer(session, printer)
    if record is None:
        raise ValidationError(
            {"printer": f"The {printer} isn't connected to PrintLab any more; choose again."}
        )
    problem = printer_problem(session, record, now)
    if problem:
        raise ValidationError({"printer": problem})
    source = sendable_file(storage, job, Connection(record.connection))
    if source is None:
        raise ValidationError(
            {
                "printer": f"This job has no sliced file the {printer} can print: add {file_kinds_words(Connection(record.connection))} "
                f"sliced for the {printer} to the job (Add a file, on the job page), then start again."
            }
        )
    sliced_for = slicer_files.read_estimates(source)
    if (
        sliced_for is not None
        and sliced_for.printer_model
        and not model_matches(sliced_for.printer_model, printer)
    ):
        raise ValidationError(
            {
                "printer": f"{_shown_name(job, source.name)} was sliced for a {sliced_for.printer_model} printer, "
                f"not the {printer}: slice it for the {printer}, add it to the job, then start again."
            }
        )
    printer_id, printer_name = record.id, record.name
    session.rollback()
    try:
        with write_transaction(session):
            job = lock_job(session, job_id)
            check_expected(session, job, expected)
            transition_for(Action.START_PRINTING, job.status_enum)
            require_active_staff(session, actor)
            check_dialog_lock(job, actor, now)
            if open_run(session, job.id) is not None:
                raise ConflictError("This job is already being sent to a printer.")
            if busy_run_on(session, printer_id) is not None:
                raise ValidationError(
                    {"printer": f"The {printer_name} is already printing another job from PrintLab."}
                )
            run = PrintRun(
                job_id=job.id,
                printer_id=printer_id,
                printer_name=printer_name,
                state=PrintRunState.SENDING,
                source_file=source.name,
                printer_file=source.name,
                requested_at=now,
                requested_by=actor.staff,
                workstation_id=actor.workstation,
                attempts=0,
                next_attempt_at=now,
            )
            session.add(run)
            session.flush()
            # Its own name on the printer, so a later print of the same job is never taken for this one.
            stem, dot, extension = source.name.rpartition(".")
            run.printer_file = f"{stem}_run{run.id}{dot}{extension}"
    except IntegrityError:  # another job took the printer (or another request the job) at this moment
        raise ValidationError(
            {"printer": f"The {printer_name} was given another print at the same moment; choose again."}
        ) from None
    return run


def printer_problem(session: Session, printer: LabPrinter, now: datetime) -> str | None:
    """Why a connected printer can't be sent a print now, by its record and its last poll; None when idle."""
    name = printer.name
    if printer.state == ServiceState.PAUSED.value:
        return (
            f"The {name} is paused (out of service): choose another printer, or put it back in service first."
        )
    poll = session.get(PrinterPoll, printer.id)
    if poll is None or poll.polled_at is None:
        return (
            f"PrintLab hasn't heard from the {name} yet (it asks every few seconds): try again in a moment."
        )
    if (
        poll.activity == Activity.OFFLINE.value
        or poll.answered_at is None
        or now - poll.answered_at > ANSWER_FRESH
    ):
        why = f" ({poll.message})" if poll.message else ""
        return f"The {name} is offline{why}. Check that it is on and on the network, then try again."
    if busy_run_on(session, printer.id) is not None:
        return f"The {name} is already printing another job from PrintLab."
    if poll.activity in (Activity.PRINTING.value, Activity.PAUSED.value):
        what = f" {poll.file}" if poll.file else ""
        verb = "has a paused print of" if poll.activity == Activity.PAUSED.value else "is printing"
        return f"The {name} is busy: it {verb}{what or ' something'}. Wait until it is idle."
    if poll.activity == Activity.BUSY.value:
        return (
            f"The {name} is busy{f' ({poll.detail.lower()})' if poll.detail else ''}. Wait until it is idle."
        )
    if poll.activity == Activity.ERROR.value:
        return f"The {name} reports a problem: {poll.message or 'no reason given'}. Clear it first, then try again."
    if poll.activity == Activity.DISCONNECTED.value:
        return (
            f"The {name}'s {poll.software or 'software'} isn't connected to the printer itself: open the connection "
            "(Test connection, on the Printers page), then try again."
        )
    return None


def sendable_file(storage: Storage, job: Job, connection: Connection) -> Path | None:
    """The job's sliced file to send a printer on `connection`: its authoritative file when that is one
    the printer takes, else the newest such slicer file staff added; None when there is none."""
    folder = job_folder(job)
    if folder is None:
        return None
    model = workflow.student_model_name(job)
    names = [
        name
        for name in workflow.candidate_files(storage, job)  # newest slicer file first
        if is_slicer_file(name, model) and takes_file(connection, name)
    ]
    if not names:
        return None
    authoritative = PurePosixPath(job.file_path or "").name
    chosen = authoritative if authoritative in names else names[0]
    return storage.resolve(f"{folder}/{chosen}")


def _shown_name(job: Job, name: str) -> str:
    """A job's file as a sentence names it, without the student's name: "The job's .gcode file",
    "The file …_v2.gcode"."""
    base = job.display_name or ""
    rest = name.removeprefix(base) if base and name.startswith(base) else name
    return f"The job's {rest} file" if rest.startswith(".") else f"The file …{rest}"


# -- the worker: sending ----------------------------------------------------------------------------


def due_runs(session: Session, *, now: datetime | None = None) -> list[int]:
    """Runs waiting to be sent whose time has come (new, or retrying after their wait)."""
    now = now or utcnow()
    ids = list(
        session.scalars(
            select(PrintRun.id)
            .where(
                PrintRun.state == PrintRunState.SENDING,
                or_(PrintRun.next_attempt_at.is_(None), PrintRun.next_attempt_at <= now),
            )
            .order_by(PrintRun.id)
        )
    )
    session.rollback()
    return ids


def send_run(
    session: Session,
    storage: Storage,
    run_id: int,
    *,
    secret: str,
    now: datetime | None = None,
    timeouts: Timeouts = SEND_TIMEOUTS,
) -> str:
    """Claim one SENDING run, upload its file to the printer and start it, then move the job to Printing.

    Returns what happened: "started", "retrying", "not_started", or "skipped" (another worker has it,
    or it was closed). The claim is a conditional UPDATE of the run (still SENDING, its time come), so
    of two workers exactly one sends it. Failures leave the job as it was, with a plain message on the
    run; an unreachable or hung printer, or one failing with a 5xx, is tried again after a wait (after a
    time-out the printer is asked first whether it started our file after all).
    """
    fixed_now = now
    now = now or utcnow()
    with write_transaction(session):
        attempts = session.scalar(
            update(PrintRun)
            .where(
                PrintRun.id == run_id,
                PrintRun.state == PrintRunState.SENDING,
                or_(PrintRun.next_attempt_at.is_(None), PrintRun.next_attempt_at <= now),
            )
            .values(attempts=PrintRun.attempts + 1, next_attempt_at=now + SEND_LEASE)
            .returning(PrintRun.attempts)
            .execution_options(synchronize_session=False)
        )
        if attempts is None:
            return "skipped"
        run = session.get(PrintRun, run_id, populate_existing=True)
        assert run is not None
        printer = session.get(LabPrinter, run.printer_id)
        job = session.get(Job, run.job_id)
        assert printer is not None and job is not None
        folder = job_folder(job)
        source = storage.resolve(f"{folder}/{run.source_file}") if folder else None
        printer_file, job_id, printer_name = run.printer_file, run.job_id, run.printer_name
        requester = Actor(run.requested_by, run.workstation_id)
        polled = is_polled(printer)
        state_now = ServiceState(printer.state)
    if not polled:
        why = "paused" if state_now is ServiceState.PAUSED else "taken out of PrintLab's connected printers"
        return _not_started(session, run_id, f"The {printer_name} was {why} before the file was sent.")
    if source is None or not source.is_file():
        return _not_started(
            session, run_id, "The sliced file is no longer in the job's folder; add it again."
        )
    try:
        connector = connector_for(printer, secret=secret, timeouts=timeouts)
    except (PrinterProblem, KeyUnreadable) as exc:
        return _not_started(session, run_id, str(exc))
    with connector:
        try:
            if attempts > 1 and _printing_ours(connector, printer_file):
                pass  # an earlier try that timed out did start it
            else:
                connector.upload_and_start(printer_file, source)
        except (PrinterUnreachable, PrinterTimedOut, PrinterFault) as exc:
            if isinstance(exc, PrinterTimedOut) and _printing_ours(connector, printer_file):
                pass  # the answer was lost, not the print: it started
            elif attempts < MAX_SEND_ATTEMPTS:
                wait = SEND_RETRY_SECONDS[min(attempts, len(SEND_RETRY_SECONDS)) - 1]
                return _retry_later(session, run_id, str(exc), now + timedelta(seconds=wait))
            else:
                return _not_started(
                    session,
                    run_id,
                    f"{exc} PrintLab tried {attempts} times; start it again when the printer is back.",
                )
        except PrinterProblem as exc:  # a refused key, a busy printer, a stranger at the address
            return _not_started(session, run_id, str(exc))
        except OSError:
            return _not_started(session, run_id, "The sliced file couldn't be read from the lab's storage.")
        try:
            workflow.start_printing(
                session,
                storage,
                job_id,
                actor=requester,
                printer=printer_name,
                expected=Expected(status=Status.READYTOPRINT),
                now=fixed_now or utcnow(),
                sent_run=run_id,
            )
        except (ServiceError, InvalidTransition) as exc:
            # The job moved on (or the run was closed) while its file was on the way: the printer is
            # printing for a job that no longer waits for it, so PrintLab stops it and says so.
            log.warning("print run %s started but the job could not move to Printing: %s", run_id, exc)
            with contextlib.suppress(PrinterProblem):
                connector.cancel()
            return _not_started(
                session,
                run_id,
                f"The job changed while its file was being sent ({exc}); PrintLab cancelled the print on the printer.",
                closing=(PrintRunState.SENDING, PrintRunState.ENDED),
            )
    return "started"


def _printing_ours(connector: Connector, printer_file: str) -> bool:
    try:
        status = connector.status()
    except PrinterProblem:
        return False
    going = status.activity in (Activity.PRINTING, Activity.PAUSED, Activity.BUSY) or status.finished
    return going and same_file(status.file, printer_file)


def _retry_later(session: Session, run_id: int, message: str, when: datetime) -> str:
    with write_transaction(session):
        session.execute(
            update(PrintRun)
            .where(PrintRun.id == run_id, PrintRun.state == PrintRunState.SENDING)
            .values(next_attempt_at=when, message=message)
            .execution_options(synchronize_session=False)
        )
    return "retrying"


def _not_started(
    session: Session, run_id: int, message: str, *, closing: tuple[str, ...] = (PrintRunState.SENDING,)
) -> str:
    with write_transaction(session):
        session.execute(
            update(PrintRun)
            .where(PrintRun.id == run_id, PrintRun.state.in_(closing))
            .values(state=PrintRunState.NOT_STARTED, message=message, ended_at=utcnow(), next_attempt_at=None)
            .execution_options(synchronize_session=False)
        )
    return "not_started"


# -- the worker: following ------------------------------------------------------------------------


def follow(
    session: Session, storage: Storage, outcome: PollOutcome, *, now: datetime | None = None
) -> str | None:
    """What a poll means for the print PrintLab started on that printer, if any: "finished" (the job
    moved to Completed by itself), "stopped" (flagged for staff), or None (nothing to do)."""
    if not outcome.reported or not outcome.printing_run:
        return None  # no print of PrintLab's there, or PrintLab couldn't read the printer
    now = now or utcnow()
    run = session.scalars(
        select(PrintRun).where(
            PrintRun.printer_id == outcome.printer_id, PrintRun.state == PrintRunState.PRINTING
        )
    ).first()
    session.rollback()
    if run is None:
        return None
    before, after = outcome.before, outcome.after
    seen = (
        before is not None
        and same_file(before.file, run.printer_file)
        and before.activity in (Activity.PRINTING, Activity.PAUSED, Activity.BUSY)
    )
    since = (now - run.started_at).total_seconds() if run.started_at else 0.0
    verdict, reason = follow_run(after, run.printer_file, seen_printing=seen, seconds_since_start=since)
    if verdict is RunVerdict.FINISHED:
        printed = (
            after.seconds_printed if after.seconds_printed else (before.seconds_printed if before else None)
        )
        report = workflow.PrinterReport(
            seconds_printed=printed, filament_mm=after.filament_mm, filament_g=None
        )
        try:
            workflow.complete_from_printer(
                session, storage, run.job_id, run_id=run.id, report=report, now=now
            )
        except (ServiceError, InvalidTransition) as exc:  # a staff move got there first
            log.info("print run %s finished but the job had moved on: %s", run.id, exc)
            return None
        return "finished"
    if verdict is RunVerdict.STOPPED:
        return "stopped" if stop_run(session, run.id, reason or "no reason given", now=now) else None
    return None


def stop_run(session: Session, run_id: int, reason: str, *, now: datetime | None = None) -> bool:
    """The printer stopped a print PrintLab started (an error, a cancel on its screen): the run becomes
    STOPPED with the printer's reason and the job gets a PrinterStopped event and a new version, so
    the dashboard and the job page flag it. Staff decide: "Print failed" (the reason prefilled) or
    "Mark complete". Returns False when the run or the job had moved on already."""
    now = now or utcnow()
    with write_transaction(session):
        run = session.get(PrintRun, run_id)
        if run is None:
            return False
        job = lock_job(session, run.job_id)
        run = session.scalars(
            select(PrintRun)
            .where(PrintRun.id == run_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if run.state != PrintRunState.PRINTING or job.status != Status.PRINTING.value:
            return False
        run.state, run.message = PrintRunState.STOPPED, reason[:2000]
        details = {"printer": run.printer_name, "reason": reason[:2000]}
        if run.requested_by:
            details["started_by"] = run.requested_by
        add_event(session, job, "PrinterStopped", details, triggered_by=None, workstation_id=None, now=now)
        job.updated_at = next_version(job, now)
    return True
