"""Retention's last step: archived jobs past the prune period lose their files and the student's
personal data; the job row, its events and its payments stay for the lab's records."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.naming import extension_of, name_part
from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage, Payment
from printlab.services.files.storage import Storage
from printlab.services.jobs.records import add_event, entered_status_at, job_files, lock_job
from printlab.services.lab.actors import Actor, require_active_staff, require_admin
from printlab.services.lab.catalog import load_catalog

log = logging.getLogger(__name__)

#: What a pruned job's personal fields become. The email column keeps no address at all.
REMOVED = "(removed)"


@dataclass(frozen=True)
class PrunePlan:
    cutoff: datetime
    job_ids: list[str]

    @property
    def count(self) -> int:
        return len(self.job_ids)


def archived_at(job: Job) -> datetime | None:
    """When the job reached ARCHIVED: its audit trail's last move there, whichever way it came (the
    retention sweep's JobArchived, an admin override), else its version (a row rebuilt from its
    sidecar has no events; nothing but a status change moves an archived job's version)."""
    return entered_status_at(job) or job.updated_at


def _due(session: Session, cutoff: datetime) -> list[str]:
    # Archived and not yet pruned: in steady state only what was archived within the prune period.
    jobs = session.scalars(
        select(Job)
        .where(Job.status == Status.ARCHIVED.value, Job.student_email.is_not(None))
        .options(selectinload(Job.events))
    ).all()
    due = [(at, job.id) for job in jobs if (at := archived_at(job)) is not None and at < cutoff]
    return [job_id for _at, job_id in sorted(due)]


def plan(session: Session, *, now: datetime | None = None) -> PrunePlan:
    """Which archived jobs are past the prune period (archived more than N days ago, not yet pruned)."""
    catalog = load_catalog(session)
    cutoff = (now or utcnow()) - timedelta(days=catalog.prune_after_days)
    ids = _due(session, cutoff)
    session.rollback()
    return PrunePlan(cutoff=cutoff, job_ids=ids)


def prune(
    session: Session,
    storage: Storage,
    *,
    actor: Actor | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Prune up to `limit` due jobs, each in its own transaction (FileDeleted per job). Returns how many.

    Run by an admin (actor at an admin workstation) or by the scheduled sweep (actor None). Safe to
    run twice or from several workers: a pruned job no longer matches, and each job is row-locked.
    """
    now = now or utcnow()
    due = plan(session, now=now)
    done = 0
    for job_id in due.job_ids[:limit]:
        names = _prune_one(session, storage, job_id, actor=actor, cutoff=due.cutoff, now=now)
        if names is None:
            continue
        removed = storage.delete(storage.resolve(name) for name in names)
        log.info("pruned job %s (%d files removed)", job_id, len(removed))
        done += 1
    return done


def _prune_one(
    session: Session, storage: Storage, job_id: str, *, actor: Actor | None, cutoff: datetime, now: datetime
) -> list[str] | None:
    with write_transaction(session):
        if actor is not None:
            require_active_staff(session, actor)
            require_admin(session, actor)
        job = lock_job(session, job_id)
        if job.status != Status.ARCHIVED.value or job.student_email is None:
            return None  # pruned or moved by someone else meanwhile
        at = archived_at(job)
        if at is None or at >= cutoff:
            return None  # brought back and archived again meanwhile
        names = job_files(storage, job)
        simple = (job.display_name or job.id).rsplit("_", 1)[-1]
        add_event(
            session, job, "FileDeleted",
            {"retention": "pruned", "files": len(names), "archived_before": cutoff.isoformat()},
            triggered_by=actor.staff if actor else None, workstation_id=actor.workstation if actor else None, now=now,
        )  # fmt: skip
        job.student_name = REMOVED
        job.student_email = None
        job.original_filename = f"{REMOVED}{extension_of(job.original_filename or '')}"
        job.display_name = "_".join(
            ("Pruned", name_part(job.material or "", "Method"), name_part(job.color or "", "Color"), simple)
        )
        job.file_path = None
        job.metadata_path = None
        for part in job.parts:  # a part's file name may carry the student's name too
            part.original_filename = f"{REMOVED}{extension_of(part.original_filename)}"
        session.execute(update(Payment).where(Payment.job_id == job.id).values(picked_up_by=None))
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.job_id == job.id)
            .values(recipient=REMOVED, context=None)
        )
    return names
