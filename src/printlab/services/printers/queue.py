"""Each printer's queue: the Ready-to-Print jobs assigned to it, in the order staff set on the board
(`queue_place`), the unplaced ones after them, oldest confirmation first; and moving a job in it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from printlab.db import write_transaction
from printlab.domain.statuses import Status
from printlab.models import DashboardVersion, Job, QueuePlace
from printlab.services.errors import ConflictError, ValidationError
from printlab.services.lab.catalog import load_catalog

#: The most jobs one move may name as the queue it was shown (a lane is far shorter).
MAX_SEEN = 2000


class QueueChanged(ConflictError):
    """The queue isn't the one the page showed: someone moved a job, or one joined or left it."""


@dataclass(frozen=True)
class Moved:
    """What a move did, for the page's message: "Moved Jane's bracket to place 2 of 5"."""

    printer: str
    job_id: str
    display_name: str
    place: int
    total: int
    changed: bool


def queue_order() -> tuple[Any, ...]:
    """ORDER BY for Ready-to-Print jobs joined (outer) to their places: placed first by place, then
    the oldest confirmation (its creation when a confirmation time is missing), then the id."""
    return (
        case((QueuePlace.position.is_(None), 1), else_=0),
        QueuePlace.position,
        func.coalesce(Job.student_confirmed_at, Job.created_at),
        Job.id,
    )


def queued(session: Session, printer: str | None = None) -> list[Job]:
    """Ready-to-Print jobs in queue order, every printer's (grouped by the caller) or one printer's."""
    statement = (
        select(Job)
        .outerjoin(QueuePlace, QueuePlace.job_id == Job.id)
        .where(Job.status == Status.READYTOPRINT.value)
        .order_by(*queue_order())
    )
    if printer is not None:
        statement = statement.where(Job.printer == printer)
    return list(session.scalars(statement))


def move(session: Session, printer: str, job_id: str, to_place: int | None, *, seen: Sequence[str]) -> Moved:
    """Put the job at `to_place` (1 = next to print) in `printer`'s queue, the others keeping their order.

    `seen` is the queue's job ids in the order the page showed them. Raises ValidationError (an
    unknown printer, a job that isn't Ready to Print or is queued for another printer, a place outside
    the queue) and QueueChanged when the queue is no longer the one shown; either way nothing changes.
    """
    names = [p.name for p in load_catalog(session).printers]
    session.rollback()  # end the catalog's read; the move opens its own write transaction
    if printer not in names:
        raise ValidationError({"printer": "Choose one of the lab's printers."})
    if len(seen) > MAX_SEEN:
        raise ValidationError({"seen": "That queue is longer than any printer's; reload the board."})
    with write_transaction(session):
        # The lane's jobs locked (by id, one order for every mover), so two moves of one queue
        # take turns and the second sees the first's order.
        session.execute(
            select(Job.id)
            .where(Job.status == Status.READYTOPRINT.value, Job.printer == printer)
            .order_by(Job.id)
            .with_for_update()
        ).all()
        lane = queued(session, printer)
        ids = [job.id for job in lane]
        moving = next((job for job in lane if job.id == job_id), None)
        if moving is None:
            raise ValidationError({"job": _not_in_queue(session, job_id, printer)})
        if to_place is None or not 1 <= to_place <= len(ids):
            raise ValidationError({"place": f"Choose a place from 1 to {len(ids)} in {printer}'s queue."})
        if list(seen) != ids:
            raise QueueChanged(
                f"{printer}'s queue changed while you were looking (a job was moved, or one joined or "
                "left it). Nothing was moved: here it is as it is now; move the job again if you still need to."
            )
        name = moving.display_name or moving.original_filename or "The job"
        if ids.index(job_id) + 1 == to_place:
            return Moved(printer, job_id, name, to_place, len(ids), changed=False)
        ids.remove(job_id)
        ids.insert(to_place - 1, job_id)
        session.execute(delete(QueuePlace).where(QueuePlace.job_id.in_(ids)))
        # Places of jobs that left every queue (printing, sent back) would put them somewhere odd if
        # they came back; they are forgotten here, where places are written.
        session.execute(
            delete(QueuePlace).where(
                QueuePlace.job_id.in_(select(Job.id).where(Job.status != Status.READYTOPRINT.value))
            )
        )
        session.add_all(QueuePlace(job_id=queued_id, position=n) for n, queued_id in enumerate(ids, 1))
        # No job row changes, so the database's own triggers don't tell the board's and dashboard's
        # polls; the version row they read is bumped here, last, after the job rows are locked.
        session.execute(
            update(DashboardVersion)
            .where(DashboardVersion.id == 1)
            .values(version=DashboardVersion.version + 1)
        )
        return Moved(printer, job_id, name, to_place, len(ids), changed=True)


def _not_in_queue(session: Session, job_id: str, printer: str) -> str:
    """Why the job isn't in the printer's queue, in words."""
    job = session.get(Job, job_id) if job_id else None
    if job is None:
        return "That job isn't in PrintLab any more; reload the board."
    name = job.display_name or "That job"
    if job.status != Status.READYTOPRINT.value:
        return (
            f"{name} is {Status(job.status).label}, not {Status.READYTOPRINT.label}: only jobs waiting to "
            "print have a place in a queue. Nothing was moved."
        )
    return f"{name} is queued for {job.printer or 'no printer'}, not {printer}. Nothing was moved."
