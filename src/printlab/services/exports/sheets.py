"""What each export holds: its columns in words and its rows, read in batches from the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from printlab.clock import lab_day_start
from printlab.domain.charging import kind_label, method_label
from printlab.domain.history import job_event_sentence, same_change
from printlab.domain.naming import simple_job_id
from printlab.domain.periods import Period
from printlab.domain.statuses import Status
from printlab.models import Event, Job, Payment

#: Rows fetched per round trip: a server-side cursor on PostgreSQL, batched fetches on SQLite.
BATCH = 2000


class Kind(Enum):
    """How a column's cells are typed: in an XLSX file, and how CSV writes them."""

    TEXT = "text"
    WHEN = "when"  # a naive-UTC time, written in the lab's zone
    MONEY = "money"  # dollars, two decimals
    NUMBER = "number"  # grams, hours


@dataclass(frozen=True)
class Column:
    heading: str
    kind: Kind = Kind.TEXT
    #: In characters, as a spreadsheet counts them.
    width: int = 14


@dataclass
class Sheet:
    """One export: its name, columns and rows (each a tuple in the columns' order), for one period."""

    name: str  # "jobs", "payments", "events": also the file name's part
    title: str  # "Jobs": the worksheet's name
    columns: tuple[Column, ...]
    rows: Iterator[Sequence[Any]]
    period: Period
    zone: str

    @property
    def headings(self) -> list[str]:
        return [column.heading for column in self.columns]


def bounds(period: Period, zone: str) -> tuple[datetime, datetime]:
    """The period's start and end as naive-UTC moments (local midnights): start <= t < end."""
    return lab_day_start(period.first, zone), lab_day_start(period.after_last, zone)


def _stream(session: Session, statement: Select[Any]) -> Iterator[Any]:
    yield from session.execute(statement.execution_options(yield_per=BATCH))


def _status_label(code: str | None) -> str:
    try:
        return Status(code).label
    except ValueError:
        return code or ""


# -- jobs -----------------------------------------------------------------------------------------

JOB_COLUMNS = (
    Column("Job", width=9),
    Column("Submitted", Kind.WHEN, 17),
    Column("Student", width=24),
    Column("Email", width=30),
    Column("Discipline", width=18),
    Column("Class", width=12),
    Column("Method", width=10),
    Column("Printer", width=18),
    Column("Colour", width=16),
    Column("Status", width=18),
    Column("Weight (g)", Kind.NUMBER, 11),
    Column("Print time (h)", Kind.NUMBER, 13),
    Column("Quoted ($)", Kind.MONEY, 11),
    Column("Paid ($)", Kind.MONEY, 11),
    Column("Last change", Kind.WHEN, 17),
    Column("Last changed by", width=18),
    Column("Job ID", width=34),
)


def jobs(session: Session, period: Period, zone: str) -> Sheet:
    """Jobs submitted in the period, oldest first, with what was paid for each (the sum of its payments)."""
    start, end = bounds(period, zone)
    paid = select(func.sum(Payment.charged_usd)).where(Payment.job_id == Job.id).scalar_subquery()
    statement = (
        select(
            Job.id,
            Job.created_at,
            Job.student_name,
            Job.student_email,
            Job.discipline,
            Job.class_number,
            Job.material,
            Job.printer,
            Job.color,
            Job.status,
            Job.weight_g,
            Job.time_hours,
            Job.cost_usd,
            paid,
            Job.updated_at,
            Job.last_updated_by,
        )
        .where(Job.created_at >= start, Job.created_at < end)
        .order_by(Job.created_at, Job.id)
    )

    def rows() -> Iterator[Sequence[Any]]:
        for r in _stream(session, statement):
            yield (
                simple_job_id(r[0]),
                r.created_at,
                r.student_name,
                r.student_email,
                r.discipline,
                r.class_number,
                r.material,
                r.printer,
                r.color,
                _status_label(r.status),
                r.weight_g,
                r.time_hours,
                r.cost_usd,
                r[13],
                r.updated_at,
                r.last_updated_by,
                r[0],
            )

    return Sheet("jobs", "Jobs", JOB_COLUMNS, rows(), period, zone)


# -- payments -------------------------------------------------------------------------------------

