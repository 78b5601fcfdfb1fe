"""The worker's polls of the lab's connected printers, written to `printer_poll` for pages to read.

Each in-service connected printer is asked every 5 seconds (`domain.printers.POLL_SECONDS`). A worker
claims a printer's poll by moving its `next_poll_at` forward with a conditional UPDATE, so two workers
(threads or processes) never ask one printer at once; the claim is a lease long enough for the
slowest answer the connector's timeouts allow, and the answer sets the real next time. A printer that
doesn't answer is asked again after 5, 10, 20, then every 30 seconds, and is shown offline from its
second unanswered poll; the first answer puts it back. Paused and retired printers aren't asked.

Nothing here knows about jobs: what a poll means for a print sent from PrintLab is decided by the
caller (`services.jobs.print_watch`), which gets the status before and after.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.printers import (
    OFFLINE_AFTER_FAILURES,
    Activity,
    Connection,
    PrinterStatus,
    ServiceState,
    Temperature,
    next_poll_seconds,
)
from printlab.models import LabPrinter, PrinterPoll, PrintRun, PrintRunState
from printlab.services.printers import api_keys
from printlab.services.printers.api_keys import KeyUnreadable
from printlab.services.printers.connections import open_connector
from printlab.services.printers.connector import Connector, PrinterProblem, Timeouts
from printlab.services.webhooks import events as webhook_events

#: A poll's timeouts: a printer on the lab's network answers in milliseconds; one that takes seconds
#: is as good as gone, and a short wait keeps one hung printer from tying up a polling thread.
POLL_TIMEOUTS = Timeouts(connect=2.0, read=4.0)
#: How far a claim moves `next_poll_at` ahead: longer than the slowest poll (a few requests, each
#: within the timeouts above), so no other worker takes the printer while this one is still asking.
CLAIM_LEASE = timedelta(seconds=60)
#: Temperatures are asked on every third poll (every 15 s) where they cost a request of their own.
TEMPERATURES_EVERY = 3


@dataclass(frozen=True)
class PrinterTarget:
    """What a poll needs to know of a printer's record, read when the poll is claimed."""

    id: int
    connection: str
    address: str | None
    api_key_sealed: str | None


@dataclass(frozen=True)
class PollOutcome:
    """One poll: the printer, what the row showed before, and what it shows now."""

    printer_id: int
    before: PrinterStatus | None
    after: PrinterStatus
    #: True when the printer answered this time (False: unreachable or timed out).
    answered: bool
    #: True when its software reported a status (False also for a refused key or a failing server).
    reported: bool
    #: True when a print sent from PrintLab is printing on it (read in the poll's own transaction).
    printing_run: bool = False


def polled_printers(session: Session) -> list[LabPrinter]:
    """The printers the worker asks: in service, with a connection and an address."""
    return list(
        session.scalars(
            select(LabPrinter).where(
                LabPrinter.state == ServiceState.IN_SERVICE.value,
                LabPrinter.connection != Connection.NONE.value,
                LabPrinter.address.is_not(None),
            )
        )
    )


def claim_due(
    session: Session, *, now: datetime | None = None, skip: set[int] | None = None
) -> list[PrinterTarget]:
    """Claim every polled printer whose poll is due; returns them (this worker asks them now).

    A printer without a poll row gets one first (due at once). The claim is a conditional UPDATE
    (`next_poll_at <= now`) that moves the time on and returns the rows it moved.
    """
    now = now or utcnow()
    records = {
        p.id: PrinterTarget(p.id, p.connection, p.address, p.api_key_sealed)
        for p in polled_printers(session)
        if p.id not in (skip or set())
    }
    printers = set(records)
    if not printers:
        session.rollback()
        return []
    known = set(session.scalars(select(PrinterPoll.printer_id).where(PrinterPoll.printer_id.in_(printers))))
    for printer_id in printers - known:
        try:
            with write_transaction(session):
                session.add(PrinterPoll(printer_id=printer_id, next_poll_at=now, changed_at=now))
        except IntegrityError:  # another worker added it at the same moment
            pass
    with write_transaction(session):
        # One statement claims every due printer: of two workers, the second finds their times moved on.
        claimed = list(
            session.scalars(
                update(PrinterPoll)
                .where(PrinterPoll.printer_id.in_(printers), PrinterPoll.next_poll_at <= now)
                .values(next_poll_at=now + CLAIM_LEASE, polled_at=now)
                .returning(PrinterPoll.printer_id)
                .execution_options(synchronize_session=False)
            )
        )
    session.rollback()
    return [records[printer_id] for printer_id in claimed]


