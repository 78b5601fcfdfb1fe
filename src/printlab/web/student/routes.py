"""Student routes: submit a model, see it arrive, follow the job's status — no account, no sign-in."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from printlab.domain.naming import extension_of
from printlab.domain.submission import (
    NOT_NEEDED,
    choose_model_file,
    left_out_message,
    not_needed_message,
    validate_submission,
)
from printlab.models import Job
from printlab.services.errors import ValidationError
from printlab.services.files.model_files import ModelRejected, check_model
from printlab.services.jobs import submissions
from printlab.services.jobs.references import make_reference
from printlab.services.views.student_status import StudentView, job_for_reference, student_view
from printlab.web.context import catalog, db, lab
from printlab.web.limits import limiter
from printlab.web.uploads import HashingUpload

log = logging.getLogger(__name__)
bp = Blueprint("student", __name__, template_folder="templates")

FORM_FIELDS = (
    "student_name",
    "student_email",
    "discipline",
    "class_number",
    "print_method",
    "color",
    "printer",
)


def _submit_limit() -> str:
    return lab().config.submit_rate_limit


def _catalog_for_form() -> dict[str, Any]:
    """What the form's script needs to narrow colours and printers to the chosen method."""
    cat = catalog()
    return {
        "methods": {
            m.name: {"colors": list(m.colors), "printers": [p.name for p in cat.printers_for(m.name)]}
            for m in cat.methods
        },
        "extensions": list(cat.model_extensions),
        "not_needed": {ext: not_needed_message(ext, cat) for ext in NOT_NEEDED},
        "limit_bytes": cat.upload_limit_mb * 1024 * 1024,
    }


def _render_form(values: dict[str, Any], errors: dict[str, str], status: int = 200):  # type: ignore[no-untyped-def]
    return (
        render_template(
            "student/submit.html",
            catalog=catalog(),
            form_data=_catalog_for_form(),
            values=values,
            errors=errors,
        ),
        status,
    )


@bp.get("/submit")
def submit_form():  # type: ignore[no-untyped-def]
    return _render_form({}, {})


@bp.post("/submit")
@limiter.limit(_submit_limit, methods=["POST"], deduct_when=lambda response: response.status_code == 303)
def submit():  # type: ignore[no-untyped-def]
    values = {key: request.form.get(key, "") for key in FORM_FIELDS}
    ticked = request.form.get("acknowledged_minimum_charge", "").lower() in ("1", "true", "on", "yes")
    values["acknowledged_minimum_charge"] = "on" if ticked else ""
    uploads = [u for u in request.files.getlist("file") if u.filename] or request.files.getlist("file")
    chosen, left_out = choose_model_file([u.filename or "" for u in uploads], catalog())
    upload = uploads[chosen] if uploads else None
    submission, errors = validate_submission(
        request.form, (upload.filename or "") if upload else "", catalog()
    )
    stream = upload.stream if upload is not None else None
    if "file" not in errors and (not isinstance(stream, HashingUpload) or stream.size == 0):
        errors["file"] = "This file is empty. Choose your model file again."
    if errors or submission is None or not isinstance(stream, HashingUpload):
        return _render_form(values, errors, 422)

    received = stream.received()
    try:
        check_model(received.path, extension_of(submission.original_filename))
        job = submissions.submit(db(), lab().storage, submission, received)
    except ModelRejected as exc:
        return _render_form(values, {"file": str(exc)}, 422)
    except ValidationError as exc:  # includes the duplicate rule
        return _render_form(values, exc.errors, 422)
    except OSError:
        log.exception("could not read or store an upload")
        message = (
            "We couldn't store your file just now. Please send it again; if it keeps failing, tell the lab."
        )
        return _render_form(values, {"file": message}, 503)
    finally:
        stream.discard()  # the job holds its own link to the file by now
    log.info("job %s submitted", job.id)
    if left_out:  # the files left out are discarded with the request's other uploads
        flash(left_out_message(left_out, submission.original_filename))
    return redirect(
        url_for("student.submitted", reference=make_reference(lab().config.secret_key, job.id)), 303
    )


def _job_for(reference: str) -> Job:
    job = job_for_reference(db(), lab().config.secret_key, reference)
    if job is None:
        abort(404, description="This link doesn't match any print job. Check that you copied the whole link.")
    return job


@bp.get("/submit/done/<reference>")
def submitted(reference: str):  # type: ignore[no-untyped-def]
    job = _job_for(reference)
    return render_template(
        "student/submitted.html", view=student_view(db(), job, catalog()), reference=reference
    )


@bp.get("/status/<reference>")
def status(reference: str):  # type: ignore[no-untyped-def]
    job = _job_for(reference)
    return status_page(student_view(db(), job, catalog()), reference)


def status_page(view: StudentView, reference: str, *, error: str | None = None, code: int = 200) -> Response:
    """The status page. Its link is a capability (anyone holding it sees the job), so the page stays
    out of shared caches and its address out of Referer headers."""
    response = Response(
        render_template("student/status.html", view=view, reference=reference, error=error), code
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/status/<reference>/analysis")
def analysis(reference: str):  # type: ignore[no-untyped-def]
    """The analysis block alone, for the pages to refresh themselves while it is being worked out."""
    job = _job_for(reference)
    response = Response(
        render_template(
            "student/_analysis.html", view=student_view(db(), job, catalog()), reference=reference
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/status/<reference>/thumbnail.png")
def thumbnail(reference: str):  # type: ignore[no-untyped-def]
    job = _job_for(reference)
    if job.analysis is None or not job.analysis.thumbnail_png:
        abort(404)
    response = Response(job.analysis.thumbnail_png, mimetype="image/png")
    response.headers["Cache-Control"] = "private, max-age=300"
    return response
