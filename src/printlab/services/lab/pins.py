"""Personal PINs: a staff member switches in at a shared workstation so their actions carry their name."""

from __future__ import annotations

from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.sign_in import PIN_LOCK, PIN_TRIES, pin_problem, wait_text
from printlab.domain.text import is_clean
from printlab.models import Staff, StaffPin
from printlab.services.errors import NotAllowed, ServiceError, ValidationError
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, is_admin
from printlab.services.lab.staff import MAX_NAME

_hasher = PasswordHasher()


class PinRefused(ServiceError):
    """The name and PIN don't match, the PIN is locked for now, or the person can't switch in."""


def names_with_pins(session: Session) -> list[str]:
    """Active staff who have a PIN, by name: who may switch in at a workstation."""
    return list(
        session.scalars(
            select(StaffPin.staff_name)
            .join(Staff, Staff.name == StaffPin.staff_name)
            .where(Staff.is_active.is_(True))
            .order_by(StaffPin.staff_name)
        )
    )


def set_pin(session: Session, staff_name: str, pin: str, *, by: Actor, now: datetime | None = None) -> None:
    """Set (or replace) a staff member's PIN: by themselves (signed in as them), or by an admin with
    them at the desk. Their current switches end. Logged, never the PIN. Raises ValidationError, NotAllowed."""
    problem = pin_problem(pin if isinstance(pin, str) else "")
    if problem:
        raise ValidationError({"pin": problem})
    now = now or utcnow()
    usable = isinstance(staff_name, str) and is_clean(staff_name) and len(staff_name) <= MAX_NAME
    with write_transaction(session):
        staff = session.get(Staff, staff_name) if usable else None
        if staff is None or not staff.is_active:
            raise ValidationError({"staff": "Choose someone on the active staff list."})
        if by.staff != staff_name and not is_admin(session, by):
            raise NotAllowed("Only the person themselves or an admin can set a PIN.")
        row = session.get(StaffPin, staff_name, with_for_update=True)
        if row is None:
            row = StaffPin(staff_name=staff_name, epoch=0)
            session.add(row)
        row.pin_hash, row.set_at, row.set_by = _hasher.hash(pin), now, by.staff
        row.failures, row.locked_until = 0, None
        row.epoch = (row.epoch or 0) + 1
        admin_log.record(
            session, "StaffPinSet", {"name": staff_name, "own": by.staff == staff_name},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip


def switch_in(session: Session, staff_name: str, pin: str, *, now: datetime | None = None) -> int:
    """Check a person's PIN; their PIN's epoch for the session on success. Wrong tries count, and
    PIN_TRIES of them lock the PIN for PIN_LOCK. Raises PinRefused with the words to show."""
    now = now or utcnow()
    refused = "That name and PIN don't match."
    if not isinstance(staff_name, str) or not is_clean(staff_name) or len(staff_name) > MAX_NAME:
        raise PinRefused(refused)
    with write_transaction(session):
        row = session.get(StaffPin, staff_name, with_for_update=True)
        staff = session.get(Staff, staff_name) if row is not None else None
        if row is None or staff is None or not staff.is_active:
            raise PinRefused(refused)
        if row.locked_until is not None and row.locked_until > now:
            raise PinRefused(
                f"Too many wrong PINs for {staff_name}. Try again in {wait_text(row.locked_until - now)}, "
                "or sign in with the campus account."
            )
        try:
            _hasher.verify(row.pin_hash, pin if isinstance(pin, str) else "")
            matched = True
        except (VerificationError, InvalidHashError):
            matched = False
        if matched:
            row.failures, row.locked_until = 0, None
        else:  # counted in this transaction, which must commit: the refusal is raised after it
            row.failures += 1
            if row.failures >= PIN_TRIES:
                row.failures, row.locked_until = 0, now + PIN_LOCK
        epoch = row.epoch
    if not matched:
        raise PinRefused(refused)
    return epoch


def switch_is_current(session: Session, staff_name: object, epoch: object) -> bool:
    """Whether a switch made with the PIN at `epoch` still holds (PIN unchanged, person still staff)."""
    if not isinstance(staff_name, str) or not is_clean(staff_name) or not isinstance(epoch, int):
        return False
    row = session.get(StaffPin, staff_name)
    staff = session.get(Staff, staff_name) if row is not None else None
    return bool(row and staff and staff.is_active and row.epoch == epoch)


def switch_in_epoch(session: Session, staff_name: str) -> int | None:
    """The PIN's epoch now (after its owner changed it, their own switch carries on)."""
    row = session.get(StaffPin, staff_name)
    return row.epoch if row is not None else None
