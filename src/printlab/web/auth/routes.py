"""Sign-in and sign-out for lab workstations."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from printlab.domain import sign_in as rules
from printlab.services.errors import NotAllowed
from printlab.services.lab import sign_in_guard, workstations
from printlab.web.auth.guard import current_workstation
from printlab.web.context import db
from printlab.web.limits import limiter

bp = Blueprint("auth", __name__, template_folder="templates")


def safe_next(target: str | None) -> str:
    """Only same-site paths; anything else (another host, a scheme) goes to the dashboard."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    return render_template("auth/login.html", next=request.args.get("next", ""), error=None, workstation="")


@bp.post("/login")
@limiter.limit("10 per minute", methods=["POST"], deduct_when=lambda r: r.status_code != 303)
def login_post():  # type: ignore[no-untyped-def]
    workstation_id = (request.form.get("workstation") or "").strip()
    password = request.form.get("password") or ""
    target = request.form.get("next", "")
    address = request.remote_addr
    # Wrong passwords slow down the computer that typed them (and, past a high ceiling, everyone),
    # so one person can't lock a workstation out for the whole lab.
    wait = sign_in_guard.wait_for(db(), workstation_id, address) if workstation_id else None
    if wait is not None:
        error = (
            f"Too many wrong passwords for this workstation from this computer. Try again in "
            f"{rules.wait_text(wait)}, or ask an admin to let it sign in again."
        )
        return render_template("auth/login.html", next=target, error=error, workstation=workstation_id), 429
    try:
        found = (
            workstations.verify_sign_in(db(), workstation_id, password)
            if workstation_id and password
            else None
        )
    except NotAllowed as exc:  # deactivated: said only to someone who gave its password
        return render_template(
            "auth/login.html", next=target, error=str(exc), workstation=workstation_id
        ), 403
    if found is None:
        if workstation_id and password:
            sign_in_guard.record_failure(db(), workstation_id, address)
        error = "That workstation name and password don't match. Check both and try again."
        return render_template("auth/login.html", next=target, error=error, workstation=workstation_id), 401
    sign_in_guard.record_success(db(), found.id, address)
    session.clear()  # a new session id: nothing from before the sign-in carries over
    session.permanent = True
    session["workstation_id"] = found.id
    session["workstation_epoch"] = found.session_epoch
    flash(f"Signed in as {found.id}.")
    return redirect(safe_next(target), 303)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """Sign out: every session of this workstation ends, including copies of its cookie."""
    workstation = current_workstation()
    if workstation is not None:
        workstations.end_sessions(db(), workstation.id, session.get("workstation_epoch"))
    session.clear()
    flash("Signed out.")
    return redirect(url_for("auth.login"), 303)
