"""Admin route for the integrity check: show the findings, apply one repair or all the safe ones, show what was done."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.lab.staff import list_staff
from printlab.services.upkeep import findings, repair
from printlab.web.auth.guard import admin_required, current_actor
from printlab.web.context import db, lab

bp = Blueprint("admin_integrity", __name__, template_folder="templates")


def _page(outcomes: list[findings.Outcome] | None = None, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    result = findings.check(db(), lab().storage)
    return render_template(
        "admin_integrity/index.html",
        check=result,
        outcomes=outcomes or [],
        error=error,
        staff=list_staff(db(), active_only=True),
        form=request.form,
        root=lab().storage.root,
    ), status


@bp.get("/admin/integrity")
@admin_required
def index():  # type: ignore[no-untyped-def]
    return _page()


@bp.post("/admin/integrity/repair")
@admin_required
def repair_findings():  # type: ignore[no-untyped-def]
    actor = current_actor()
    key = request.form.get("key")
    try:
        if request.form.get("all"):
            outcomes = repair.repair_all(db(), lab().storage, actor=actor)
        elif key:
            outcomes = [repair.repair(db(), lab().storage, key, actor=actor)]
        else:
            raise ValidationError({"key": "Choose a finding to repair, or Repair all."})
    except (ValidationError, NotAllowed) as exc:
        return _page(error=str(exc), status=400)
    return _page(outcomes)
