"""Background tasks in the database: enqueued inside a caller's transaction, claimed by exactly one worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.models import Job, Task, TaskStatus

log = logging.getLogger(__name__)

#: How long a claimed task is reserved; if its worker dies, the task is due again after this.
LEASE = timedelta(minutes=5)
#: Waits before each retry; after the last one the task is marked FAILED.
BACKOFF = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(hours=1))

Handler = Callable[[Session, Task], None]


class RetryLater(Exception):
    """A handler's signal that the work can't be done right now but may succeed later."""


def enqueue(
    session: Session,
    kind: str,
    *,
    job: Job | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime,
) -> Task:
    """Add a task to the caller's unit of work (no commit here)."""
    task = Task(
        kind=kind,
        job_id=job.id if job is not None else None,
        payload=payload,
        status=TaskStatus.PENDING,
        attempts=0,
        run_after=now,
        created_at=now,
    )
    session.add(task)
    return task


def claim(
    session: Session, *, now: datetime | None = None, kinds: tuple[str, ...] | None = None
) -> Task | None:
    """Reserve the oldest due task for this worker, or None.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets several workers claim side by side without waiting
    on or double-taking each other's rows; SQLite's write transaction serialises the claim.
    """
    now = now or utcnow()
    with write_transaction(session):
        query = (
            select(Task)
            .where(Task.status == TaskStatus.PENDING, Task.run_after <= now)
            .order_by(Task.run_after, Task.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if kinds:
            query = query.where(Task.kind.in_(kinds))
        task = session.scalars(query).first()
        if task is None:
            return None
        task.attempts += 1
        task.run_after = now + LEASE
    return task


def finish(session: Session, task_id: int, *, now: datetime | None = None) -> None:
    with write_transaction(session):
        task = session.get(Task, task_id, with_for_update=True)
        if task is not None:
            task.status = TaskStatus.DONE
            task.finished_at = now or utcnow()
            task.last_error = None


def fail(
    session: Session, task_id: int, error: str, *, now: datetime | None = None, final: bool = False
) -> bool:
    """Record a failed attempt; schedule a retry with backoff, or mark FAILED. Returns True if final."""
    now = now or utcnow()
    with write_transaction(session):
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            return True
        task.last_error = error[:2000]
        if final or task.attempts > len(BACKOFF):
            task.status = TaskStatus.FAILED
            task.finished_at = now
            return True
        task.run_after = now + BACKOFF[task.attempts - 1]
        return False


def run_one(session: Session, handlers: dict[str, Handler], *, now: datetime | None = None) -> bool:
    """Claim and run one due task. Returns False when nothing was due."""
    task = claim(session, now=now, kinds=tuple(handlers))
    if task is None:
        return False
    task_id, kind = task.id, task.kind
    try:
        handlers[kind](session, task)
    except RetryLater as exc:
        session.rollback()
        fail(session, task_id, str(exc) or "retry later", now=now)
    except Exception as exc:
        session.rollback()
        log.exception("task %s (%s) failed", task_id, kind)
        fail(session, task_id, f"{type(exc).__name__}: {exc}", now=now)
    else:
        finish(session, task_id, now=now)
    return True
