"""Writing and reading the admin log: admin actions that concern no single job, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.models import AdminLogEntry


def record(
    session: Session,
    action: str,
    details: dict[str, Any] | None = None,
    *,
    staff: str | None,
    workstation: str | None,
    now: datetime | None = None,
) -> AdminLogEntry:
    """Append an entry (no commit: part of the caller's unit of work)."""
    entry = AdminLogEntry(
        timestamp=now or utcnow(),
        action=action,
        details=details or None,
        triggered_by=staff,
        workstation_id=workstation,
    )
    session.add(entry)
    return entry


def recent(session: Session, *, limit: int = 200, before_id: int | None = None) -> list[AdminLogEntry]:
    """Newest first, keyset-paged by id."""
    query = select(AdminLogEntry).order_by(AdminLogEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AdminLogEntry.id < before_id)
    return list(session.scalars(query))
