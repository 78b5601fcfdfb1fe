"""The monthly summary to the lab's staff: last month's numbers beside the month before, the unpaid list, the exports."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from printlab.clock import lab_day_start, utcnow
from printlab.db import is_postgresql, write_transaction
from printlab.domain.naming import simple_job_id
from printlab.domain.pricing import format_usd
from printlab.domain.reports import Period, duration_words, lab_day
from printlab.models import Job, OutboxMessage
from printlab.services.lab.catalog import load_catalog
from printlab.services.mail import outbox
from printlab.services.views.reports import Filters, Report, build_report

TEMPLATE = "monthly_summary"
#: Unpaid jobs listed by name in the email; the rest are counted.
UNPAID_IN_EMAIL = 15
#: The exports linked from the email: (kind, format, words).
EXPORTS = (
    ("jobs", "csv", "Jobs (CSV)"),
    ("jobs", "xlsx", "Jobs (Excel)"),
    ("payments", "xlsx", "Payments (Excel)"),
    ("statement", "xlsx", "Statement per account code (Excel)"),
)


def month_of(day: date, zone: str) -> Period:
    """The lab-local calendar month holding `day`."""
    first = day.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return Period(f"{first:%B %Y}", first, after - timedelta(days=1), zone)


def summary_context(this: Report, before: Report, *, now: datetime, money: bool = True) -> dict[str, Any]:
    """What the email shows, as plain values stored with the outbox row (the figures as they were)."""

    def count(value: float) -> str:
        return f"{int(value):,}"

    rows: list[tuple[str, str, str]] = [
        ("Submissions", count(this.submissions.value), count(before.submissions.value)),
        ("Approved", count(this.approvals.value), count(before.approvals.value)),
        ("Rejected", count(this.rejections.value), count(before.rejections.value)),
        ("Cancelled", count(this.cancellations.value), count(before.cancellations.value)),
        ("Prints completed", count(this.completed.value), count(before.completed.value)),
    ]
    earlier = {stage.label: stage for stage in before.stages}
    for stage in this.stages:
        then = earlier.get(stage.label)
        rows.append(
            (
                f"{stage.label} (median)",
                duration_words(stage.median_hours),
                duration_words(then.median_hours if then else None),
            )
        )
    if money:
        rows += [
            (
                "Revenue",
                format_usd(Decimal(str(this.revenue.value))),
                format_usd(Decimal(str(before.revenue.value))),
            ),
            ("Pickups paid", count(this.pickups.value), count(before.pickups.value)),
            (
                "Average ticket",
                format_usd(Decimal(str(this.average_ticket.value))),
                format_usd(Decimal(str(before.average_ticket.value))),
            ),
        ]
    unpaid = [
        {
            "number": simple_job_id(job.job_id),
            "student": job.student_name,
            "owed": format_usd(job.owed),
            "days": (now - job.completed_at).days if job.completed_at else 0,
        }
        for job in this.unpaid[:UNPAID_IN_EMAIL]
    ]
    month = {"from": this.period.first_day.isoformat(), "to": this.period.last_day.isoformat()}
    return {
        "month": this.period.first_day.strftime("%Y-%m"),
        "month_name": this.period.label,
        "previous_name": before.period.label,
        "figures": [
            {"label": label, "value": value, "previous": previous} for label, value, previous in rows
        ],
        "unpaid": unpaid,
        "unpaid_more": max(0, this.unpaid_count - len(unpaid)),
        "reports_path": "/reports?" + urlencode({"period": "custom", **month}),
        "exports": [
            {"label": words, "path": f"/reports/export/{kind}.{fmt}?{urlencode(month)}"}
            for kind, fmt, words in EXPORTS
        ],
    }


def send_monthly_summary(session: Session, *, now: datetime | None = None) -> int:
    """From the 1st of a month (lab time), queue last month's summary once; returns the emails queued.

    Nothing is sent for a month before the lab's first job. Several workers may run the sweep at
    once: the check and the queueing happen under the database's write lock (SQLite) or an advisory
    lock (PostgreSQL), so exactly one of them queues it.
    """
    now = now or utcnow()
    catalog = load_catalog(session)
    zone = catalog.lab.time_zone
    this_month = month_of(lab_day(now, zone), zone)
    last = month_of(this_month.first_day - timedelta(days=1), zone)
    before = month_of(last.first_day - timedelta(days=1), zone)
    month_began = lab_day_start(this_month.first_day, zone)
    # The sweep runs every minute: on all but one of them plain reads find nothing to do.
    if _queued_since(session, month_began):
        return 0
    if session.scalar(select(Job.id).where(Job.created_at < month_began).limit(1)) is None:
        return 0  # no month before the lab's first job is summarised
    with write_transaction(session):
        if is_postgresql(session):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext('printlab monthly summary'))"))
        if _queued_since(session, month_began):
            return 0  # another worker queued it meanwhile
        context = summary_context(
            build_report(session, last, Filters(), now=now),
            build_report(session, before, Filters(), now=now),
            now=now,
        )
        for recipient in catalog.lab.summary_recipients:
            outbox.enqueue_for_lab(session, TEMPLATE, recipient, now, **context)
        return len(catalog.lab.summary_recipients)


def _queued_since(session: Session, moment: datetime) -> bool:
    """Whether a monthly summary was queued at or after `moment`."""
    found = session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.template == TEMPLATE, OutboxMessage.created_at >= moment)
        .limit(1)
    )
    return found is not None
