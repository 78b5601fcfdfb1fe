"""Staff members: added, deactivated and reactivated, never deleted; the names actions are attributed to."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.models import Staff
from printlab.services.errors import NotFound, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console

MAX_NAME = 100


def clean_name(name: str) -> str:
    """Collapse inner whitespace; refuse empty or over-long names."""
    cleaned = " ".join(checked_text(name, "name", "The name").split())
    if len(cleaned) < 2:
        raise ValidationError({"name": "Enter the staff member's full name."})
    if len(cleaned) > MAX_NAME:
        raise ValidationError({"name": f"Names can be at most {MAX_NAME} characters."})
    return cleaned


def add_staff(session: Session, name: str, *, by: Actor | None = None) -> Staff:
    """Add an active staff member (logged). Raises ValidationError if the name is taken or unusable."""
    name = clean_name(name)
    with write_transaction(session):
        by = admin_or_console(session, by)
        if session.get(Staff, name) is not None:
            raise ValidationError({"name": f"{name} is already on the staff list."})
        staff = Staff(name=name, is_active=True, added_at=utcnow())
        session.add(staff)
        admin_log.record(session, "StaffAdded", {"name": name}, staff=by.staff, workstation=by.workstation)
    return staff


def set_active(session: Session, name: str, active: bool, *, by: Actor | None = None) -> Staff:
    """Deactivate (hide from "Acting as", keep on history) or reactivate (logged). Raises NotFound."""
    with write_transaction(session):
        by = admin_or_console(session, by)
        staff = session.get(Staff, name)
        if staff is None:
            raise NotFound(f"No staff member named {name!r}.")
        if bool(staff.is_active) != active:
            staff.is_active = active
            staff.deactivated_at = None if active else utcnow()
            action = "StaffReactivated" if active else "StaffDeactivated"
            admin_log.record(session, action, {"name": name}, staff=by.staff, workstation=by.workstation)
    return staff


def recently_added(staff: Staff, now: datetime, days: int = 7) -> bool:
    """Newly added names are highlighted in "Acting as" for a week, so people find themselves."""
    return staff.added_at is not None and now - staff.added_at < timedelta(days=days)


def list_staff(session: Session, *, active_only: bool = False) -> list[Staff]:
    query = select(Staff).order_by(Staff.name)
    if active_only:
        query = query.where(Staff.is_active.is_(True))
    return list(session.scalars(query))
