"""What connected printers say about the jobs they print, for the board, the dashboard and the student's
pages: each open print run with its printer's last poll, and one fingerprint of the fleet for polls.

It only reads `print_run` and `printer_poll` (the worker and the workflow write them); a page never
waits for a printer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from printlab.domain.printers import Activity, time_left_words
from printlab.models import DashboardVersion, LabPrinter, PrinterPoll, PrintRun, PrintRunState

#: The poll's progress means this print only while the printer is at it (not idle, offline or in error).
_AT_IT = (Activity.PRINTING.value, Activity.PAUSED.value, Activity.BUSY.value)


@dataclass(frozen=True)
class LivePrint:
    """A job's open print run (sending, printing, or stopped by the printer) and what its printer said."""

    job_id: str
    printer_name: str
    run_state: str
    requested_by: str | None
    #: When the printer took it (None while sending), naive UTC.
    started_at: datetime | None
    requested_at: datetime
    #: The reason the printer gave for stopping, or why sending failed.
    message: str | None
    #: 0–100 while the printer is at this print; None otherwise.
    progress: float | None
    seconds_left: int | None
    #: The printer's activity at its last poll (None: not polled yet).
    activity: str | None

    @property
    def printing(self) -> bool:
        return self.run_state == PrintRunState.PRINTING

    @property
    def sending(self) -> bool:
        return self.run_state == PrintRunState.SENDING

    @property
    def stopped(self) -> bool:
        return self.run_state == PrintRunState.STOPPED

    @property
    def time_left(self) -> str:
        """ "about 40 minutes left", or "" when the printer doesn't say (or isn't printing it now)."""
        return time_left_words(self.seconds_left)

    @property
    def stopped_reason(self) -> str:
        return self.message or "no reason given"


def live_print(run: PrintRun, poll: PrinterPoll | None) -> LivePrint:
    """The run with its printer's poll read as this print's progress where it applies."""
    at_it = run.state == PrintRunState.PRINTING and poll is not None and poll.activity in _AT_IT
    printing_now = at_it and poll is not None and poll.activity == Activity.PRINTING.value
    return LivePrint(
        job_id=run.job_id,
        printer_name=run.printer_name,
        run_state=run.state,
        requested_by=run.requested_by,
        started_at=run.started_at,
        requested_at=run.requested_at,
        message=run.message,
        progress=max(0.0, min(100.0, poll.progress))
        if at_it and poll and poll.progress is not None
        else None,
        seconds_left=max(0, poll.seconds_left)
        if printing_now and poll and poll.seconds_left is not None
        else None,
        activity=poll.activity if poll is not None else None,
    )


def open_runs(
    session: Session, job_ids: Collection[str] | None = None
) -> list[tuple[PrintRun, PrinterPoll | None]]:
    """Open runs (every one, or those of `job_ids`) with their printer's last poll, in one query."""
    statement = (
        select(PrintRun, PrinterPoll)
        .outerjoin(PrinterPoll, PrinterPoll.printer_id == PrintRun.printer_id)
        .where(PrintRun.state.in_(PrintRunState.OPEN))
        .order_by(PrintRun.id)
    )
    if job_ids is not None:
        # Asked even for no ids, so a page costs the same statements with or without printing jobs.
        statement = statement.where(PrintRun.job_id.in_(list(job_ids)))
    return [(run, poll) for run, poll in session.execute(statement).all()]


def live_prints(session: Session, job_ids: Collection[str]) -> dict[str, LivePrint]:
    """The open run of each of `job_ids` that has one (at most one each), in one query."""
    return {run.job_id: live_print(run, poll) for run, poll in open_runs(session, job_ids)}


def fleet_fingerprint(session: Session) -> str:
    """A short digest that changes whenever the board may show something else, in one query.

    It reads the dashboard version (every committed job change, and every queue reorder), the printer
    records (added, edited, paused: their latest change and count), the polls (the latest time what a
    printer says changed) and the open runs (each run's id weighted by its state, so a run that
    starts, stops or closes changes the sum).
    """
    weight = case(
        (PrintRun.state == PrintRunState.SENDING, 1),
        (PrintRun.state == PrintRunState.PRINTING, 2),
        (PrintRun.state == PrintRunState.STOPPED, 3),
        else_=0,
    )
    open_run = PrintRun.state.in_(PrintRunState.OPEN)
    row = session.execute(
        select(
            select(DashboardVersion.version).where(DashboardVersion.id == 1).scalar_subquery(),
            select(func.max(LabPrinter.changed_at)).scalar_subquery(),
            select(func.count()).select_from(LabPrinter).scalar_subquery(),
            select(func.max(PrinterPoll.changed_at)).scalar_subquery(),
            select(func.count()).select_from(PrinterPoll).scalar_subquery(),
            select(func.count()).select_from(PrintRun).where(open_run).scalar_subquery(),
            select(func.sum(PrintRun.id * weight)).where(open_run).scalar_subquery(),
        )
    ).one()
    return hashlib.sha256(repr(tuple(row)).encode()).hexdigest()[:16]
