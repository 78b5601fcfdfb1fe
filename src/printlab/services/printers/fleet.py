"""The lab's printer records: added, edited, paused, put back in service and retired by admins (logged),
and a connection test that says what the printer answered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.printers import (
    SERVICE_MOVES,
    Connection,
    PrinterStatus,
    ServiceState,
    address_problem,
    api_key_problem,
    normal_address,
)
from printlab.models import LabPrinter
from printlab.services.errors import NotFound, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console
from printlab.services.lab.catalog import load_catalog
from printlab.services.printers import api_keys
from printlab.services.printers.connections import open_connector
from printlab.services.printers.connector import Connector, Timeouts

#: The admin-log action for each service state a printer is moved to.
_STATE_ACTIONS = {
    ServiceState.PAUSED: "PrinterPaused",
    ServiceState.IN_SERVICE: "PrinterBackInService",
    ServiceState.RETIRED: "PrinterRetired",
}


@dataclass(frozen=True)
class PrinterEntry:
    """What the form sent, checked: the catalog printer, its connection and address, a new key or None."""

    name: str
    connection: Connection
    address: str | None
    new_key: str | None
    forget_key: bool


def list_printers(session: Session) -> list[LabPrinter]:
    """Every printer record: in service and paused by name, the retired after them (newest first)."""
    retired_last = case((LabPrinter.state == ServiceState.RETIRED.value, 1), else_=0)
    return list(
        session.scalars(
            select(LabPrinter).order_by(retired_last, LabPrinter.name, LabPrinter.changed_at.desc())
        )
    )


def get_printer(session: Session, printer_id: int | str) -> LabPrinter:
    """The record; NotFound for an unknown (or malformed) id."""
    text = str(printer_id)
    # Only ids an INTEGER column can hold are looked up (PostgreSQL refuses larger numbers outright).
    found = (
        session.get(LabPrinter, int(text)) if text.isascii() and text.isdigit() and len(text) < 10 else None
    )
    if found is None:
        raise NotFound("No such printer.")
    return found


def read_entry(
    session: Session, form: Mapping[str, Any], *, current: LabPrinter | None = None
) -> PrinterEntry:
    """The form's fields checked against the lab catalog. Raises ValidationError with a message per field.

    An empty API key field keeps the saved key; "forget_key" removes it. A printer that isn't connected
    keeps no address and no key.
    """
    errors: dict[str, str] = {}
    fields: dict[str, str] = {}
    for field, label in (
        ("name", "The printer"),
        ("connection", "The connection"),
        ("address", "The address"),
    ):
        try:
            fields[field] = checked_text(form.get(field), field, label).strip()
        except ValidationError as exc:
            errors.update(exc.errors)
            fields[field] = ""
    names = [p.name for p in load_catalog(session).printers]
    session.rollback()  # end the catalog's read; the change opens its own write transaction
    name = fields["name"]
    if not name:
        errors.setdefault("name", "Choose which of the lab's printers this is.")
    elif name not in names and not (current is not None and name == current.name):
        errors.setdefault("name", f"{name} isn't a printer in the lab catalog; add it there first.")
    try:
        connection = Connection(fields["connection"] or Connection.NONE.value)
    except ValueError:
        connection = Connection.NONE
        errors.setdefault("connection", "Choose how PrintLab connects to the printer.")
    address: str | None = None
    new_key: str | None = None
    raw_key = form.get("api_key")
    key = raw_key.strip() if isinstance(raw_key, str) else ""
    forget_key = form.get("forget_key") in ("on", "1")
    if connection is not Connection.NONE:
        problem = address_problem(fields["address"])
        if problem:
            errors.setdefault("address", problem)
        else:
            address = normal_address(fields["address"])
        if key:
            problem = api_key_problem(key)
            if problem:
                errors["api_key"] = problem
            else:
                new_key = key
        has_saved = current is not None and current.api_key_sealed is not None and not forget_key
        if connection.needs_key and not new_key and not has_saved and "api_key" not in errors:
            errors["api_key"] = (
                f"Type the printer's API key: {connection.label} needs one to let PrintLab in."
            )
    if errors:
        raise ValidationError(errors)
    return PrinterEntry(name, connection, address, new_key, forget_key)


def add_printer(
    session: Session,
    form: Mapping[str, Any],
    *,
    secret: str,
    by: Actor | None = None,
    now: datetime | None = None,
) -> LabPrinter:
    """Add a printer record, in service (logged; the key never is). Raises ValidationError, NotAllowed."""
    entry = read_entry(session, form)
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        _refuse_second_record(session, entry.name)
        printer = LabPrinter(
            name=entry.name,
            connection=entry.connection.value,
            address=entry.address,
            api_key_sealed=api_keys.seal(secret, entry.new_key) if entry.new_key else None,
            state=ServiceState.IN_SERVICE.value,
            added_at=now,
            added_by=by.staff,
            changed_at=now,
            changed_by=by.staff,
        )
        session.add(printer)
        _flush_unique(session, entry.name)
        admin_log.record(
            session, "PrinterAdded",
            {"name": entry.name, "connection": entry.connection.value, "address": entry.address,
             "key_saved": entry.new_key is not None},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip
    return printer


def edit_printer(
    session: Session,
    printer_id: int | str,
    form: Mapping[str, Any],
    *,
    secret: str,
    by: Actor | None = None,
    now: datetime | None = None,
) -> LabPrinter:
    """Change a printer's catalog name, connection, address or key (logged: what changed, never the key).

    Raises NotFound, ValidationError (a retired printer can't be changed), NotAllowed.
    """
    entry = read_entry(session, form, current=get_printer(session, printer_id))
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        printer = get_printer(session, printer_id)
        if printer.state == ServiceState.RETIRED.value:
            raise ValidationError({"name": f"{printer.name} is retired; add the printer again instead."})
        changed = []
        if entry.name != printer.name:
            _refuse_second_record(session, entry.name)
            printer.name = entry.name
            changed.append("name")
        if entry.connection.value != printer.connection:
            printer.connection = entry.connection.value
            changed.append("connection")
        if entry.address != printer.address:
            printer.address = entry.address
            changed.append("address")
        forget = entry.connection is Connection.NONE or entry.forget_key
        if forget and printer.api_key_sealed is not None and entry.new_key is None:
            printer.api_key_sealed = None
            changed.append("api_key_removed")
        if entry.new_key is not None:
            printer.api_key_sealed = api_keys.seal(secret, entry.new_key)
            changed.append("api_key")
        if changed:
            printer.changed_at, printer.changed_by = now, by.staff
            _flush_unique(session, entry.name)
            admin_log.record(
                session, "PrinterChanged",
                {"name": printer.name, "fields": changed, "connection": printer.connection,
                 "address": printer.address},
                staff=by.staff, workstation=by.workstation, now=now,
            )  # fmt: skip
    return printer


def set_state(
    session: Session,
    printer_id: int | str,
    state: str,
    *,
    by: Actor | None = None,
    now: datetime | None = None,
) -> LabPrinter:
    """Pause a printer, put it back in service, or retire it for good (its key is forgotten). Logged.

    Raises NotFound, ValidationError (a move that isn't allowed), NotAllowed.
    """
    try:
        target = ServiceState(state)
    except ValueError:
        raise ValidationError({"state": "Choose pause, back in service or retire."}) from None
    now = now or utcnow()
    with write_transaction(session):
        by = admin_or_console(session, by)
        printer = get_printer(session, printer_id)
        current = ServiceState(printer.state)
        if target == current:
            return printer
        if target not in SERVICE_MOVES[current]:
            raise ValidationError(
                {"state": f"{printer.name} is {current.label.lower()}; it can't be changed."}
            )
        printer.state = target.value
        printer.changed_at, printer.changed_by = now, by.staff
        if target is ServiceState.RETIRED:
            printer.api_key_sealed = None  # nothing left to reach it with
        _flush_unique(session, printer.name)
        admin_log.record(
            session, _STATE_ACTIONS[target], {"name": printer.name},
            staff=by.staff, workstation=by.workstation, now=now,
        )  # fmt: skip
    return printer


def connector_for(printer: LabPrinter, *, secret: str, timeouts: Timeouts | None = None) -> Connector:
    """A connector to the printer, with its key unsealed. Raises PrinterProblem (not connected) and
    KeyUnreadable (the lab's secret changed since the key was saved)."""
    key = api_keys.unseal(secret, printer.api_key_sealed) if printer.api_key_sealed else None
    extra = {"timeouts": timeouts} if timeouts else {}
    return open_connector(Connection(printer.connection), printer.address, key, **extra)


def check_connection(
    session: Session, printer_id: int | str, *, secret: str, timeouts: Timeouts | None = None
) -> PrinterStatus:
    """Reach the printer with its saved address and key and say what it answered (changes nothing here).

    Raises NotFound, PrinterProblem (with the printer's answer in words) and KeyUnreadable.
    """
    connector = connector_for(get_printer(session, printer_id), secret=secret, timeouts=timeouts)
    session.rollback()  # hold no transaction while the printer takes its time
    with connector:
        return connector.connect()


def _refuse_second_record(session: Session, name: str) -> None:
    taken = session.scalar(
        select(LabPrinter.id).where(LabPrinter.name == name, LabPrinter.state != ServiceState.RETIRED.value)
    )
    if taken is not None:
        raise ValidationError({"name": f"{name} already has a record; edit that one instead."})


def _flush_unique(session: Session, name: str) -> None:
    """Flush, turning a record added by another admin at the same moment into a ValidationError."""
    try:
        session.flush()
    except IntegrityError:
        raise ValidationError({"name": f"{name} already has a record; edit that one instead."}) from None
