"""Lab computers: each signs in with its own shared password (argon2-hashed); some are admin workstations."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.models import Workstation
from printlab.services.errors import NotFound, ValidationError

#: Workstation id used for actions typed at the server's console (`printlab` commands). Whoever can
#: run them already holds the database, so the console counts as an admin workstation.
CONSOLE = "console"
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
    session: Session, workstation_id: str, password: str, *, is_admin: bool = False
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
    return workstation


def reset_password(session: Session, workstation_id: str, password: str) -> None:
    _check_password(password)
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id)
        if workstation is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        workstation.password_hash = _hasher.hash(password)


def set_admin(session: Session, workstation_id: str, is_admin: bool) -> None:
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id)
        if workstation is None:
            raise NotFound(f"No workstation {workstation_id!r}.")
        workstation.is_admin = is_admin


def verify_sign_in(session: Session, workstation_id: str, password: str) -> Workstation | None:
    """The workstation if the password is right (and records the sign-in), else None."""
    with write_transaction(session):
        workstation = session.get(Workstation, workstation_id.strip())
        if workstation is None or not workstation.is_active:
            # Hash anyway so a wrong id takes as long as a wrong password.
            _hasher.hash(password)
            return None
        try:
            _hasher.verify(workstation.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if _hasher.check_needs_rehash(workstation.password_hash):
            workstation.password_hash = _hasher.hash(password)
        workstation.last_login_at = utcnow()
    return workstation


def is_admin_workstation(session: Session, workstation_id: str | None) -> bool:
    if workstation_id == CONSOLE:
        return True
    workstation = session.get(Workstation, workstation_id) if workstation_id else None
    return bool(workstation and workstation.is_active and workstation.is_admin)
