"""Writing and reading the admin log: admin actions that concern no single job, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.history import admin_log_sentence
from printlab.models import AdminLogEntry
from printlab.services.lab.actors import CONSOLE


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


@dataclass(frozen=True)
class LogLine:
    """One admin-log entry as the Admin log page shows it: when, what in words, where."""

    id: int
    when: datetime
    sentence: str
    workstation: str | None


def _by(entry: AdminLogEntry) -> str | None:
    if entry.triggered_by:
        return entry.triggered_by
    return "the server console" if entry.workstation_id == CONSOLE else None


def recent_lines(session: Session, *, limit: int = 100, before_id: int | None = None) -> list[LogLine]:
    """Newest first, keyset-paged by id, each entry as a sentence (admin_log_sentence)."""
    return [
        LogLine(
            id=entry.id,
            when=entry.timestamp,
            sentence=admin_log_sentence(entry.action, entry.details, _by(entry)),
            workstation=entry.workstation_id if entry.workstation_id != CONSOLE else None,
        )
        for entry in recent(session, limit=limit, before_id=before_id)
    ]
