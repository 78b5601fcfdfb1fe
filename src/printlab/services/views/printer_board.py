"""The printer board's read model: one lane per catalog printer (its state, what it prints now, its
temperatures and its queue) in the same few queries however many printers and jobs there are.

Five statements: the fleet's fingerprint (read first, so a change committed while the board is read
makes the next poll new), the printer records with their last polls, the open print runs with their
jobs, the Printing jobs staff started on the printer itself, and every queue.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of
from printlab.domain.printers import (
    Activity,
    Connection,
    LaneState,
    ServiceState,
    lane_state,
    temperatures_from,
    temperatures_words,
)
from printlab.domain.statuses import Status
from printlab.models import Job, JobSearch, LabPrinter, PrinterPoll, PrintRun, PrintRunState
from printlab.services.printers.queue import queued
from printlab.services.views.live_prints import LivePrint, fleet_fingerprint, live_print


@dataclass(frozen=True)
class BoardJob:
    """A job as a lane shows it: its name, the student's file name and who sent it."""

    id: str
    name: str
    file_name: str
    student_name: str
    color: str
    method: str

    @classmethod
    def of(cls, job: Job) -> BoardJob:
        display = job.display_name or ""
        return cls(
            id=job.id,
            name=display or job.id[:6],
            file_name=job.original_filename or display + extension_of(job.original_filename or ""),
            student_name=job.student_name or "",
            color=job.color or "",
            method=job.material or "",
        )


@dataclass(frozen=True)
class NowPrinting:
    """A job at the printer: sent from PrintLab (`live`), or started on the printer itself (`since`)."""

    job: BoardJob
    live: LivePrint | None = None
    #: When a print started by hand began (the job's move to Printing), naive UTC.
    since: datetime | None = None


@dataclass(frozen=True)
class Lane:
    name: str
    method: str
    #: The lane's place on the board (1, 2, …): its element ids.
    number: int
    state: LaneState
    connection: str
    #: The printer's error, or why PrintLab can't reach it.
    message: str | None
    #: The printer's own word for its state ("Operational"), beside ours.
    detail: str | None
    last_answer: datetime | None
    temperatures: str
    printing: list[NowPrinting]
    #: A file the printer prints that PrintLab didn't send (name, progress), as its poll says.
    other_print: tuple[str, float | None] | None
    queue: list[BoardJob]

    @property
    def key(self) -> str:
        return f"lane-{self.number}"

    @property
    def seen(self) -> str:
        """The queue as shown, sent back by every move so a changed queue is noticed."""
        return ",".join(job.id for job in self.queue)


@dataclass(frozen=True)
class Board:
    lanes: list[Lane]
    #: Jobs waiting for or at a printer the catalog no longer lists (no lane to show them in).
    elsewhere: list[tuple[BoardJob, str, Status]]
    fingerprint: str
    now: datetime = field(default_factory=utcnow)

    @property
    def etag(self) -> str:
        return board_etag(self.fingerprint, self.now)


def board_etag(fingerprint: str, now: datetime) -> str:
    """Changes with the fleet's fingerprint and the minute (a printer that stops answering is shown
    so as the minutes pass)."""
    return hashlib.sha256(f"board|{fingerprint}|{now:%Y-%m-%dT%H:%M}".encode()).hexdigest()[:32]


def printer_board(session: Session, catalog: Catalog, *, now: datetime | None = None) -> Board:
    """Every lane of the board, in five queries whatever the number of printers and jobs."""
    now = now or utcnow()
    fingerprint = fleet_fingerprint(session)
    records: dict[str, tuple[LabPrinter, PrinterPoll | None]] = {}
    for printer, poll in session.execute(
        select(LabPrinter, PrinterPoll)
        .outerjoin(PrinterPoll, PrinterPoll.printer_id == LabPrinter.id)
        .where(LabPrinter.state != ServiceState.RETIRED.value)
    ).all():
        records[printer.name] = (printer, poll)
    polls = {printer.id: poll for printer, poll in records.values()}
    printing: dict[str, list[NowPrinting]] = {}
    with_runs = set()
    for run, job in session.execute(
        select(PrintRun, Job)
        .join(Job, Job.id == PrintRun.job_id)
        .where(PrintRun.state.in_(PrintRunState.OPEN))
        .order_by(PrintRun.id)
    ).all():
        with_runs.add(job.id)
        entry = NowPrinting(BoardJob.of(job), live=live_print(run, polls.get(run.printer_id)))
        printing.setdefault(run.printer_name, []).append(entry)
    by_hand = session.execute(
        select(Job, JobSearch.status_since)
        .outerjoin(JobSearch, JobSearch.job_id == Job.id)
        .where(Job.status == Status.PRINTING.value)
        .order_by(JobSearch.status_since, Job.id)
    ).all()
    for job, since in by_hand:
        if job.id not in with_runs:
            printing.setdefault(job.printer or "", []).append(NowPrinting(BoardJob.of(job), since=since))
    queues: dict[str, list[BoardJob]] = {}
    for job in queued(session):
        queues.setdefault(job.printer or "", []).append(BoardJob.of(job))
    lanes = [
        _lane(number, p.name, p.method, records.get(p.name), printing.get(p.name, []), queues.get(p.name, []))
        for number, p in enumerate(catalog.printers, 1)
    ]
    shown = {p.name for p in catalog.printers}
    elsewhere = [
        (entry.job, name, Status.PRINTING)
        for name, entries in printing.items()
        if name not in shown
        for entry in entries
    ] + [
        (job, name, Status.READYTOPRINT) for name, jobs in queues.items() if name not in shown for job in jobs
    ]
    session.rollback()  # end the read (the lanes hold plain values only)
    return Board(lanes, elsewhere, fingerprint, now)


def _lane(
    number: int,
    name: str,
    method: str,
    record: tuple[LabPrinter, PrinterPoll | None] | None,
    printing: list[NowPrinting],
    queue: list[BoardJob],
) -> Lane:
    printer, poll = record if record is not None else (None, None)
    connection = Connection(printer.connection) if printer is not None else None
    service = ServiceState(printer.state) if printer is not None else None
    activity = Activity(poll.activity) if poll is not None and poll.activity in _ACTIVITIES else None
    state = lane_state(service, connection, activity)
    # Only a connected printer in service is polled: a paused one's last poll is old news.
    heard = poll is not None and state not in (LaneState.NOT_CONNECTED, LaneState.OUT_OF_SERVICE)
    other = None
    if (
        heard
        and activity in (Activity.PRINTING, Activity.PAUSED)
        and not any(entry.live is not None and entry.live.printing for entry in printing)
        and poll is not None
    ):
        other = (poll.file or "a file", poll.progress)
    return Lane(
        name=name,
        method=method,
        number=number,
        state=state,
        connection=(connection or Connection.NONE).label,
        message=poll.message if heard and poll is not None and activity in _TROUBLE else None,
        detail=poll.detail if heard and poll is not None else None,
        last_answer=poll.answered_at if heard and poll is not None else None,
        temperatures=temperatures_words(temperatures_from(poll.temperatures)) if heard and poll else "",
        printing=printing,
        other_print=other,
        queue=queue,
    )


_ACTIVITIES = frozenset(activity.value for activity in Activity)
#: The activities whose message (the printer's error, or why it can't be reached) the lane shows.
_TROUBLE = (Activity.ERROR, Activity.DISCONNECTED, Activity.OFFLINE)
