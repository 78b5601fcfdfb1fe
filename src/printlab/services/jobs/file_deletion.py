"""An admin deleting a job's files from the lab's storage: confirmed by name, evented, database first."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.services.errors import ValidationError
from printlab.services.files.storage import Storage
from printlab.services.jobs.records import add_event, job_files, lock_job
from printlab.services.jobs.status_change import Expected, check_expected, checked_reason, next_version
from printlab.services.lab.actors import Actor, require_active_staff, require_admin

log = logging.getLogger(__name__)


def delete_job_files(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    reason: str,
    confirmed: list[str],
    expected: Expected | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Delete every file of the job (FileDeleted). Returns the root-relative names removed.

    `confirmed` must be exactly the files the admin was shown, so nothing unseen is deleted. The
    row stops pointing at the files in the same commit that records the event; the files are
    removed after it, so a crash leaves at most unreferenced files that the integrity check finds.
    The job's version moves. Raises ValidationError, NotAllowed, NotFound, StaleJob (a stale page).
    """
    text = checked_reason(reason)
    now = now or utcnow()
    with write_transaction(session):
        require_active_staff(session, actor)
        require_admin(session, actor)
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        names = job_files(storage, job)
        if not names:
            raise ValidationError({"files": "This job has no files on the lab's storage."})
        if sorted(confirmed) != sorted(names):
            raise ValidationError(
                {"files": "The job's files changed since you looked. Check the list again."}
            )
        prefix = job.display_name or ""
        add_event(
            session, job, "FileDeleted",
            # file names minus the student's part: events hold no personal data
            {"files": sorted(_without_name(name, prefix) for name in names), "reason": text},
            triggered_by=actor.staff, workstation_id=actor.workstation, now=now,
        )  # fmt: skip
        job.file_path = None
        job.metadata_path = None
        job.last_updated_by = actor.staff
        job.updated_at = next_version(job, now)
    removed = storage.delete(storage.resolve(name) for name in names)
    log.info("deleted %d files of job %s", len(removed), job_id)
    return removed


def _without_name(relative: str, prefix: str) -> str:
    """'Pending/JaneDoe_..._a1b2c3.stl' → 'Pending/….stl': the folder and what follows the name."""
    folder, _, name = relative.rpartition("/")
    return f"{folder}/…{name.removeprefix(prefix)}" if prefix else relative
