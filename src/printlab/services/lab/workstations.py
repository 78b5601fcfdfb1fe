"""Lab computers: each signs in with its own shared password (argon2-hashed); some are admin workstations.

A session is valid only while it carries the workstation's current `session_epoch`: signing out,
resetting the password and deactivating move the epoch on, which ends every session at once.
"""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.text import is_clean
from printlab.models import Workstation
from printlab.services.errors import NotAllowed, NotFound, ValidationError
from printlab.services.lab import admin_log
from printlab.services.lab.actors import (  # noqa: F401 - is_admin_workstation re-exported
    CONSOLE,
    CONSOLE_ACTOR,
    Actor,
    is_admin_workstation,
    require_active_staff,
    require_admin,
)

MIN_PASSWORD = 10
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")
_hasher = PasswordHasher()
# Letters and digits people can read off a sticky note without confusing 0/O or 1/l.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def generate_password() -> str:
    """A readable random password, e.g. 'k7dm-p3qx-w9ht-4rfa' (about 78 bits)."""
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError({"password": f"Use at least {MIN_PASSWORD} characters."})


def add_workstation(
    session: Session, workstation_id: str, password: str, *, is_admin: bool = False, by: Actor | None = None
) -> Workstation:
    """Register a lab computer. Raises ValidationError for a bad or taken id or a short password."""
    workstation_id = workstation_id.strip()
    if not _ID.fullmatch(workstation_id) or workstation_id == CONSOLE:
        raise ValidationError({"id": "Use letters, digits, spaces, dots, dashes or underscores (max 100)."})
    _check_password(password)
    with write_transaction(session):
        if session.get(Workstation, workstation_id) is not None:
            raise ValidationError({"id": f"Workstation {workstation_id} already exists."})
        workstation = Workstation(
            id=workstation_id, password_hash=_hasher.hash(password), is_admin=is_admin, added_at=utcnow()
        )
        session.add(workstation)
        log_admin_action(session, by, "WorkstationAdded", {"workstation": workstation_id, "admin": is_admin})
    return workstation


def reset_password(session: Session, workstation_id: str, password: str, *, by: Actor | None = None) -> None:
    _check_password(password)
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id)
        if workstation is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        workstation.password_hash = _hasher.hash(password)
        workstation.session_epoch += 1  # whoever knew the old password is signed out now
        log_admin_action(session, by, "WorkstationPasswordReset", {"workstation": workstation_id})


def set_active(session: Session, workstation_id: str, active: bool, *, by: Actor | None = None) -> None:
    """Deactivate a lab computer (its sessions end, it can't sign in) or bring it back. Logged once."""
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id)
        if workstation is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        if workstation.is_active == active:
            return
        workstation.is_active = active
        if not active:
            workstation.session_epoch += 1
        action = "WorkstationReactivated" if active else "WorkstationDeactivated"
        log_admin_action(session, by, action, {"workstation": workstation_id})


def end_sessions(session: Session, workstation_id: str, epoch: int | None) -> None:
    """Sign-out: end every session of the workstation, if `epoch` (the signing-out session's) is current.

    A session that has already ended can't end the ones started after it.
    """
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id, with_for_update=True)
        if workstation is not None and epoch is not None and workstation.session_epoch == epoch:
            workstation.session_epoch += 1


def session_is_current(workstation: Workstation | None, epoch: object) -> bool:
    """Whether a session issued at `epoch` for this workstation still lets it in."""
    return (
        workstation is not None
        and workstation.is_active
        and isinstance(epoch, int)
        and epoch == workstation.session_epoch
    )


def set_admin(session: Session, workstation_id: str, is_admin: bool, *, by: Actor | None = None) -> None:
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id)
        if workstation is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        if workstation.is_admin != is_admin:
            workstation.is_admin = is_admin
            log_admin_action(
                session, by, "WorkstationAdminChanged", {"workstation": workstation_id, "admin": is_admin}
            )


def log_admin_action(session: Session, by: Actor | None, action: str, details: dict[str, object]) -> None:
    """Check who is acting (a page: active staff at an admin workstation; None: the console) and log."""
    if by is None:
        by = CONSOLE_ACTOR
    else:
        require_active_staff(session, by)
        require_admin(session, by)
    admin_log.record(session, action, details, staff=by.staff, workstation=by.workstation)


def list_workstations(session: Session) -> list[Workstation]:
    return list(session.scalars(select(Workstation).order_by(Workstation.id)))


def verify_sign_in(session: Session, workstation_id: str, password: str) -> Workstation | None:
    """The workstation if the password is right (and records the sign-in), else None.

    Raises NotAllowed for a deactivated workstation, but only to someone who knows its password.
    """
    name = workstation_id.strip()
    if not is_clean(name):  # no workstation has one; PostgreSQL can't even compare NUL
        _hasher.hash(password)
        return None
    with write_transaction(session):
        workstation = session.get(Workstation, name)
        if workstation is None:
            # Hash anyway so a wrong id takes as long as a wrong password.
            _hasher.hash(password)
            return None
        try:
            _hasher.verify(workstation.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if not workstation.is_active:
            raise NotAllowed(
                f"{workstation.id} has been deactivated and can't sign in. Ask the lab manager to reactivate it."
            )
        if _hasher.check_needs_rehash(workstation.password_hash):
            workstation.password_hash = _hasher.hash(password)
        workstation.last_login_at = utcnow()
    return workstation