class Connectors:
    """One open connector per printer, kept between polls (its keep-alive connection and what it learnt,
    such as the software's version), replaced when the printer's address, kind or key changes."""

    def __init__(self, secret: str, timeouts: Timeouts = POLL_TIMEOUTS):
        self.secret = secret
        self.timeouts = timeouts
        self._open: dict[int, tuple[tuple[str, str | None, str | None], Connector]] = {}
        self._lock = threading.Lock()
        self._polls: dict[int, int] = {}

    def temperatures_due(self, printer_id: int) -> bool:
        """True on a printer's first poll by this worker and every `TEMPERATURES_EVERY`th after it."""
        with self._lock:
            count = self._polls.get(printer_id, 0)
            self._polls[printer_id] = count + 1
        return count % TEMPERATURES_EVERY == 0

    def for_printer(self, printer: LabPrinter | PrinterTarget) -> Connector:
        """Raises PrinterProblem (not connected) and KeyUnreadable (the lab's secret changed)."""
        fingerprint = (printer.connection, printer.address, printer.api_key_sealed)
        with self._lock:
            kept = self._open.get(printer.id)
            if kept is not None and kept[0] == fingerprint:
                return kept[1]
            key = api_keys.unseal(self.secret, printer.api_key_sealed) if printer.api_key_sealed else None
            connector = open_connector(
                Connection(printer.connection), printer.address, key, timeouts=self.timeouts
            )
            self._open[printer.id] = (fingerprint, connector)
        if kept is not None:
            kept[1].close()
        return connector

    def close(self) -> None:
        with self._lock:
            kept, self._open = list(self._open.values()), {}
        for _, connector in kept:
            connector.close()


