"""Student routes: submit a model, see it arrive, follow the job's status — no account, no sign-in."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from printlab.clock import to_lab_time, utcnow
from printlab.domain.naming import extension_of
from printlab.domain.statuses import Status
from printlab.domain.submission import (
    FORM_ORDER,
    MAX_CLASS_NUMBER,
    MAX_EMAIL_LENGTH,
    MESSAGES,
    NAME_LENGTH,
    NOT_NEEDED,
    choose_model_file,
    clean_filename,
    in_form_order,
    left_out_message,
    not_needed_message,
    validate_submission,
)
from printlab.domain.text import EMAIL_PATTERN
from printlab.models import Job
from printlab.services.errors import ValidationError
from printlab.services.files import held_uploads
from printlab.services.files.model_files import ModelRejected, check_model
from printlab.services.files.storage import ReceivedFile, StorageError
from printlab.services.jobs import submissions
from printlab.services.jobs.records import simple_id_for
from printlab.services.jobs.references import make_reference, read_reference
from printlab.services.views.student_status import StudentView, job_for_reference, student_view
from printlab.web.context import catalog, db, lab
from printlab.web.limits import browser_id, limiter, per_browser, per_email
from printlab.web.uploads import HashingUpload

log = logging.getLogger(__name__)
bp = Blueprint("student", __name__, template_folder="templates")

#: The form's typed and chosen fields (the file and the tick box are read on their own).
FORM_FIELDS = tuple(name for name in FORM_ORDER if name not in ("file", "acknowledged_minimum_charge"))
#: What the form says when a new upload was refused as empty.
EMPTY_FILE = "This file is empty. Choose your model file again."
COULD_NOT_STORE = (
    "We couldn't store your file just now. Please send it again; if it keeps failing, tell the lab."
)
#: What it says when the file kept from an earlier try has gone (past its hour, or another browser's).
HELD_FILE_GONE = "Your earlier file is no longer kept (we keep it for an hour). Choose your model file again."


def _address_ceiling() -> str:
    """All successful submissions from one client address (a classroom or campus NAT shares one)."""
    return lab().config.submit_rate_limit


def _per_student() -> str:
    """Successful submissions per email address and per browser: the lab's setting."""
    return f"{catalog().submissions_per_hour} per hour"


def _sent(response: Response) -> bool:
    return response.status_code == 303


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


def _render_form(  # type: ignore[no-untyped-def]
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    *,
    held: held_uploads.HeldFile | None = None,
    send_again_at: str | None = None,
):
    earlier = _earlier_job(values.get("resubmission_of", ""))
    return (
        render_template(
            "student/submit.html",
            catalog=catalog(),
            form_data=_catalog_for_form(),
            rules=RULES,
            values=values,
            errors=in_form_order(errors),
            held=held,
            send_again_at=send_again_at,
            resubmitting=simple_id_for(db(), earlier.id) if earlier is not None else None,
        ),
        status,
    )


def _earlier_job(reference: str) -> Job | None:
    """The rejected job a "Send a corrected file" link names (from its status page), else None."""
    if not reference:
        return None
    job = job_for_reference(db(), lab().config.secret_key, reference)
    return job if job is not None and job.status == Status.REJECTED else None


RULES = {
    "name_length": NAME_LENGTH,
    "max_email": MAX_EMAIL_LENGTH,
    "email_pattern": EMAIL_PATTERN,
    "max_class_number": MAX_CLASS_NUMBER,
    "messages": MESSAGES,
}


@bp.get("/submit")
def submit_form():  # type: ignore[no-untyped-def]
    browser_id()  # the per-browser limit and a kept file need it on the way back
    after = request.args.get("after", "")[:200]
    earlier = _earlier_job(after)
    if earlier is None:
        return _render_form({}, {})
    # "Send a corrected file" from a rejected job's status page: its answers, and the link to it.
    values = {
        "student_name": earlier.student_name or "",
        "student_email": earlier.student_email or "",
        "discipline": earlier.discipline or "",
        "class_number": earlier.class_number or "",
        "print_method": earlier.material or "",
        "color": earlier.color or "",
        "printer": earlier.printer or "",
        "resubmission_of": after,
    }
    return _render_form(values, {})


def _form_values() -> dict[str, str]:
    values = {key: request.form.get(key, "") for key in FORM_FIELDS}
    ticked = request.form.get("acknowledged_minimum_charge", "").lower() in ("1", "true", "on", "yes")
    values["acknowledged_minimum_charge"] = "on" if ticked else ""
    values["resubmission_of"] = request.form.get("resubmission_of", "")[:200]
    return values


