"""Job page routes: details, files, notes, the reviewed mark, locks, and each action's dialog."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.datastructures import MultiDict

from printlab.domain.charging import METHODS
from printlab.domain.naming import extension_of
from printlab.models import Job, Staff
from printlab.services import mail
from printlab.services.errors import (
    ConflictError,
    InvalidTransition,
    NotAllowed,
    NotFound,
    ServiceError,
    ValidationError,
)
from printlab.services.files.storage import StorageError, TooLarge
from printlab.services.jobs import job_desk, locks, resend
from printlab.services.lab import account_codes
from printlab.services.lab.actors import Actor
from printlab.services.lab.staff import list_staff
from printlab.services.views.approval import approval_form
from printlab.services.views.job_detail import file_for_download, job_detail
from printlab.web.auth.guard import current_actor, login_required
from printlab.web.context import catalog, db, lab, upload_limit_bytes
from printlab.web.job_version import expected_from
from printlab.web.jobs.actions import ACTIONS, actions_for, email_sentence

bp = Blueprint("jobs", __name__, template_folder="templates")


def _actor() -> Actor:
    return current_actor()


def _active_staff() -> list[Staff]:
    return list_staff(db(), active_only=True)


def _detail(job_id: str):  # type: ignore[no-untyped-def]
    try:
        return job_detail(db(), lab().storage, job_id, catalog())
    except NotFound:
        abort(404, description="There is no such job.")


@bp.get("/jobs/<job_id>")
@login_required
def show(job_id: str):  # type: ignore[no-untyped-def]
    detail = _detail(job_id)
    if detail.job.staff_viewed_at is None:
        job_desk.note_opened(
            db(), lab().storage, job_id
        )  # the page still shows NEW this once, then it's gone
    return render_template(
        "jobs/show.html",
        d=detail,
        actions=actions_for(detail.status),
        staff=_active_staff(),
        catalog=catalog(),
        # SPEC §5 names the scheme 3dprint://, but a scheme can't start with a digit: browsers treat
        # such a link as a relative URL. printlab:// reaches the helper (docs/operations.md).
        open_in_slicer=lambda path: "printlab://open?path=" + _quote(path),
    )


def _quote(path: str) -> str:
    return quote(path, safe="")


@bp.get("/jobs/<job_id>/files/<name>")
@login_required
def download(job_id: str, name: str):  # type: ignore[no-untyped-def]
    """Staff-only download of one of the job's own files (nothing else is reachable from here)."""
    job = db().get(Job, job_id) or abort(404)
    try:
        path = file_for_download(lab().storage, job, name)
        handle = lab().storage.open_file(path)
    except (FileNotFoundError, StorageError):
        abort(404, description="That file isn't one of this job's files.")
    return send_file(handle, as_attachment=True, download_name=name, max_age=0)


@bp.get("/jobs/<job_id>/model")
@login_required
def model(job_id: str):  # type: ignore[no-untyped-def]
    """The student's original model, for the in-browser 3D preview."""
    detail = _detail(job_id)
    gone = "The model file is no longer on the lab's storage."
    if detail.model_file is None:
        abort(404, description=gone)
    try:
        handle = lab().storage.open_file(Path(detail.model_file.absolute))
    except (FileNotFoundError, StorageError):
        abort(404, description=gone)
    return send_file(handle, mimetype="application/octet-stream", max_age=0)


@bp.get("/jobs/<job_id>/parts/<int:number>/model")
@login_required
def part_model(job_id: str, number: int):  # type: ignore[no-untyped-def]
    """One part's model file of a job sent in parts, for its 3D preview."""
    detail = _detail(job_id)
    gone = "That part's model file is not on the lab's storage."
    entry = next((e for e in detail.parts if e.part.number == number), None)
    if entry is None or entry.file is None:
        abort(404, description=gone)
    try:
        handle = lab().storage.open_file(Path(entry.file.absolute))
    except (FileNotFoundError, StorageError):
        abort(404, description=gone)
    return send_file(handle, mimetype="application/octet-stream", max_age=0)


