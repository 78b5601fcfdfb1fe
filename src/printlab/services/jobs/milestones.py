"""When a job first reached each stage of a print, kept up to date by every status change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from printlab.domain.reports import stage_hours
from printlab.domain.statuses import Status
from printlab.models import MILESTONE_COLUMNS, STAGE_HOURS_COLUMNS, Job, JobMilestone


def record_move(
    session: Session,
    job: Job,
    source: str,
    target: str,
    *,
    revert: bool,
    now: datetime,
    printed: tuple[float | None, float | None] | None = None,
) -> None:
    """Note the move in the job's milestone row, inside the move's own transaction.

    The same rule as domain.reports.milestones, which the migration filled existing jobs with: the
    first time a job reaches a stage stays; a revert forgets the time of the status it undoes.
    Reaching Completed also notes what the printer reported for the print (`printed`: hours and grams
    from a connected printer, None for a print marked complete by hand); undoing it forgets them.
    """
    column = MILESTONE_COLUMNS.get(source if revert else target)
    with session.no_autoflush:
        row = session.get(JobMilestone, job.id)
    if row is None:
        if column is None or revert:
            return  # nothing reached yet (a rejection of an upload): no row
        row = JobMilestone(job_id=job.id, uploaded_at=job.created_at)
        session.add(row)
    _copy_job(row, job)
    if target == Status.COMPLETED.value and not revert:
        row.printed_hours, row.printed_g = printed if printed is not None else (None, None)
    elif revert and source == Status.COMPLETED.value:
        row.printed_hours = row.printed_g = None
    if column is None:
        return
    if revert:
        setattr(row, column, None)
    elif getattr(row, column) is None:
        setattr(row, column, now)
    reached = {Status.UPLOADED.value: row.uploaded_at}
    reached.update({status: getattr(row, name) for status, name in MILESTONE_COLUMNS.items()})
    for name, hours in zip(STAGE_HOURS_COLUMNS, stage_hours(reached), strict=True):
        setattr(row, name, hours)


def record_rebuilt(session: Session, job: Job) -> None:
    """The milestone row of a job rebuilt from its sidecar (an integrity repair), in the repair's
    transaction.

    The event trail that said when the job reached each stage was lost with its row, so only the
    upload time and the copies are known: a job in a status past Uploaded gets its row (as every
    such job has one), with no stage times, and counts in the reports from its next move on. A
    rejected or archived job may never have been approved: like a rejected upload, no row.
    """
    if job.status not in MILESTONE_COLUMNS:
        return
    row = JobMilestone(job_id=job.id, uploaded_at=job.created_at)
    _copy_job(row, job)
    session.add(row)


def _copy_job(row: JobMilestone, job: Job) -> None:
    """The job's own figures as of this change (a quote, an edit or the printer chosen at the start),
    and what a report may be narrowed to."""
    row.printer, row.material = job.printer, job.material
    row.time_hours, row.weight_g = job.time_hours, job.weight_g
    row.discipline, row.class_number = job.discipline, job.class_number
