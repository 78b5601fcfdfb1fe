"""The lab's scheduled work, run by the worker about once a minute: expiry, reminders, retention, held
files, and jobs whose student never sent the corrected file staff asked for.

Every sweep is idempotent and safe with several workers running it at the same moment: each
decides under the rows' locks (FOR UPDATE SKIP LOCKED on PostgreSQL, the write transaction on
SQLite) and checks what was already done (an event, an outbox row, the job's status) before acting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.catalog import Catalog
from printlab.domain.statuses import InvalidTransition, Status
from printlab.models import Job, OutboxMessage, Staff
from printlab.services.errors import ConflictError, NotAllowed, NotFound, ValidationError
from printlab.services.files import held_uploads
from printlab.services.files.storage import Storage
from printlab.services.jobs import student_actions, workflow
from printlab.services.jobs.records import entered_status_at
from printlab.services.lab.actors import Actor, is_admin
from printlab.services.lab.catalog import load_catalog
from printlab.services.mail import outbox
from printlab.services.students import sign_in
from printlab.services.upkeep import monthly_summary

log = logging.getLogger(__name__)

#: Sweeps run at most this often per worker (the worker itself ticks every second).
SWEEP_INTERVAL_SECONDS = 60.0
#: Jobs archived per run, so a first run over years of history doesn't hold up the worker.
ARCHIVE_BATCH = 100
#: Retention applies to jobs that ended in these statuses.
RETAINED = (Status.PAIDPICKEDUP, Status.REJECTED)


# -- quote expiry --------------------------------------------------------------------------------


def expire_quotes(session: Session, storage: Storage, *, now: datetime | None = None) -> int:
    """Mark expired quote links once each (ConfirmationExpired + the expired-quote notice)."""
    return workflow.expire_quotes(session, storage, now=now)


# -- pickup reminders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderPlan:
    """Which reminder (1 = first, 2 = last) a completed job is due, by the lab's settings."""

    job_id: str
    number: int
    completed_at: datetime


def _reminder_due(catalog: Catalog, completed_at: datetime, now: datetime) -> int | None:
    lab = catalog.lab
    hold_until = completed_at + timedelta(days=lab.hold_days)
    if now >= hold_until:
        return None  # "please collect it by <a day gone by>" helps nobody; staff take it from here
    final_from = hold_until - timedelta(days=lab.final_reminder_days_before_hold_ends)
    if lab.final_reminder_days_before_hold_ends > 0 and now >= final_from:
        return 2
    if lab.pickup_reminder_days > 0 and now >= completed_at + timedelta(days=lab.pickup_reminder_days):
        return 1
    return None


def _sent_reminders(session: Session, job_ids: list[str]) -> dict[str, list[tuple[datetime, int]]]:
    """The reminders already written for these jobs: (when, number), whatever became of them."""
    sent: dict[str, list[tuple[datetime, int]]] = {}
    if not job_ids:
        return sent
    rows = session.execute(
        select(OutboxMessage.job_id, OutboxMessage.created_at, OutboxMessage.context).where(
            OutboxMessage.job_id.in_(job_ids), OutboxMessage.template == "pickup_reminder"
        )
    ).all()
    for job_id, created_at, context in rows:
        number = context.get("reminder") if isinstance(context, dict) else None
        if isinstance(number, int):  # a staff member's resend ("resent") doesn't count
            sent.setdefault(job_id, []).append((created_at, number))
    return sent


def _plan(session: Session, catalog: Catalog, jobs: list[Job], now: datetime) -> list[ReminderPlan]:
    already = _sent_reminders(session, [job.id for job in jobs])
    plans = []
    for job in jobs:
        completed_at = entered_status_at(job)
        if completed_at is None:
            continue
        number = _reminder_due(catalog, completed_at, now)
        if number is None:
            continue
        # Only reminders written since this completion count (a revert and re-complete starts over);
        # a reminder is never sent twice, and never a first one after the last one.
        done = {n for when, n in already.get(job.id, []) if when >= completed_at}
        if done and max(done) >= number:
            continue
        plans.append(ReminderPlan(job.id, number, completed_at))
    return plans


def send_pickup_reminders(session: Session, *, now: datetime | None = None) -> int:
    """Queue the pickup reminders that are due; returns how many. Idempotent."""
    now = now or utcnow()
    catalog = load_catalog(session)
    lab = catalog.lab
    earliest = min(
        (
            d
            for d in (lab.pickup_reminder_days, lab.hold_days - lab.final_reminder_days_before_hold_ends)
            if d > 0
        ),
        default=None,
    )
    if earliest is None:
        return 0
    with write_transaction(session):
        # A job entered COMPLETED after it was created: younger jobs can't be due yet.
        jobs = list(
            session.scalars(
                select(Job)
                .where(Job.status == Status.COMPLETED.value, Job.created_at <= now - timedelta(days=earliest))
                .options(selectinload(Job.events))
                .with_for_update(skip_locked=True, of=Job)
            )
        )
        plans = _plan(session, catalog, jobs, now)
        by_id = {job.id: job for job in jobs}
        for plan in plans:
            outbox.enqueue(
                session,
                by_id[plan.job_id],
                "pickup_reminder",
                now,
                reminder=plan.number,
                final=plan.number == 2,
                completed_at=plan.completed_at.isoformat(),
            )
    if plans:
        log.info("queued %d pickup reminder(s)", len(plans))
    return len(plans)


