"""When a job first reached each stage of a print, kept up to date by every status change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from printlab.models import MILESTONE_COLUMNS, Job, JobMilestone


def record_move(session: Session, job: Job, source: str, target: str, *, revert: bool, now: datetime) -> None:
    """Note the move in the job's milestone row, inside the move's own transaction.

    The same rule as domain.reports.milestones, which the migration filled existing jobs with: the
    first time a job reaches a stage stays; a revert forgets the time of the status it undoes.
    """
    column = MILESTONE_COLUMNS.get(source if revert else target)
    if column is None:
        return
    with session.no_autoflush:
        row = session.get(JobMilestone, job.id)
    if row is None:
        if revert:
            return
        row = JobMilestone(job_id=job.id)
        session.add(row)
    if revert:
        setattr(row, column, None)
    elif getattr(row, column) is None:
        setattr(row, column, now)
