"""The printer board for staff: /printers (one lane per printer), its self-refreshing lanes, and moving
a job in a printer's queue (a plain form per button; board.js sends the same form from a drag)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.services.errors import ValidationError
from printlab.services.printers import queue
from printlab.services.views.live_prints import fleet_fingerprint
from printlab.services.views.printer_board import Board, board_etag, printer_board
from printlab.web.auth.guard import login_required
from printlab.web.context import catalog, db, whole_number

bp = Blueprint("printers", __name__, template_folder="templates")


def _board() -> Board:
    return printer_board(db(), catalog())


def _page(board: Board, *, problem: str | None = None, status: int = 200) -> tuple[str, int]:
    return render_template(
        "printers/board.html", board=board, zone=catalog().lab.time_zone, problem=problem
    ), status


@bp.get("/printers")
@login_required
def index():  # type: ignore[no-untyped-def]
    return _page(_board())


@bp.get("/printers/lanes")
@login_required
def lanes():  # type: ignore[no-untyped-def]
    """The lanes alone, for the board's refresh; 304 when nothing on them can have changed."""
    etag = board_etag(fleet_fingerprint(db()), utcnow())
    db().rollback()
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        board = _board()
        etag = board.etag
        response = Response(
            render_template("printers/_lanes.html", board=board, zone=catalog().lab.time_zone)
        )
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.post("/printers/queue")
@login_required
def move():  # type: ignore[no-untyped-def]
    """Move one job to a place in its printer's queue; the form names the queue as the page showed it."""
    form = request.form
    seen = [job_id for job_id in (form.get("seen") or "").split(",") if job_id]
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        moved = queue.move(
            db(), form.get("printer", ""), form.get("job", ""), whole_number(form.get("place")), seen=seen
        )
    except ValidationError as exc:
        return _refused(" ".join(exc.errors.values()), 422, wants_json)
    except queue.QueueChanged as exc:
        return _refused(str(exc), 409, wants_json)
    if moved.changed:
        message = (
            f"Moved {moved.display_name} to place {moved.place} of {moved.total} in {moved.printer}'s queue."
        )
    else:
        message = f"{moved.display_name} is already at place {moved.place} in {moved.printer}'s queue."
    if wants_json:
        return jsonify({"ok": True, "message": message, "job": moved.job_id})
    flash(message)
    return redirect(url_for("printers.index") + f"#q-{moved.job_id}", 303)


def _refused(message: str, status: int, wants_json: bool) -> Any:
    db().rollback()
    if wants_json:
        return jsonify({"ok": False, "message": message}), status
    return _page(_board(), problem=message, status=status)
