"""The account codes an admin keeps (department, course and grant codes an internal transfer names)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.charging import MAX_CODE_NAME, code_problem, normal_code
from printlab.models import AccountCode
from printlab.services.errors import NotFound, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console


def list_codes(session: Session, *, active_only: bool = False) -> list[AccountCode]:
    """The codes in order of their code (the pickup form offers only the active ones)."""
    query = select(AccountCode).order_by(AccountCode.code)
    if active_only:
        query = query.where(AccountCode.is_active.is_(True))
    return list(session.scalars(query))


def usable_code(session: Session, typed: object, field: str = "account_code") -> AccountCode:
    """The active account code staff chose, or ValidationError saying why it can't be charged."""
    code = normal_code(checked_text(typed, field, "The account code"))
    if not code:
        raise ValidationError({field: "Choose the account code the transfer is charged to."})
    found = session.get(AccountCode, code) if code_problem(code) is None else None
    if found is None:
        raise ValidationError({field: f"{code} isn't on the lab's list of account codes."})
    if not found.is_active:
        raise ValidationError(
            {field: f"{code} ({found.name}) is no longer in use; ask an admin, or choose another code."}
        )
    return found


def add_code(
    session: Session, code: str, name: str, *, by: Actor | None = None, now: datetime | None = None
) -> AccountCode:
    """Add an active account code (logged). Raises ValidationError for a bad or taken code or name."""
    errors: dict[str, str] = {}
    cleaned = normal_code(checked_text(code, "code", "The code"))
    problem = code_problem(cleaned)
    if problem:
        errors["code"] = problem
    label = " ".join(checked_text(name, "name", "The name").split())
    if not label:
        errors["name"] = "Give the code's name, e.g. the department, course or grant it belongs to."
    elif len(label) > MAX_CODE_NAME:
        errors["name"] = f"Keep the name under {MAX_CODE_NAME} characters."
    if errors:
        raise ValidationError(errors)
    with write_transaction(session):
        by = admin_or_console(session, by)
        if session.get(AccountCode, cleaned) is not None:
            raise ValidationError({"code": f"{cleaned} is already on the list."})
        added = AccountCode(
            code=cleaned, name=label, is_active=True, added_at=now or utcnow(), added_by=by.staff
        )
        session.add(added)
        admin_log.record(
            session, "AccountCodeAdded", {"code": cleaned, "name": label},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip
    return added


def set_active(
    session: Session, code: str, active: bool, *, by: Actor | None = None, now: datetime | None = None
) -> AccountCode:
    """Stop offering a code at pickup, or offer it again (logged). Past payments keep it. Raises NotFound."""
    with write_transaction(session):
        by = admin_or_console(session, by)
        found = session.get(AccountCode, normal_code(code))
        if found is None:
            raise NotFound(f"No account code {code!r}.")
        if bool(found.is_active) != active:
            found.is_active = active
            action = "AccountCodeReactivated" if active else "AccountCodeDeactivated"
            admin_log.record(
                session, action, {"code": found.code, "name": found.name},
                staff=by.staff, workstation=by.workstation, now=now,
            )  # fmt: skip
    return found