@dataclass
class _ModelFile:
    """This attempt's model file: one just uploaded, or the one kept from an earlier attempt."""

    name: str = ""
    upload: HashingUpload | None = None
    held: held_uploads.HeldFile | None = None
    #: A kept file was asked for and isn't there (past its hour, or another browser's).
    held_gone: bool = False
    #: Files sent beside the model that the lab doesn't need (an OBJ's .mtl), discarded with the request.
    left_out: list[str] = field(default_factory=list)

    @classmethod
    def of_request(cls) -> _ModelFile:
        storage, browser = lab().storage, browser_id()
        uploads = [u for u in request.files.getlist("file") if u.filename]
        chosen, left_out = choose_model_file([u.filename or "" for u in uploads], catalog())
        token = request.form.get("held_file", "")
        if uploads:
            upload = uploads[chosen]
            if token:
                held_uploads.release(storage, token)  # a new file replaces the kept one
            stream = upload.stream
            return cls(
                upload.filename or "",
                stream if isinstance(stream, HashingUpload) else None,
                left_out=left_out,
            )
        if token:
            held = held_uploads.find(storage, token, browser)
            if held is None:
                return cls(held_gone=True)
            return cls(held.original_filename, held=held)
        return cls()

    def problem(self) -> str | None:
        """What is wrong with the file itself, beyond its name, in the student's words (None: nothing)."""
        if self.upload is None and self.held is None:
            return EMPTY_FILE if self.name else None  # no file at all: the form's own rule says so
        if self.upload is not None and self.upload.size == 0:
            return EMPTY_FILE
        try:
            if self.upload is not None:
                path = self.upload.received().path
            else:
                path = held_uploads.file_of(lab().storage, self.held)  # type: ignore[arg-type]
            check_model(path, extension_of(clean_filename(self.name)))
        except ModelRejected as exc:
            return str(exc)
        except OSError:
            log.exception("could not read an upload")
            return COULD_NOT_STORE
        return None

    def keep(self) -> held_uploads.HeldFile | None:
        """Hold the file for the next attempt (or keep holding it); None when there is none to keep."""
        storage, browser = lab().storage, browser_id()
        try:
            if self.held is not None:
                return held_uploads.renew(storage, self.held, browser)
            if self.upload is not None and self.upload.size > 0:
                return held_uploads.hold(storage, self.upload.received(), clean_filename(self.name), browser)
        except (OSError, StorageError):
            log.warning("could not keep an upload for the student's next attempt", exc_info=True)
        return None

    def received(self) -> ReceivedFile:
        if self.held is not None:
            return held_uploads.take(lab().storage, self.held)
        assert self.upload is not None
        return held_uploads.second_link(lab().storage, self.upload.received())

    def release(self) -> None:
        if self.held is not None:
            held_uploads.release(lab().storage, self.held.token)


@bp.post("/submit")
@limiter.limit(_address_ceiling, methods=["POST"], deduct_when=_sent)
@limiter.limit(_per_student, key_func=per_email, methods=["POST"], deduct_when=_sent)
@limiter.limit(_per_student, key_func=per_browser, methods=["POST"], deduct_when=_sent)
def submit():  # type: ignore[no-untyped-def]
    values = _form_values()
    model = _ModelFile.of_request()
    submission, errors = validate_submission(request.form, model.name, catalog())
    if model.held_gone:
        errors["file"] = HELD_FILE_GONE
    elif "file" not in errors:
        problem = model.problem()
        if problem:
            errors["file"] = problem
    if errors or submission is None:
        kept = None if "file" in errors else model.keep()
        return _render_form(values, errors, 422, held=kept)

    try:
        earlier = read_reference(lab().config.secret_key, values["resubmission_of"])
        job = submissions.submit(db(), lab().storage, submission, model.received(), resubmission_of=earlier)
    except ValidationError as exc:  # the duplicate rule: this file is already with the lab
        model.release()
        return _render_form(values, exc.errors, 422)
    except OSError:
        log.exception("could not store an upload")
        return _render_form(values, {"file": COULD_NOT_STORE}, 503, held=model.keep())
    model.release()
    log.info("job %s submitted", job.id)
    if model.left_out:  # the files left out are discarded with the request's other uploads
        flash(left_out_message(model.left_out, submission.original_filename))
    return redirect(
        url_for("student.submitted", reference=make_reference(lab().config.secret_key, job.id)), 303
    )


@bp.errorhandler(429)
def too_many(_exc: HTTPException):  # type: ignore[no-untyped-def]
    """A submission limit was reached: the form again, answers and file kept, saying when to send again."""
    model = _ModelFile.of_request()
    allowed = extension_of(clean_filename(model.name)) in catalog().model_extensions
    kept = model.keep() if model.name and allowed and model.problem() is None else None
    return _render_form(_form_values(), {}, 429, held=kept, send_again_at=_send_again_at())


def _send_again_at() -> str:
    """When the limit that was reached lets this student send again, in the lab's time: '14:35'."""
    limit = limiter.current_limit
    reset = limit.reset_at if limit is not None else time.time() + 3600
    moment = datetime.fromtimestamp(math.ceil(reset / 60) * 60, UTC).replace(tzinfo=None)
    zone = catalog().lab.time_zone
    local, today = to_lab_time(moment, zone), to_lab_time(utcnow(), zone)
    return local.strftime("%H:%M") if local.date() == today.date() else local.strftime("%d %b %H:%M")


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
    secret = lab().config.secret_key
    response = Response(
        render_template(
            "student/status.html",
            view=view,
            reference=reference,
            error=error,
            status_reference=lambda job_id: make_reference(secret, job_id),
        ),
        code,
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