PAYMENT_COLUMNS = (
    Column("Recorded", Kind.WHEN, 17),
    Column("Job", width=9),
    Column("Student", width=24),
    Column("Kind", width=11),
    Column("Method", width=20),
    Column("Account code", width=14),
    Column("Amount ($)", Kind.MONEY, 11),
    Column("List price ($)", Kind.MONEY, 12),
    Column("Discount ($)", Kind.MONEY, 11),
    Column("Quoted ($)", Kind.MONEY, 11),
    Column("Weighed (g)", Kind.NUMBER, 11),
    Column("Kept the quote", width=10),
    Column("Reason", width=30),
    Column("Reference", width=16),
    Column("Picked up by", width=22),
    Column("Recorded by", width=18),
    Column("Workstation", width=14),
    Column("Job ID", width=34),
)


def payments(session: Session, period: Period, zone: str) -> Sheet:
    """Payment rows recorded in the period, in the order they were recorded: charges, and the refunds,
    corrections and reversals (negative amounts) that follow them. A job's balance is the sum."""
    start, end = bounds(period, zone)
    statement = (
        select(
            Payment.recorded_at,
            Payment.job_id,
            Job.student_name,
            Payment.kind,
            Payment.method,
            Payment.account_code,
            Payment.charged_usd,
            Payment.list_usd,
            Payment.discount_usd,
            Payment.quoted_usd,
            Payment.weighed_g,
            Payment.kept_quote,
            Payment.reason,
            Payment.payment_reference,
            Payment.picked_up_by,
            Payment.recorded_by,
            Payment.workstation_id,
        )
        .join(Job, Job.id == Payment.job_id)
        .where(Payment.recorded_at >= start, Payment.recorded_at < end)
        .order_by(Payment.recorded_at, Payment.id)
    )

    def rows() -> Iterator[Sequence[Any]]:
        for r in _stream(session, statement):
            charge = r.kind in (None, "CHARGE")
            yield (
                r.recorded_at,
                simple_job_id(r.job_id),
                r.student_name,
                kind_label(r.kind),
                method_label(r.method),
                r.account_code,
                r.charged_usd,
                r.list_usd,
                r.discount_usd,
                r.quoted_usd,
                r.weighed_g,
                ("Yes" if r.kept_quote else "No") if charge else "",
                r.reason,
                r.payment_reference,
                r.picked_up_by,
                r.recorded_by,
                r.workstation_id,
                r.job_id,
            )

    return Sheet("payments", "Payments", PAYMENT_COLUMNS, rows(), period, zone)


# -- events ---------------------------------------------------------------------------------------

EVENT_COLUMNS = (
    Column("Time", Kind.WHEN, 17),
    Column("Job", width=9),
    Column("Student", width=24),
    Column("Event", width=60),
    Column("Staff", width=18),
    Column("Workstation", width=14),
    Column("Job ID", width=34),
)


def events(session: Session, period: Period, zone: str) -> Sheet:
    """The audit trail of the period in sentences, as the job page's History words it (one line per
    change: the second event of an approval is left out, as History does)."""
    start, end = bounds(period, zone)
    statement = (
        select(
            Event.timestamp,
            Event.job_id,
            Job.student_name,
            Event.event_type,
            Event.details,
            Event.triggered_by,
            Event.workstation_id,
        )
        .join(Job, Job.id == Event.job_id)
        .where(Event.timestamp >= start, Event.timestamp < end)
        .order_by(Event.timestamp, Event.id)
    )

    def rows() -> Iterator[Sequence[Any]]:
        previous: dict[str, Any] = {}
        for r in _stream(session, statement):
            seen = {
                "job_id": r.job_id,
                "event_type": r.event_type,
                "timestamp": r.timestamp,
                "triggered_by": r.triggered_by,
                "details": r.details,
            }
            if previous.get("job_id") == r.job_id and same_change(previous, seen):
                continue
            previous = seen
            yield (
                r.timestamp,
                simple_job_id(r.job_id),
                r.student_name,
                job_event_sentence(r.event_type or "", r.details, r.triggered_by),
                r.triggered_by,
                r.workstation_id,
                r.job_id,
            )

    return Sheet("events", "Events", EVENT_COLUMNS, rows(), period, zone)