@bp.get("/jobs/<job_id>/thumbnail.png")
@login_required
def thumbnail(job_id: str):  # type: ignore[no-untyped-def]
    job = db().get(Job, job_id)
    if job is None or job.analysis is None or not job.analysis.thumbnail_png:
        abort(404)
    response = Response(job.analysis.thumbnail_png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


@bp.post("/jobs/<job_id>/notes")
@login_required
def notes(job_id: str):  # type: ignore[no-untyped-def]
    """Autosave of the notes box (JSON answer for the script; a redirect for a plain form post)."""
    try:
        job_desk.update_notes(
            db(),
            lab().storage,
            job_id,
            request.form.get("notes", ""),
            actor=_actor(),
            expected=expected_from(request.form),
        )
    except ValidationError as exc:
        return _answer(job_id, ok=False, message=" ".join(exc.errors.values()), status=422)
    except ConflictError as exc:
        return _answer(job_id, ok=False, message=str(exc), status=409)
    except NotFound:
        abort(404)
    return _answer(job_id, ok=True, message="Notes saved.")


@bp.post("/jobs/<job_id>/reviewed")
@login_required
def reviewed(job_id: str):  # type: ignore[no-untyped-def]
    mark = request.form.get("reviewed") != "0"
    try:
        job_desk.mark_reviewed(db(), lab().storage, job_id, mark, actor=_actor())
    except ValidationError as exc:
        return _answer(job_id, ok=False, message=" ".join(exc.errors.values()), status=422)
    except NotFound:
        abort(404)
    if not mark and request.accept_mimetypes.best != "application/json":
        # Back to the list: reopening the job page would count as opening it and clear NEW again.
        flash("Marked as new.")
        return redirect(url_for("dashboard.index"), 303)
    return _answer(job_id, ok=True, message="Marked as reviewed." if mark else "Marked as new.")


@bp.post("/jobs/<job_id>/files")
@login_required
def attach(job_id: str):  # type: ignore[no-untyped-def]
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _answer(job_id, ok=False, message="Choose a file to add.", status=422)
    try:
        name = job_desk.attach_file(
            db(), lab().storage, job_id, upload.stream, upload.filename,
            actor=_actor(), max_bytes=upload_limit_bytes(),
        )  # fmt: skip
    except (ValidationError, TooLarge) as exc:
        message = " ".join(exc.errors.values()) if isinstance(exc, ValidationError) else str(exc)
        return _answer(job_id, ok=False, message=message, status=422)
    except NotFound:
        abort(404)
    return _answer(job_id, ok=True, message=f"Added {name}.")


@bp.post("/jobs/<job_id>/emails/<int:outbox_id>/retry")
@login_required
def retry_email(job_id: str, outbox_id: int):  # type: ignore[no-untyped-def]
    try:
        mail.retry(db(), outbox_id, staff=_actor().staff)
    except ValidationError as exc:
        return _answer(job_id, ok=False, message=" ".join(exc.errors.values()), status=422)
    except NotFound:
        abort(404)
    return _answer(job_id, ok=True, message="The email will be sent again in a moment.")


@bp.post("/jobs/<job_id>/emails/resend")
@login_required
def resend_email(job_id: str):  # type: ignore[no-untyped-def]
    actor = _actor()
    try:
        resend.resend(
            db(), lab().storage, job_id, request.form.get("template", ""), staff=actor.staff, workstation=actor.workstation,
            expected=expected_from(request.form),
        )  # fmt: skip
    except ValidationError as exc:
        return _answer(job_id, ok=False, message=" ".join(exc.errors.values()), status=422)
    except ConflictError as exc:
        return _answer(job_id, ok=False, message=str(exc), status=409)
    except NotFound:
        abort(404)
    return _answer(job_id, ok=True, message="The email is on its way.")


@bp.post("/jobs/<job_id>/lock")
@login_required
def take_lock(job_id: str):  # type: ignore[no-untyped-def]
    """Taken when an action dialog opens, extended by its heartbeat."""
    try:
        until = locks.take(db(), job_id, actor=_actor())
    except ConflictError as exc:
        return jsonify({"ok": False, "message": str(exc)}), 409
    except ValidationError as exc:
        return jsonify({"ok": False, "message": " ".join(exc.errors.values())}), 422
    except NotFound:
        abort(404)
    return jsonify({"ok": True, "until": until.isoformat() + "Z"})


@bp.post("/jobs/<job_id>/unlock")
@login_required
def release_lock(job_id: str):  # type: ignore[no-untyped-def]
    try:
        locks.release(db(), job_id, actor=_actor())
    except NotFound:
        abort(404)
    return jsonify({"ok": True})


@bp.route("/jobs/<job_id>/act/<action>", methods=["GET", "POST"])
@login_required
def act(job_id: str, action: str):  # type: ignore[no-untyped-def]
    spec = ACTIONS.get(action) or abort(404)
    detail = _detail(job_id)
    errors: dict[str, str] = {}
    conflict = None
    if request.method == "POST":
        try:
            result = spec.run(
                db(), lab().storage, detail.job, _actor(), expected_from(request.form), request.form
            )
        except ValidationError as exc:
            errors = exc.errors
        except (ConflictError, InvalidTransition) as exc:
            conflict = str(exc)
        except NotAllowed as exc:
            abort(403, description=str(exc))
        except (ServiceError, StorageError) as exc:  # a storage refusal says what to do, in plain words
            conflict = str(exc)
        else:
            flash(result if isinstance(result, str) else f"{spec.label}: done for job {detail.simple_id}.")
            return redirect(url_for("jobs.show", job_id=job_id), 303)
        detail = _detail(job_id)  # show the job as it is now
    elif detail.status not in spec.statuses:
        conflict = f"This job is {detail.status.label}; “{spec.label}” isn't possible now."
    form = request.form
    if request.method == "GET" and spec.name == "print_failed" and detail.run_note and detail.run_note.reason:
        # The printer said why it stopped: staff start from its words.
        form = MultiDict({"reason": f"The {detail.run_note.printer} stopped: {detail.run_note.reason}"})
    status_code = 409 if conflict else (422 if errors else 200)
    return (
        render_template(
            "jobs/act.html",
            d=detail,
            spec=spec,
            staff=_active_staff(),
            catalog=catalog(),
            form=form,
            errors=errors,
            conflict=conflict,
            extension_of=extension_of,
            email_sentence=email_sentence,
            approval=approval_form(lab().storage, detail.job, catalog()) if spec.edits_quote else None,
            methods=METHODS,
            account_codes=account_codes.list_codes(db(), active_only=True) if spec.takes_payment else [],
        ),
        status_code,
    )


def _answer(job_id: str, *, ok: bool, message: str, status: int = 200):  # type: ignore[no-untyped-def]
    if request.accept_mimetypes.best == "application/json":
        return jsonify({"ok": ok, "message": message}), status
    flash(message)
    return redirect(url_for("jobs.show", job_id=job_id), 303)