def poll_printer(
    session: Session, printer: PrinterTarget | int, connectors: Connectors, *, now: datetime | None = None
) -> PollOutcome | None:
    """Ask one claimed printer what it is doing and write the answer to its poll row, in one short
    transaction after the printer answered (none is held while it takes its time).

    `printer` is what `claim_due` returned (or an id, read here). Returns None when an id names a
    printer that is no longer polled (paused, retired or disconnected).
    """
    if isinstance(printer, int):
        record = session.get(LabPrinter, printer)
        session.rollback()
        if record is None or not is_polled(record):
            return None
        printer = PrinterTarget(record.id, record.connection, record.address, record.api_key_sealed)
    printer_id = printer.id
    problem: Exception | None = None
    try:
        connector: Connector | None = connectors.for_printer(printer)
    except (PrinterProblem, KeyUnreadable) as exc:
        connector, problem = None, exc
    with_temperatures = connectors.temperatures_due(printer_id)
    answered, reported = True, False
    if connector is None:
        status = PrinterStatus(Activity.ERROR, message=str(problem))
    else:
        try:
            status = connector.status(temperatures=with_temperatures)
            reported = True
        except PrinterProblem as exc:
            answered = not exc.offline
            status = PrinterStatus(
                Activity.OFFLINE if exc.offline else Activity.ERROR,
                software=connector.software,
                message=str(exc),
            )
    now = now or utcnow()
    printing = (
        select(PrintRun.id)
        .where(PrintRun.printer_id == printer_id, PrintRun.state == PrintRunState.PRINTING)
        .exists()
    )
    with write_transaction(session):
        found = session.execute(
            select(PrinterPoll, printing)
            .where(PrinterPoll.printer_id == printer_id)
            .with_for_update(of=PrinterPoll)
            .execution_options(populate_existing=True)
        ).one_or_none()
        row, printing_run = (found[0], bool(found[1])) if found is not None else (None, False)
        if row is None:
            row = PrinterPoll(printer_id=printer_id, changed_at=now, failures=0)
            session.add(row)
        before = status_of(row) if row.polled_at is not None and row.activity else None
        if answered:
            row.failures = 0
            row.answered_at = now
            shown = _rounded(status)
            heated = shown.activity not in (Activity.DISCONNECTED, Activity.ERROR)
            if not with_temperatures and heated and before is not None and not shown.temperatures:
                shown = replace(shown, temperatures=before.temperatures)  # asked again in a few polls
        else:
            row.failures = (row.failures or 0) + 1
            if row.failures >= OFFLINE_AFTER_FAILURES or before is None:
                shown = PrinterStatus(Activity.OFFLINE, software=status.software, message=status.message)
            else:  # one lost answer is a blip: keep showing what the printer last said
                shown = before
        row.polled_at = now
        row.next_poll_at = now + timedelta(seconds=next_poll_seconds(row.failures))
        if before is None or shown != before:
            _write(row, shown)
            row.changed_at = now
        if before is None or shown.activity != before.activity:
            record = session.get(LabPrinter, printer_id)
            if record is not None:
                webhook_events.printer_state_changed(
                    session, record, before.activity if before else None, shown.activity,
                    file=shown.file, message=shown.message, now=now,
                )  # fmt: skip
    return PollOutcome(printer_id, before, shown, answered, reported, printing_run)


def is_polled(printer: LabPrinter) -> bool:
    """True when the worker asks the printer: in service, connected, with an address."""
    return (
        printer.state == ServiceState.IN_SERVICE.value
        and printer.connection != Connection.NONE.value
        and printer.address is not None
    )


def status_of(row: PrinterPoll) -> PrinterStatus:
    """The status a poll row holds, as the connector reported it (temperatures in whole degrees)."""
    try:
        activity = Activity(row.activity)
    except ValueError:
        activity = Activity.OFFLINE
    temperatures = tuple(
        Temperature(str(t.get("heater")), t.get("actual"), t.get("target"))
        for t in (row.temperatures or [])
        if isinstance(t, dict)
    )
    return PrinterStatus(
        activity,
        software=row.software or "",
        detail=row.detail or "",
        file=row.file,
        progress=row.progress,
        seconds_left=row.seconds_left,
        seconds_printed=row.seconds_printed,
        temperatures=temperatures,
        message=row.message,
    )


def _rounded(status: PrinterStatus) -> PrinterStatus:
    """Temperatures to whole degrees and progress to a tenth of a percent, so an idle printer's
    heaters wavering by a fraction of a degree isn't a change the board has to send again."""
    return PrinterStatus(
        status.activity,
        software=status.software[:100],
        detail=status.detail[:200],
        file=status.file[:256] if status.file else None,
        progress=round(status.progress, 1) if status.progress is not None else None,
        seconds_left=status.seconds_left,
        seconds_printed=status.seconds_printed,
        temperatures=tuple(
            Temperature(
                t.heater,
                float(round(t.actual)) if t.actual is not None else None,
                float(round(t.target)) if t.target is not None else None,
            )
            for t in status.temperatures
        ),
        message=status.message,
    )


def _write(row: PrinterPoll, status: PrinterStatus) -> None:
    row.activity = status.activity.value
    row.software = status.software or None
    row.detail = status.detail or None
    row.file = status.file
    row.progress = status.progress
    row.seconds_left = status.seconds_left
    row.seconds_printed = status.seconds_printed
    row.temperatures = (
        [{"heater": t.heater, "actual": t.actual, "target": t.target} for t in status.temperatures]
        if status.temperatures
        else None
    )
    row.message = status.message
