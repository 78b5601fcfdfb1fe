"""Job locks: an open action dialog holds its job for 5 minutes (extended while open) so others can't act.

Taking, extending and releasing a lock does not change the job's version (`updated_at`): an open
dialog must not make another workstation's view of the job stale.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.models import Job
from printlab.services.errors import JobLocked, ValidationError
from printlab.services.files.storage import Storage
from printlab.services.jobs.records import add_event, lock_job, rewrite_sidecar
from printlab.services.jobs.status_change import (
    LOCK_MINUTES,
    Expected,
    check_expected,
    checked_reason,
    next_version,
)
from printlab.services.lab.actors import Actor, require_active_staff, require_admin


def _set_lock(session: Session, job_id: str, holder: str | None, until: datetime | None) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(locked_by=holder, locked_until=until, updated_at=Job.updated_at)
        .execution_options(synchronize_session="fetch")
    )


def take(session: Session, job_id: str, *, actor: Actor, now: datetime | None = None) -> datetime:
    """Take (or extend, if already ours) the job's lock; returns when it expires.

    Raises JobLocked while another staff member's lock is live; an expired lock is simply taken over.
    """
    now = now or utcnow()
    with write_transaction(session):
        require_active_staff(session, actor)
        job = lock_job(session, job_id)
        if job.locked_by and job.locked_by != actor.staff and job.locked_until and job.locked_until > now:
            raise JobLocked(job.locked_by, job.locked_until)
        until = now + timedelta(minutes=LOCK_MINUTES)
        _set_lock(session, job_id, actor.staff, until)
    return until


def release(session: Session, job_id: str, *, actor: Actor) -> None:
    """Release the lock if `actor` holds it (closing a dialog); someone else's lock is left alone."""
    with write_transaction(session):
        job = lock_job(session, job_id)
        if job.locked_by == actor.staff:
            _set_lock(session, job_id, None, None)


def break_lock(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> None:
    """Admin: clear someone's lock, with a reason (AdminOverride event). A stale page raises StaleJob."""
    now = now or utcnow()
    text = checked_reason(reason)
    with write_transaction(session):
        require_active_staff(session, actor)
        require_admin(session, actor)
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        if not job.locked_by:
            raise ValidationError({"job": "The job is not locked."})
        add_event(
            session,
            job,
            "AdminOverride",
            {"override": "break_lock", "was_locked_by": job.locked_by, "reason": text},
            triggered_by=actor.staff,
            workstation_id=actor.workstation,
            now=now,
        )
        # Unlike releasing, breaking moves the job's version: the dialog that held the lock may still
        # be open somewhere, and its next submit must be refused as stale rather than go through.
        job.locked_by, job.locked_until = None, None
        job.updated_at = next_version(job, now)
        rewrite_sidecar(storage, job)
