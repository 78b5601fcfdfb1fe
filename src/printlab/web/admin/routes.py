"""Admin pages: staff, workstations, the lab catalog, the banner, overrides, file deletion, health, the log."""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from printlab import __version__
from printlab.clock import utcnow
from printlab.domain.catalog_edit import SECTIONS
from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage, OutboxStatus
from printlab.services.api import tokens as api_tokens
from printlab.services.errors import (
    ConflictError,
    InvalidTransition,
    NotAllowed,
    NotFound,
    ServiceError,
    ValidationError,
)
from printlab.services.jobs import file_deletion, locks, workflow
from printlab.services.jobs.records import job_files
from printlab.services.lab import account_codes, admin_log, sign_in_guard, workstations
from printlab.services.lab import catalog as catalog_service
from printlab.services.lab import staff as staff_service
from printlab.services.lab.actors import Actor
from printlab.services.lab.catalog import banner, catalog_version, save_section, set_banner
from printlab.services.upkeep import health
from printlab.services.views.job_detail import job_detail
from printlab.web.auth.guard import admin_required, current_actor, current_workstation
from printlab.web.context import catalog, db, lab, whole_number
from printlab.web.job_version import expected_from
from printlab.web.limits import counter_store

bp = Blueprint("admin", __name__, template_folder="templates")

OVERRIDES = {
    "force_confirm": "Force confirm (the student agreed in person)",
    "change_status": "Change status",
    "print_failed": "Mark print failed",
    "break_lock": "Break the lock",
}


def _actor() -> Actor:
    return current_actor()


def _active_staff():  # type: ignore[no-untyped-def]
    return staff_service.list_staff(db(), active_only=True)


def _failed(errors: dict[str, str]) -> None:
    flash("Not saved: " + " ".join(errors.values()))


@bp.get("/admin")
@admin_required
def index():  # type: ignore[no-untyped-def]
    state = health.check(lab().engine, lab().storage, counter_store())
    return render_template("admin/index.html", health=state, banner_text=banner(db()), staff=_active_staff())


@bp.post("/admin/banner")
@admin_required
def save_banner():  # type: ignore[no-untyped-def]
    try:
        set_banner(db(), request.form.get("banner", ""), by=_actor())
        flash("Banner saved." if request.form.get("banner", "").strip() else "Banner removed.")
    except ValidationError as exc:
        _failed(exc.errors)
    return redirect(url_for("admin.index"), 303)


# -- staff ---------------------------------------------------------------------------------------


@bp.get("/admin/staff")
@admin_required
def staff():  # type: ignore[no-untyped-def]
    return render_template(
        "admin/staff.html", people=staff_service.list_staff(db()), staff=_active_staff(), errors={}, form={},
        zone=catalog().lab.time_zone,
    )  # fmt: skip


@bp.post("/admin/staff")
@admin_required
def add_staff():  # type: ignore[no-untyped-def]
    try:
        added = staff_service.add_staff(db(), request.form.get("name", ""), by=_actor())
    except ValidationError as exc:
        return render_template(
            "admin/staff.html", people=staff_service.list_staff(db()), staff=_active_staff(),
            errors=exc.errors, form=request.form, zone=catalog().lab.time_zone,
        ), 422  # fmt: skip
    flash(f"Added {added.name}. Their name is highlighted in “Acting as” for a week.")
    return redirect(url_for("admin.staff"), 303)


