"""Staff sending one of a job's emails again: the quote with a fresh link, or another message queued anew."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage
from printlab.services.errors import ValidationError
from printlab.services.files.storage import Storage
from printlab.services.jobs import workflow
from printlab.services.jobs.records import lock_job
from printlab.services.jobs.status_change import Expected, check_expected
from printlab.services.lab.actors import Actor, require_active_staff
from printlab.services.mail import outbox


def _require_active_staff(session: Session, staff: str | None) -> str:
    require_active_staff(session, Actor(staff, None))
    return staff or ""


#: Which messages staff can send again, and for which jobs (beyond the quote, which gets a new link).
_RESENDABLE: dict[str, Callable[[Job], bool]] = {
    "receipt": lambda job: True,
    "confirmed": lambda job: (
        bool(job.student_confirmed) and job.status in (Status.READYTOPRINT, Status.PRINTING, Status.COMPLETED)
    ),
    "rejected": lambda job: job.status == Status.REJECTED,
    "ready_for_pickup": lambda job: job.status == Status.COMPLETED,
    "pickup_reminder": lambda job: job.status == Status.COMPLETED,
    "quote_expired": lambda job: job.status == Status.PENDING and job.is_confirmation_expired,
    "payment_receipt": lambda job: job.status == Status.PAIDPICKEDUP,
}


def resendable(job: Job) -> list[str]:
    """The messages the job page can offer to send again for this job, quote first."""
    offered = ["quote"] if job.status == Status.PENDING else []
    return offered + [name for name, fits in _RESENDABLE.items() if fits(job)]


def resend(
    session: Session,
    storage: Storage,
    job_id: str,
    template: str,
    *,
    staff: str | None,
    workstation: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Queue one of the job's emails again, attributed to the staff member.

    The quote gets a fresh confirm link (the old one stops working). Raises NotFound,
    ValidationError (unknown message, one that doesn't fit the job's status, no active staff),
    StaleJob (the page the staff member saw is out of date) and, for the quote, JobLocked.
    """
    now = now or utcnow()
    if template == "quote":
        with write_transaction(session):  # a person resends; without a name it would count as the student
            _require_active_staff(session, staff)
        workflow.resend_quote(
            session, storage, job_id, actor=Actor(staff, workstation), expected=expected, now=now
        )
        found = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.job_id == job_id, OutboxMessage.template == "quote")
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        ).one()
        return found
    if template not in _RESENDABLE:
        raise ValidationError({"template": "Choose one of the job's emails."})
    with write_transaction(session):
        name = _require_active_staff(session, staff)
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        if not _RESENDABLE[template](job):
            raise ValidationError(
                {"template": f"That email doesn't fit a job that is {job.status_enum.label}."}
            )
        context: dict[str, Any] = {"requested_by": name}
        if template == "pickup_reminder":
            context["reminder"] = "resent"
        message = outbox.enqueue(session, job, template, now, **context)
        if message is None:
            raise ValidationError({"template": "This job has no email address to write to."})
    return message