# -- retention -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivePreview:
    """What a retention run would archive now."""

    cutoff: datetime
    after_days: int
    by_status: dict[str, int]
    job_ids: list[str] = field(repr=False)

    @property
    def total(self) -> int:
        return len(self.job_ids)


def archive_preview(session: Session, *, now: datetime | None = None) -> ArchivePreview:
    """Jobs Paid & Picked Up or Rejected for longer than the retention period (catalog, 90 days).

    The age counts from when the job reached that status (its audit trail), not from submission.
    """
    now = now or utcnow()
    catalog = load_catalog(session)
    cutoff = now - timedelta(days=catalog.archive_after_days)
    jobs = session.scalars(
        select(Job)
        .where(Job.status.in_([s.value for s in RETAINED]), Job.created_at <= cutoff)
        .options(selectinload(Job.events))
        .order_by(Job.created_at, Job.id)
    ).all()
    due = [job for job in jobs if (entered_status_at(job) or job.updated_at or now) <= cutoff]
    counts = {s.value: 0 for s in RETAINED}
    for job in due:
        counts[job.status or ""] += 1
    preview = ArchivePreview(cutoff, catalog.archive_after_days, counts, [job.id for job in due])
    session.rollback()  # end the read: archiving takes its own write transactions
    return preview


def archive_due(
    session: Session,
    storage: Storage,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
    limit: int = ARCHIVE_BATCH,
) -> int:
    """Archive what the preview shows (up to `limit` jobs). Returns how many.

    The scheduled run acts as PrintLab itself; an admin running it from the retention page acts
    under their own name (and must be active staff at an admin workstation: ValidationError,
    NotAllowed). A job someone is editing right now is left for the next run.
    """
    now = now or utcnow()
    actor = actor or Actor.system()
    if actor != Actor.system():  # a person at a workstation: named, active, admin
        member = session.get(Staff, actor.staff) if actor.staff else None
        if member is None or not member.is_active:
            raise ValidationError({"acting_as": "Choose who is acting (an active staff member)."})
        if not is_admin(session, actor):
            raise NotAllowed("Only an admin workstation can archive jobs.")
    archived = 0
    for job_id in archive_preview(session, now=now).job_ids[:limit]:
        try:
            workflow.archive(session, storage, job_id, actor=actor, now=now)
        except (InvalidTransition, ConflictError, NotFound):
            continue  # another worker (or an admin) got there first, or the job changed meanwhile
        except Exception:  # one job's files must not stop the others; the next run tries it again
            log.exception("archiving job %s failed", job_id)
            continue
        archived += 1
    if archived:
        log.info("archived %d job(s) past the retention period", archived)
    return archived


# -- the worker's periodic job -------------------------------------------------------------------


@dataclass
class SweepReport:
    expired: int = 0
    reminders: int = 0
    archived: int = 0
    unanswered: int = 0
    held_removed: int = 0
    summaries: int = 0
    sign_ins_forgotten: int = 0
    errors: list[str] = field(default_factory=list)


def run_sweeps(session: Session, storage: Storage, *, now: datetime | None = None) -> SweepReport:
    """Every sweep once; one failing (logged) doesn't keep the others from running."""
    report = SweepReport()
    steps: list[tuple[str, Callable[[], int]]] = [
        ("expired", lambda: expire_quotes(session, storage, now=now)),
        ("reminders", lambda: send_pickup_reminders(session, now=now)),
        ("archived", lambda: archive_due(session, storage, now=now)),
        ("unanswered", lambda: student_actions.reject_unanswered(session, storage, now=now)),
        ("held_removed", lambda: held_uploads.sweep(storage, now=now)),
        ("summaries", lambda: monthly_summary.send_monthly_summary(session, now=now)),
        ("sign_ins_forgotten", lambda: sign_in.forget_spent(session, now=now)),
    ]
    for name, step in steps:
        try:
            setattr(report, name, step())
        except Exception as exc:
            session.rollback()
            log.exception("sweep %s failed", name)
            report.errors.append(f"{name}: {type(exc).__name__}: {exc}")
    return report


@dataclass
class Sweeper:
    """Runs the sweeps from the worker's tick, at most once per `interval_seconds`."""

    storage: Storage
    interval_seconds: float = SWEEP_INTERVAL_SECONDS
    clock: Callable[[], float] = time.monotonic
    _last_run: float | None = field(default=None, init=False)

    def __call__(self, session: Session) -> SweepReport | None:
        moment = self.clock()
        if self._last_run is not None and moment - self._last_run < self.interval_seconds:
            return None
        self._last_run = moment
        return run_sweeps(session, self.storage)