@bp.post("/admin/staff/<path:name>/active")
@admin_required
def set_staff_active(name: str):  # type: ignore[no-untyped-def]
    active = request.form.get("active") == "1"
    try:
        staff_service.set_active(db(), name, active, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotFound:
        abort(404)
    else:
        flash(f"{name} is {'active again' if active else 'deactivated; their history stays'}.")
    return redirect(url_for("admin.staff"), 303)


# -- workstations --------------------------------------------------------------------------------


def _workstations_page(
    errors: dict[str, str] | None = None, form: Any = None, new_password: tuple[str, str] | None = None
) -> str:
    return render_template(
        "admin/workstations.html", machines=workstations.list_workstations(db()), staff=_active_staff(),
        locked=sign_in_guard.locked_out(db()), zone=catalog().lab.time_zone, errors=errors or {}, form=form or {},
        new_password=new_password,
    )  # fmt: skip


@bp.get("/admin/workstations")
@admin_required
def workstation_list():  # type: ignore[no-untyped-def]
    return _workstations_page()


@bp.post("/admin/workstations")
@admin_required
def add_workstation():  # type: ignore[no-untyped-def]
    password = request.form.get("password") or workstations.generate_password()
    try:
        added = workstations.add_workstation(
            db(), request.form.get("id", ""), password, is_admin=request.form.get("is_admin") == "on",
            by=_actor(),
        )  # fmt: skip
    except ValidationError as exc:
        return _workstations_page(errors=exc.errors, form=request.form), 422
    return _workstations_page(new_password=(added.id, password))


@bp.post("/admin/workstations/<workstation_id>/reset")
@admin_required
def reset_workstation(workstation_id: str):  # type: ignore[no-untyped-def]
    password = workstations.generate_password()
    try:
        workstations.reset_password(db(), workstation_id, password, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
        return redirect(url_for("admin.workstation_list"), 303)
    except NotFound:
        abort(404)
    return _workstations_page(new_password=(workstation_id, password))


@bp.post("/admin/workstations/<workstation_id>/admin")
@admin_required
def toggle_admin(workstation_id: str):  # type: ignore[no-untyped-def]
    make_admin = request.form.get("is_admin") == "1"
    me = current_workstation()
    if me is not None and me.id == workstation_id and not make_admin:
        flash("This workstation can't remove its own admin rights; do it from another admin workstation.")
        return redirect(url_for("admin.workstation_list"), 303)
    try:
        workstations.set_admin(db(), workstation_id, make_admin, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotFound:
        abort(404)
    else:
        flash(f"{workstation_id} is {'now' if make_admin else 'no longer'} an admin workstation.")
    return redirect(url_for("admin.workstation_list"), 303)


@bp.post("/admin/workstations/<workstation_id>/sign-in-again")
@admin_required
def release_workstation(workstation_id: str):  # type: ignore[no-untyped-def]
    try:
        sign_in_guard.let_sign_in_again(db(), workstation_id, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotFound:
        abort(404)
    else:
        flash(f"{workstation_id} can be signed in to again from every computer.")
    return redirect(url_for("admin.workstation_list"), 303)


@bp.post("/admin/workstations/<workstation_id>/active")
@admin_required
def set_workstation_active(workstation_id: str):  # type: ignore[no-untyped-def]
    active = request.form.get("active") == "1"
    me = current_workstation()
    if me is not None and me.id == workstation_id and not active:
        flash("This workstation can't deactivate itself; do it from another admin workstation.")
        return redirect(url_for("admin.workstation_list"), 303)
    try:
        workstations.set_active(db(), workstation_id, active, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotAllowed as exc:
        abort(403, description=str(exc))
    except NotFound:
        abort(404)
    else:
        flash(
            f"{workstation_id} is active again; it signs in with its password."
            if active
            else f"{workstation_id} is deactivated: it is signed out and can't sign in."
        )
    return redirect(url_for("admin.workstation_list"), 303)


# -- account codes -------------------------------------------------------------------------------


def _account_codes_page(errors: dict[str, str] | None = None, form: Any = None) -> tuple[str, int]:
    return render_template(
        "admin/account_codes.html", codes=account_codes.list_codes(db()), staff=_active_staff(),
        zone=catalog().lab.time_zone, errors=errors or {}, form=form or {},
    ), 422 if errors else 200  # fmt: skip


@bp.get("/admin/account-codes")
@admin_required
def account_code_list():  # type: ignore[no-untyped-def]
    return _account_codes_page()


@bp.post("/admin/account-codes")
@admin_required
def add_account_code():  # type: ignore[no-untyped-def]
    try:
        added = account_codes.add_code(
            db(), request.form.get("code", ""), request.form.get("name", ""), by=_actor()
        )
    except ValidationError as exc:
        return _account_codes_page(exc.errors, request.form)
    flash(f"Added account code {added.code}. Staff can charge internal transfers to it at pickup.")
    return redirect(url_for("admin.account_code_list"), 303)


@bp.post("/admin/account-codes/<code>/active")
@admin_required
def set_account_code_active(code: str):  # type: ignore[no-untyped-def]
    active = request.form.get("active") == "1"
    try:
        found = account_codes.set_active(db(), code, active, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotFound:
        abort(404)
    else:
        flash(
            f"{found.code} is offered at pickup again."
            if active
            else f"{found.code} is no longer offered at pickup; past payments keep it."
        )
    return redirect(url_for("admin.account_code_list"), 303)


# -- API tokens ----------------------------------------------------------------------------------


def _tokens_page(
    errors: dict[str, str] | None = None, form: Any = None, made: api_tokens.NewToken | None = None
) -> tuple[str, int]:
    return render_template(
        "admin/api_tokens.html", tokens=api_tokens.list_tokens(db()), staff=_active_staff(),
        zone=catalog().lab.time_zone, errors=errors or {}, form=form or {}, made=made, now=utcnow(),
        scopes=api_tokens.SCOPES, default_days=api_tokens.DEFAULT_DAYS, default_rate=api_tokens.DEFAULT_RATE,
    ), 422 if errors else 200  # fmt: skip


@bp.get("/admin/api-tokens")
@admin_required
def api_token_list():  # type: ignore[no-untyped-def]
    return _tokens_page()


@bp.post("/admin/api-tokens")
@admin_required
def add_api_token():  # type: ignore[no-untyped-def]
    form = request.form
    try:
        made = api_tokens.create(
            db(), name=form.get("name", ""), staff_name=form.get("staff_name", ""), scope=form.get("scope", ""),
            days=form.get("days", ""), rate_per_minute=form.get("rate_per_minute", ""), by=_actor(),
        )  # fmt: skip
    except ValidationError as exc:
        return _tokens_page(exc.errors, form)
    # Shown on this answer only (never redirected to, never stored): the page says to copy it now.
    response = make_response(_tokens_page(made=made))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/admin/api-tokens/<int:token_id>/revoke")
@admin_required
def revoke_api_token(token_id: int):  # type: ignore[no-untyped-def]
    try:
        revoked = api_tokens.revoke(db(), token_id, by=_actor())
    except ValidationError as exc:
        _failed(exc.errors)
    except NotFound:
        abort(404)
    else:
        flash(f"Token “{revoked.name}” revoked: it no longer works.")
    return redirect(url_for("admin.api_token_list"), 303)


# -- catalog -------------------------------------------------------------------------------------


def _catalog_page(errors: dict[str, str] | None = None, form: Any = None, conflict: str | None = None) -> str:
    cat = catalog()
    return render_template(
        "admin/catalog.html", cat=cat, version=catalog_version(cat), staff=_active_staff(), errors=errors or {},
        form=form, conflict=conflict, address_ceiling=lab().config.submit_rate_limit,
    )  # fmt: skip


@bp.get("/admin/catalog")
@admin_required
def catalog_page():  # type: ignore[no-untyped-def]
    return _catalog_page()


@bp.post("/admin/catalog")
@admin_required
def save_whole_catalog():  # type: ignore[no-untyped-def]
    """The editor's one Save: every section at once, against the catalog the page showed."""
    try:
        catalog_service.save_catalog(
            db(), request.form, by=_actor(), expected_version=request.form.get("catalog_version", "")
        )
    except ValidationError as exc:
        return _catalog_page(errors=exc.errors, form=request.form), 422
    except ConflictError as exc:
        return _catalog_page(form=request.form, conflict=str(exc)), 409
    except NotAllowed as exc:
        abort(403, description=str(exc))
    flash("Catalog saved. Forms, prices and emails use it from now on; jobs already quoted keep their price.")
    return redirect(url_for("admin.catalog_page"), 303)


@bp.post("/admin/catalog/<section>")
@admin_required
def save_catalog(section: str):  # type: ignore[no-untyped-def]
    if section not in SECTIONS:
        abort(404)
    try:
        save_section(db(), section, request.form, by=_actor())
    except ValidationError as exc:
        return _catalog_page(errors=exc.errors, form=request.form), 422
    except NotAllowed as exc:
        abort(403, description=str(exc))
    flash("Catalog saved. Forms, prices and emails use it from now on; jobs already quoted keep their price.")
    return redirect(url_for("admin.catalog_page") + f"#{section}", 303)


# -- one job: overrides and file deletion --------------------------------------------------------


@bp.route("/admin/jobs/<job_id>/override", methods=["GET", "POST"])
@admin_required
def override(job_id: str):  # type: ignore[no-untyped-def]
    try:
        detail = job_detail(db(), lab().storage, job_id, catalog())
    except NotFound:
        abort(404)
    errors: dict[str, str] = {}
    conflict = None
    if request.method == "POST":
        kind = request.form.get("kind", "")
        try:
            _run_override(kind, job_id)
        except ValidationError as exc:
            errors = exc.errors
        except (ConflictError, InvalidTransition, NotAllowed, ServiceError) as exc:
            conflict = str(exc)
        else:
            flash(f"{OVERRIDES.get(kind, 'Override')}: done.")
            return redirect(url_for("jobs.show", job_id=job_id), 303)
        detail = job_detail(db(), lab().storage, job_id, catalog())
    return render_template(
        "admin/override.html", d=detail, overrides=OVERRIDES, statuses=list(Status), staff=_active_staff(),
        errors=errors, conflict=conflict, form=request.form,
    ), (409 if conflict else 422 if errors else 200)  # fmt: skip


def _run_override(kind: str, job_id: str) -> None:
    actor, storage, form = _actor(), lab().storage, request.form
    expected = expected_from(form)  # what the admin saw: a job changed since is not overridden
    reason = form.get("reason", "")
    send_email = form.get("send_email") == "on"
    if kind == "force_confirm":
        workflow.force_confirm(
            db(), storage, job_id, actor=actor, reason=reason, send_email=send_email, expected=expected
        )
    elif kind == "change_status":
        workflow.override_status(
            db(),
            storage,
            job_id,
            actor=actor,
            target=form.get("target", ""),
            reason=reason,
            send_email=send_email,
            expected=expected,
        )
    elif kind == "print_failed":
        workflow.print_failed(db(), storage, job_id, actor=actor, reason=reason, expected=expected)
    elif kind == "break_lock":
        locks.break_lock(db(), storage, job_id, actor=actor, reason=reason, expected=expected)
    else:
        raise ValidationError({"kind": "Choose what to do."})


@bp.route("/admin/jobs/<job_id>/delete-files", methods=["GET", "POST"])
@admin_required
def delete_files(job_id: str):  # type: ignore[no-untyped-def]
    job = db().get(Job, job_id) or abort(404)
    errors: dict[str, str] = {}
    conflict = None
    if request.method == "POST":
        try:
            removed = file_deletion.delete_job_files(
                db(), lab().storage, job_id, actor=_actor(), reason=request.form.get("reason", ""),
                confirmed=request.form.getlist("files"), expected=expected_from(request.form),
            )  # fmt: skip
        except ValidationError as exc:
            errors = exc.errors
        except ConflictError as exc:
            conflict = str(exc)
        except NotAllowed as exc:
            abort(403, description=str(exc))
        else:
            flash(f"Deleted {len(removed)} file(s) of this job.")
            return redirect(url_for("jobs.show", job_id=job_id), 303)
        db().rollback()
        db().expire_all()  # show the job and its files as they are now
        job = db().get(Job, job_id) or abort(404)
    names = job_files(lab().storage, job)
    return render_template(
        "admin/delete_files.html",
        job=job,
        names=names,
        staff=_active_staff(),
        errors=errors,
        conflict=conflict,
        form=request.form,
    ), (409 if conflict else 422 if errors else 200)


# -- health and the log --------------------------------------------------------------------------


@bp.get("/admin/health")
@admin_required
def health_page():  # type: ignore[no-untyped-def]
    state = health.check(lab().engine, lab().storage, counter_store())
    failed = db().query(OutboxMessage).filter(OutboxMessage.status == OutboxStatus.FAILED).count()
    started = current_app.extensions.get("printlab.started", time.time())
    return render_template(
        "admin/health.html", health=state, failed_mail=failed, version=__version__,
        uptime_s=int(time.time() - started), storage_root=str(lab().storage.root),
    )  # fmt: skip


LOG_PAGE = 100


@bp.get("/admin/log")
@admin_required
def log_page():  # type: ignore[no-untyped-def]
    before = whole_number(request.args.get("before"))
    entries = admin_log.recent_lines(db(), limit=LOG_PAGE, before_id=before)
    return render_template(
        "admin/log.html", entries=entries, zone=catalog().lab.time_zone, page_size=LOG_PAGE
    )
