"""Sign-in and sign-out for lab workstations."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from printlab.clock import utcnow
from printlab.domain import sign_in as rules
from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.lab import pins, sign_in_guard, workstations
from printlab.services.lab.pins import PinRefused
from printlab.web.auth.guard import (
    PERSON_KEYS,
    PIN_KEYS,
    current_actor,
    current_workstation,
    login_required,
    signed_in,
)
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


# -- switching people at a shared workstation ------------------------------------------------------


@bp.get("/switch")
def switch():  # type: ignore[no-untyped-def]
    """At a signed-in workstation: switch in with a campus account or a personal PIN."""
    if current_workstation() is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return _switch_page()


def _switch_page(error: str | None = None, name: str = "", status: int = 200):  # type: ignore[no-untyped-def]
    return render_template(
        "auth/switch.html",
        names=pins.names_with_pins(db()),
        next=safe_next(request.values.get("next")),
        error=error,
        name=name,
    ), status


@bp.post("/switch")
@limiter.limit("20 per minute", methods=["POST"])
def switch_post():  # type: ignore[no-untyped-def]
    if current_workstation() is None:
        return redirect(url_for("auth.login"), 303)
    name = (request.form.get("staff") or "").strip()
    try:
        epoch = pins.switch_in(db(), name, request.form.get("pin") or "")
    except PinRefused as exc:
        return _switch_page(str(exc), name, 401)
    for key in (*PERSON_KEYS, *PIN_KEYS):
        session.pop(key, None)
    session["pin_staff"], session["pin_epoch"], session["pin_seen"] = name, epoch, utcnow().timestamp()
    flash(f"Switched to {name}. Press Done when you leave the computer.")
    return redirect(safe_next(request.form.get("next")), 303)


@bp.post("/switch/done")
def switch_done():  # type: ignore[no-untyped-def]
    for key in PIN_KEYS:
        session.pop(key, None)
    flash("Done. The computer is ready for the next person.")
    return redirect(url_for("dashboard.index"), 303)


@bp.route("/me/pin", methods=["GET", "POST"])
@login_required
def my_pin():  # type: ignore[no-untyped-def]
    """A person signed in as themselves (campus account or PIN) sets their own PIN."""
    who = signed_in()
    if who is None or who.who is None:
        flash("Sign in as yourself first (campus account or PIN); an admin can set a first PIN.")
        return redirect(url_for("auth.switch"), 303)
    if request.method == "GET":
        return render_template("auth/my_pin.html", errors={}, name=who.who)
    pin, again = request.form.get("pin") or "", request.form.get("again") or ""
    errors: dict[str, str] = {}
    if pin != again:
        errors["again"] = "The two PINs differ; type the same PIN twice."
    else:
        try:
            pins.set_pin(db(), who.who, pin, by=current_actor())
        except ValidationError as exc:
            db().rollback()
            errors = exc.errors
    if errors:
        return render_template("auth/my_pin.html", errors=errors, name=who.who), 400
    if session.get("pin_staff") == who.who:  # their own switch carries on under the new PIN
        session["pin_epoch"] = pins.switch_in_epoch(db(), who.who)
    flash("Your PIN is set. Use it with “Switch to me” on any lab computer.")
    return redirect(url_for("dashboard.index"), 303)
