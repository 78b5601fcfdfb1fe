"""Guarding workstation sign-in: wrong passwords counted per (workstation, address) with growing waits,
a lab-wide ceiling per workstation, failures in the admin log, and an admin letting a workstation in again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain import sign_in as rules
from printlab.domain.text import is_clean
from printlab.models import SignInThrottle, Workstation
from printlab.services.errors import NotFound
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor
from printlab.services.lab.workstations import log_admin_action

#: Longer than any address people use (an IPv6 address with a zone is under 64 characters).
MAX_ADDRESS = 64


def _address(address: str | None) -> str:
    return (address or "unknown")[:MAX_ADDRESS]


def _printable(name: str) -> str:
    """A typed name fit for the admin log: control characters (a NUL, say) shown as '?'."""
    return "".join(c if c.isprintable() else "?" for c in name)


def wait_for(
    session: Session, workstation_id: str, address: str | None, *, now: datetime | None = None
) -> timedelta | None:
    """How long this address must still wait before a sign-in to the workstation is checked (None: now)."""
    now = now or utcnow()
    workstation_id = workstation_id.strip()
    if not is_clean(workstation_id):  # no workstation has such a name (and PostgreSQL can't compare NUL)
        return None
    row = session.get(SignInThrottle, (workstation_id, _address(address)))
    waits = []
    if row is not None and row.blocked_until is not None and row.blocked_until > now:
        waits.append(row.blocked_until - now)
    recent, last = session.execute(
        select(
            func.coalesce(func.sum(SignInThrottle.failures), 0), func.max(SignInThrottle.last_failure_at)
        ).where(
            SignInThrottle.workstation_id == workstation_id,
            SignInThrottle.last_failure_at > now - rules.CEILING_WINDOW,
        )
    ).one()
    if recent >= rules.LAB_WIDE_CEILING and last is not None:
        waits.append(last + rules.CEILING_WINDOW - now)
    return max(waits) if waits else None


def record_failure(
    session: Session, workstation_id: str, address: str | None, *, now: datetime | None = None
) -> None:
    """Count a wrong password and log it; the count (and its wait) is kept only for a real workstation."""
    now = now or utcnow()
    workstation_id = workstation_id.strip()[:100]
    address = _address(address)
    with write_transaction(session):
        admin_log.record(
            session,
            "SignInFailed",
            {"workstation": _printable(workstation_id), "address": address},
            staff=None,
            workstation=None,
            now=now,
        )
        if not is_clean(workstation_id) or session.get(Workstation, workstation_id) is None:
            return  # an unknown name: the per-address request limit is what stops guessing
        row = session.get(SignInThrottle, (workstation_id, address), with_for_update=True)
        if row is None:
            row = SignInThrottle(
                workstation_id=workstation_id, address=address, failures=0, last_failure_at=now
            )
            session.add(row)
        elif row.last_failure_at <= now - rules.FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        delay = rules.delay_after(row.failures)
        row.blocked_until = now + delay if delay else None


def record_success(session: Session, workstation_id: str, address: str | None) -> None:
    """A right password: this address starts again from nothing for this workstation."""
    with write_transaction(session):
        session.execute(
            delete(SignInThrottle).where(
                SignInThrottle.workstation_id == workstation_id.strip(),
                SignInThrottle.address == _address(address),
            )
        )


@dataclass(frozen=True)
class LockedOut:
    """A workstation that an address (or, past the lab-wide ceiling, everyone) can't sign in to now."""

    workstation_id: str
    address: str
    failures: int
    until: datetime


def locked_out(session: Session, *, now: datetime | None = None) -> list[LockedOut]:
    """Every (workstation, address) that is waiting now, for the admin Workstations page."""
    now = now or utcnow()
    rows = session.scalars(
        select(SignInThrottle)
        .where(SignInThrottle.last_failure_at > now - max(rules.MAX_DELAY, rules.CEILING_WINDOW))
        .order_by(SignInThrottle.workstation_id, SignInThrottle.address)
    ).all()
    found = []
    for row in rows:
        wait = wait_for(session, row.workstation_id, row.address, now=now)
        if wait is not None:
            found.append(LockedOut(row.workstation_id, row.address, row.failures, now + wait))
    return found


def let_sign_in_again(session: Session, workstation_id: str, *, by: Actor | None = None) -> int:
    """Forget every wrong password counted for the workstation (an admin's call; None: the console).

    Returns how many addresses were waiting. Raises NotFound, ValidationError (no active staff
    member acting), NotAllowed (not an admin workstation).
    """
    with write_transaction(session):
        if session.get(Workstation, workstation_id) is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        cleared = session.execute(
            delete(SignInThrottle).where(SignInThrottle.workstation_id == workstation_id)
        ).rowcount
        log_admin_action(session, by, "WorkstationSignInReleased", {"workstation": workstation_id})
    return cleared or 0
