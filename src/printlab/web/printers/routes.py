"""Admin routes for the lab's printers: the list with its add form, a printer's edit form, the connection
test, and pausing, returning to service and retiring."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from printlab.domain.printers import Connection, ServiceState, describe
from printlab.models import LabPrinter
from printlab.services.errors import NotAllowed, NotFound, ValidationError
from printlab.services.lab.actors import Actor
from printlab.services.lab.staff import list_staff
from printlab.services.printers import fleet
from printlab.services.printers.api_keys import KeyUnreadable
from printlab.services.printers.connector import PrinterProblem
from printlab.web.auth.guard import admin_required, current_actor
from printlab.web.context import catalog, db, lab

bp = Blueprint("admin_printers", __name__, template_folder="templates")

#: What each service-state button says, and what the page says after it.
STATE_WORDS = {
    ServiceState.PAUSED: (
        "Pause",
        "{name} is paused: PrintLab sends it nothing until it is back in service.",
    ),
    ServiceState.IN_SERVICE: ("Put back in service", "{name} is back in service."),
    ServiceState.RETIRED: ("Retire", "{name} is retired; its saved API key is forgotten."),
}


def _actor() -> Actor:
    return current_actor()


def _common() -> dict[str, Any]:
    return {
        "staff": list_staff(db(), active_only=True),
        "connections": list(Connection),
        "zone": catalog().lab.time_zone,
        "catalog_names": [p.name for p in catalog().printers],
    }


def _list_page(
    errors: dict[str, str] | None = None, form: Any = None, tested: dict[str, Any] | None = None
) -> tuple[str, int]:
    printers = fleet.list_printers(db())
    in_use = {p.name for p in printers if p.state != ServiceState.RETIRED.value}
    return render_template(
        "printers/admin.html",
        printers=printers,
        addable=[name for name in _common()["catalog_names"] if name not in in_use],
        errors=errors or {},
        form=form or {},
        tested=tested,
        states=ServiceState,
        state_words=STATE_WORDS,
        **_common(),
    ), 422 if errors else 200


@bp.get("/admin/printers")
@admin_required
def index():  # type: ignore[no-untyped-def]
    return _list_page()


@bp.post("/admin/printers")
@admin_required
def add():  # type: ignore[no-untyped-def]
    try:
        added = fleet.add_printer(db(), request.form, secret=lab().config.secret_key, by=_actor())
    except ValidationError as exc:
        return _list_page(exc.errors, request.form)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    flash(
        f"Added {added.name}."
        + (
            " Test its connection to see what it answers."
            if added.connection != Connection.NONE.value
            else ""
        )
    )
    return redirect(url_for("admin_printers.index") + f"#printer-{added.id}", 303)


def _edit_page(
    printer: LabPrinter, errors: dict[str, str] | None = None, form: Any = None
) -> tuple[str, int]:
    return render_template(
        "printers/edit.html",
        printer=printer,
        errors=errors or {},
        form=form,
        states=ServiceState,
        state_words=STATE_WORDS,
        **_common(),
    ), 422 if errors else 200


@bp.get("/admin/printers/<printer_id>")
@admin_required
def edit(printer_id: str):  # type: ignore[no-untyped-def]
    try:
        return _edit_page(fleet.get_printer(db(), printer_id))
    except NotFound:
        abort(404)


@bp.post("/admin/printers/<printer_id>")
@admin_required
def save(printer_id: str):  # type: ignore[no-untyped-def]
    try:
        changed = fleet.edit_printer(
            db(), printer_id, request.form, secret=lab().config.secret_key, by=_actor()
        )
    except NotFound:
        abort(404)
    except ValidationError as exc:
        db().rollback()
        return _edit_page(fleet.get_printer(db(), printer_id), exc.errors, request.form)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    flash(f"{changed.name} saved.")
    return redirect(url_for("admin_printers.index") + f"#printer-{changed.id}", 303)


@bp.post("/admin/printers/<printer_id>/test")
@admin_required
def try_connection(printer_id: str):  # type: ignore[no-untyped-def]
    try:
        printer = fleet.get_printer(db(), printer_id)
        name = printer.name
        status = fleet.check_connection(db(), printer_id, secret=lab().config.secret_key)
    except NotFound:
        abort(404)
    except (PrinterProblem, KeyUnreadable) as exc:
        return _list_page(tested={"id": printer.id, "name": name, "ok": False, "words": str(exc)})
    return _list_page(tested={"id": printer.id, "name": name, "ok": True, "words": describe(status)})


@bp.post("/admin/printers/<printer_id>/state")
@admin_required
def set_state(printer_id: str):  # type: ignore[no-untyped-def]
    target = request.form.get("state", "")
    if target == ServiceState.RETIRED.value and request.form.get("confirm") != "on":
        try:
            printer = fleet.get_printer(db(), printer_id)
        except NotFound:
            abort(404)
        return _edit_page(
            printer, {"confirm": "Tick the box to confirm: a retired printer can't be put back in service."}
        )
    try:
        printer = fleet.set_state(db(), printer_id, target, by=_actor())
    except NotFound:
        abort(404)
    except ValidationError as exc:
        flash("Not changed: " + " ".join(exc.errors.values()))
        return redirect(url_for("admin_printers.index"), 303)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    flash(STATE_WORDS[ServiceState(printer.state)][1].format(name=printer.name))
    return redirect(url_for("admin_printers.index") + f"#printer-{printer.id}", 303)
