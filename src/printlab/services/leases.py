"""Outbox rows claimed by one worker at a time with a lease: the email outbox's and the webhooks' (cross-cutting).

A row has `status`, `next_attempt_at`, `attempts` and `claimed_by`. Claiming due rows takes them FOR
UPDATE SKIP LOCKED (on PostgreSQL; SQLite's write transaction serialises workers), counts one more
attempt, names the worker and moves `next_attempt_at` to the end of the lease, so no other worker
takes them until then; a worker that stops hands back what it didn't start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from printlab.db import write_transaction

Row = TypeVar("Row")


def claim(
    session: Session,
    model: type[Row],
    due: ColumnElement[bool],
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    prepare: Callable[[Row], None] = lambda row: None,
) -> list[int]:
    """Reserve up to `limit` rows matching `due` for `worker`, oldest due first; their ids. `prepare` sees
    each claimed row (in the claim's transaction) before its attempt is counted."""
    table: Any = model
    # A plain read first: an idle tick (the usual case) then takes no write lock, which on SQLite
    # would make a staff member's save wait behind it.
    anything = session.scalar(select(table.id).where(due).limit(1))
    session.rollback()
    if anything is None:
        return []
    with write_transaction(session):
        rows = session.scalars(
            select(table)
            .where(due)
            .order_by(table.next_attempt_at, table.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            prepare(row)
            row.attempts += 1
            row.claimed_by = worker
            row.next_attempt_at = now + lease
        return [row.id for row in rows]


def release(
    session: Session, model: type[Row], ids: list[int], *, pending: str, worker: str, now: datetime
) -> None:
    """Hand back rows `worker` claimed but didn't start (it is stopping): due again at once, the attempt
    not counted."""
    if not ids:
        return
    table: Any = model
    with write_transaction(session):
        rows = session.scalars(
            select(table)
            .where(table.id.in_(ids), table.status == pending, table.claimed_by == worker)
            .with_for_update()
        ).all()
        for row in rows:
            row.attempts = max(0, row.attempts - 1)
            row.claimed_by = None
            row.next_attempt_at = now


def lock(session: Session, model: type[Row], row_id: int) -> Row | None:
    """The row, locked for change and read afresh (another worker may have changed it)."""
    table: Any = model
    return session.scalars(
        select(table).where(table.id == row_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
