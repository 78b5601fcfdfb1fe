"""The read model behind "My requests": a signed-in student's own jobs, newest first, in their words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printlab.domain.pricing import format_usd
from printlab.domain.statuses import Status
from printlab.domain.student_messages import CANCELLED_LABEL, STUDENT_LABEL, next_step, printing_label
from printlab.models import Job, JobAnalysis, Payment
from printlab.services.jobs.references import make_reference
from printlab.services.mail.delivery import job_short_id
from printlab.services.views.live_prints import LivePrint, live_prints

#: The most requests the page lists (a student sends a few a term; the newest are the ones that matter).
LIMIT = 100


@dataclass(frozen=True)
class MyRequest:
    """One of the student's jobs as the list shows it."""

    reference: str  # the signed reference of its status link
    simple_id: str
    file_name: str
    status: Status
    status_label: str  # the student's words ("Quote ready — please confirm")
    next_step: str  # what to do now ("Confirm your quote", "Ready for pickup — $4.20 to pay")
    #: The money part, labelled: "Quote $4.20", "Paid $3.65", or None before a quote.
    price: str | None
    submitted_at: datetime  # naive UTC; pages show it in the lab's time
    has_thumbnail: bool


@dataclass(frozen=True)
class MyRequests:
    requests: list[MyRequest]
    #: More jobs than LIMIT were sent from the address (the oldest aren't listed).
    more: bool


@dataclass(frozen=True)
class LastAnswers:
    """What the student typed on their newest submission, to fill in the form next time."""

    student_name: str
    student_email: str
    discipline: str
    class_number: str


def _own(email: str):  # type: ignore[no-untyped-def]
    # lower(student_email): the expression index ix_job_student_email_lower answers it (migration 0009).
    return func.lower(Job.student_email) == email.lower()


def my_requests(session: Session, email: str, secret_key: str) -> MyRequests:
    """The address's jobs, newest first (matched ignoring case), in four queries whatever their number
    (the fourth only when one prints: what its printer says)."""
    rows = session.execute(
        select(Job, JobAnalysis.thumbnail_png.is_not(None))
        .outerjoin(JobAnalysis, JobAnalysis.job_id == Job.id)
        .where(_own(email))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(LIMIT + 1)
    ).all()
    more = len(rows) > LIMIT
    rows = rows[:LIMIT]
    picked_up = [job.id for job, _ in rows if job.status in (Status.PAIDPICKEDUP, Status.ARCHIVED)]
    paid: dict[str, Decimal] = {}
    if picked_up:
        paid = dict(
            session.execute(  # type: ignore[arg-type]
                select(Payment.job_id, func.sum(Payment.charged_usd))
                .where(Payment.job_id.in_(picked_up))
                .group_by(Payment.job_id)
            ).all()
        )
    printing = [job.id for job, _ in rows if job.status == Status.PRINTING.value]
    live = live_prints(session, printing) if printing else {}
    requests = []
    for job, has_thumbnail in rows:
        status = job.status_enum
        reasons = job.reject_reasons if isinstance(job.reject_reasons, dict) else {}
        cancelled = bool(reasons.get("cancelled")) and status == Status.REJECTED
        quote = format_usd(Decimal(job.cost_usd)) if job.cost_usd is not None else None
        if job.id in paid:
            price: str | None = f"Paid {format_usd(Decimal(paid[job.id]))}"
        else:
            price = f"Quote {quote}" if quote else None
        requests.append(
            MyRequest(
                reference=make_reference(secret_key, job.id),
                simple_id=job_short_id(job.display_name, job.id) or job.id[:6],
                file_name=job.original_filename or "your model",
                status=status,
                status_label=_label(status, cancelled, live.get(job.id)),
                next_step=next_step(
                    status, cancelled=cancelled, quote_expired=bool(job.is_confirmation_expired), to_pay=quote
                ),
                price=price,
                submitted_at=job.created_at,  # type: ignore[arg-type]
                has_thumbnail=bool(has_thumbnail),
            )
        )
    session.rollback()  # end the read
    return MyRequests(requests, more)


def _label(status: Status, cancelled: bool, live: LivePrint | None) -> str:
    if cancelled:
        return CANCELLED_LABEL
    if status == Status.PRINTING:
        return printing_label(live.seconds_left if live is not None and live.printing else None)
    return STUDENT_LABEL[status]


def last_answers(session: Session, email: str) -> LastAnswers | None:
    """The name, email, discipline and class of the address's newest job (None: it sent none yet)."""
    row = session.execute(
        select(Job.student_name, Job.student_email, Job.discipline, Job.class_number)
        .where(_own(email))
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(1)
    ).first()
    session.rollback()
    if row is None:
        return None
    return LastAnswers(*(value or "" for value in row))
