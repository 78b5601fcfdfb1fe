"""Writing emails to the outbox, always inside the caller's transaction; delivery happens elsewhere."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from printlab.models import Job, OutboxMessage, OutboxStatus

#: Every message the lab sends (SPEC §8). Each has an HTML and a plain-text template.
TEMPLATES = (
    "receipt",
    "quote",
    "confirmed",
    "rejected",
    "ready_for_pickup",
    "pickup_reminder",
    "quote_expired",
    "payment_receipt",
    "payment_refund",
    "withdrawn",
    "changes_needed",
    "changes_expired",
)
#: Emails to the lab itself, about no one job (the monthly summary to its admins).
LAB_TEMPLATES = ("monthly_summary",)
#: Emails to a student about no one job (the "See my requests" sign-in link).
STUDENT_TEMPLATES = ("sign_in_link",)


def enqueue(session: Session, job: Job, template: str, now: datetime, **context: Any) -> OutboxMessage | None:
    """Add an email for the job's student to the outbox (no flush, no commit: the caller's unit of work).

    Returns None when the job has no email address to write to.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}")
    if not job.student_email:
        return None
    return _waiting(session, job.id, template, job.student_email, now, context)


def enqueue_for_lab(
    session: Session, template: str, recipient: str, now: datetime, **context: Any
) -> OutboxMessage:
    """Add an email to the lab's own address (no job), in the caller's unit of work."""
    if template not in LAB_TEMPLATES:
        raise ValueError(f"unknown lab email template {template!r}")
    return _waiting(session, None, template, recipient, now, context)


def enqueue_for_student(
    session: Session, template: str, recipient: str, now: datetime, **context: Any
) -> OutboxMessage:
    """Add an email to a student's address about no one job, in the caller's unit of work."""
    if template not in STUDENT_TEMPLATES:
        raise ValueError(f"unknown student email template {template!r}")
    return _waiting(session, None, template, recipient, now, context)


def _waiting(
    session: Session,
    job_id: str | None,
    template: str,
    recipient: str,
    now: datetime,
    context: dict[str, Any],
) -> OutboxMessage:
    message = OutboxMessage(
        job_id=job_id,
        template=template,
        recipient=recipient,
        context=context or None,
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(message)
    return message
