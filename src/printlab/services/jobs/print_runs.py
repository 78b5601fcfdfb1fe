"""A job's prints sent to connected printers (`print_run`): its open run, closing that run when a staff
move takes the job elsewhere (called by the status-change engine in the move's transaction), and what
the job page and the dashboard say about a run. Sending and following a run is `printing.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.statuses import Action, Status, Transition
from printlab.models import Job, PrintRun, PrintRunState
from printlab.services.jobs.records import entered_status_at


def open_run(session: Session, job_id: str, *, lock: bool = False) -> PrintRun | None:
    """The job's run that is being sent, printing or stopped (at most one: a partial unique index)."""
    query = select(PrintRun).where(PrintRun.job_id == job_id, PrintRun.state.in_(PrintRunState.OPEN))
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def busy_run_on(session: Session, printer_id: int, *, lock: bool = False) -> PrintRun | None:
    """The run a printer is being sent or is printing (at most one: a partial unique index)."""
    query = select(PrintRun).where(
        PrintRun.printer_id == printer_id, PrintRun.state.in_((PrintRunState.SENDING, PrintRunState.PRINTING))
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def close_after_move(
    session: Session, job: Job, transition: Transition, *, by: str | None, now: datetime
) -> None:
    """Close the job's open run when a move leaves it with nothing to follow, in the move's transaction.

    A run being sent belongs to a job Ready to Print, and a run printing or stopped to a job Printing;
    any other move closes it: "Print failed" as FAILED (staff confirmed it), the rest — Mark complete,
    an admin override, a cancel, a manual start elsewhere — as ENDED. Moves that carry a run on (the
    worker's start, the printer's finish) set its state before this runs and leave nothing to close.
    """
    # Read without flushing (like the engine's other lookups): a second UPDATE of the job row would
    # stamp `updated_at` with the column's own clock. A run this move's own change already carried on
    # (PRINTING, FINISHED) shows its new state here, from the session.
    with session.no_autoflush:
        run = open_run(session, job.id, lock=True)
    if run is None or run.state not in PrintRunState.OPEN:
        return
    if run.state == PrintRunState.SENDING and job.status == Status.READYTOPRINT.value:
        return
    if run.state in (PrintRunState.PRINTING, PrintRunState.STOPPED) and job.status == Status.PRINTING.value:
        return
    failed = transition.action == Action.PRINT_FAILED
    if run.state == PrintRunState.SENDING:
        run.message = f"Not sent: the job was moved to {transition.target.label} by {by or 'PrintLab'} first."
    run.state = PrintRunState.FAILED if failed else PrintRunState.ENDED
    run.ended_at = now


@dataclass(frozen=True)
class RunNote:
    """What a page says about a job's print on a connected printer, in words."""

    #: "sending", "not_started", "printing" or "stopped".
    kind: str
    printer: str
    #: One sentence for the job page.
    sentence: str
    #: The printer's reason for a stop, or why it didn't start (None otherwise).
    reason: str | None = None
    requested_by: str | None = None


def note_for(session: Session, job: Job) -> RunNote | None:
    """The job's print run as the job page shows it: being sent (and retried), not started (while the
    job is still Ready to Print), printing from PrintLab, or stopped by the printer; None otherwise."""
    run = session.scalars(
        select(PrintRun).where(PrintRun.job_id == job.id).order_by(PrintRun.id.desc()).limit(1)
    ).first()
    if run is None:
        return None
    printer = run.printer_name
    if run.state == PrintRunState.SENDING:
        retry = f" Trying again: {run.message}" if run.message else ""
        return RunNote(
            "sending", printer,
            f"Being sent to the {printer} (asked by {run.requested_by or 'staff'}); the job moves to "
            f"Printing when the printer starts it.{retry}",
            run.message, run.requested_by,
        )  # fmt: skip
    if run.state == PrintRunState.PRINTING and job.status == Status.PRINTING.value:
        return RunNote(
            "printing", printer,
            f"Sent to the {printer} from PrintLab by {run.requested_by or 'staff'}; the job moves to "
            "Completed by itself when the printer reports the print finished.",
            None, run.requested_by,
        )  # fmt: skip
    if run.state == PrintRunState.STOPPED:
        reason = run.message or "no reason given"
        return RunNote(
            "stopped", printer,
            f"Printer stopped: {reason} Check the {printer}, then confirm with “Print failed” "
            "(or “Mark complete” if the print is good).",
            reason, run.requested_by,
        )  # fmt: skip
    if run.state == PrintRunState.NOT_STARTED and job.status == Status.READYTOPRINT.value:
        since = entered_status_at(job)
        if since is None or (run.ended_at is not None and run.ended_at >= since):
            reason = run.message or "no reason given"
            return RunNote(
                "not_started", printer, f"Not started on the {printer}: {reason}", reason, run.requested_by
            )
    return None
