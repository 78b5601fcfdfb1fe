"""Student routes: submit a model, see it arrive, follow the job's status — no account, no sign-in."""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from printlab.clock import to_lab_time, utcnow
from printlab.domain.naming import extension_of
from printlab.domain.statuses import Status
from printlab.domain.submission import (
    FORM_ORDER,
    MAX_CLASS_NUMBER,
    MAX_COPIES,
    MAX_EMAIL_LENGTH,
    MAX_PARTS,
    MESSAGES,
    NAME_LENGTH,
    NOT_NEEDED,
    ZIP_EXTENSION,
    checked_file_name,
    choose_model_files,
    clean_filename,
    copies_message,
    in_form_order,
    left_out_message,
    not_needed_message,
    parts_problem,
    read_copies,
    validate_submission,
)
from printlab.domain.text import EMAIL_PATTERN
from printlab.models import Job
from printlab.services.errors import ValidationError
from printlab.services.files import held_uploads
from printlab.services.files.model_files import ModelRejected, check_model
from printlab.services.files.model_zips import UnpackedModel, unpack_models
from printlab.services.files.storage import TEMP_FOLDER, ReceivedFile, StorageError
from printlab.services.jobs import submissions
from printlab.services.jobs.records import simple_id_for
from printlab.services.jobs.references import make_reference, read_reference
from printlab.services.views.my_requests import last_answers
from printlab.services.views.student_status import StudentView, job_for_reference, student_view
from printlab.web.context import catalog, db, job_limit_bytes, lab
from printlab.web.limits import browser_id, limiter, per_browser, per_email
from printlab.web.my.signed_in import student_email
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
        "job_limit_bytes": max(cat.upload_limit_mb, cat.job_upload_limit_mb) * 1024 * 1024,
        "max_parts": MAX_PARTS,
        "max_copies": MAX_COPIES,
    }


def _render_form(  # type: ignore[no-untyped-def]
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
    *,
    held: list[held_uploads.HeldFile] | None = None,
    held_copies: list[str] | None = None,
    send_again_at: str | None = None,
):
    earlier = _earlier_job(values.get("resubmission_of", ""))
    return (
        render_template(
            "student/submit.html",
            catalog=catalog(),
            form_data=_catalog_for_form(),
            rules=RULES,
            max_parts=MAX_PARTS,
            max_copies=MAX_COPIES,
            values=values,
            errors=in_form_order(errors),
            held=held or [],
            held_copies=held_copies or [],
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
        return _render_form(_signed_in_answers(), {})
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


def _signed_in_answers() -> dict[str, Any]:
    """A signed-in student's name, email, discipline and class from their newest job (else nothing)."""
    email = student_email()
    if email is None:
        return {}
    last = last_answers(db(), email)
    if last is None:
        return {"student_email": email}
    answers = {
        "student_name": last.student_name,
        "student_email": last.student_email,
        "discipline": last.discipline,
        "class_number": last.class_number,
    }
    return {key: value for key, value in answers.items() if value}


def _form_values() -> dict[str, str]:
    values = {key: request.form.get(key, "") for key in FORM_FIELDS}
    ticked = request.form.get("acknowledged_minimum_charge", "").lower() in ("1", "true", "on", "yes")
    values["acknowledged_minimum_charge"] = "on" if ticked else ""
    values["resubmission_of"] = request.form.get("resubmission_of", "")[:200]
    return values


@dataclass
class _ModelFile:
    """One of this attempt's files: one just uploaded, or one kept from an earlier attempt. A .zip
    stands for the models inside it."""

    name: str = ""
    upload: HashingUpload | None = None
    held: held_uploads.HeldFile | None = None
    #: What the student typed for its copies ("" means one).
    copies_text: str = ""

    @property
    def clean_name(self) -> str:
        """The file's name as it is stored (the text rule's form: NFC, no control characters)."""
        return checked_file_name(self.name, catalog(), zip_allowed=True)[0] or clean_filename(self.name)

    def path(self) -> Path:
        """Where this attempt's file is. Raises OSError (FileNotFoundError when a kept file is gone)."""
        if self.upload is not None:
            return self.upload.received().path
        return held_uploads.file_of(lab().storage, self.held)  # type: ignore[arg-type]

    def empty(self) -> bool:
        return self.upload is not None and self.upload.size == 0

    def keep(self) -> held_uploads.HeldFile | None:
        """Hold the file for the next attempt (or keep holding it); None when there is none to keep."""
        storage, browser = lab().storage, browser_id()
        try:
            if self.held is not None:
                return held_uploads.renew(storage, self.held, browser)
            if self.upload is not None and self.upload.size > 0:
                return held_uploads.hold(storage, self.upload.received(), self.clean_name, browser)
        except (OSError, StorageError):
            log.warning("could not keep an upload for the student's next attempt", exc_info=True)
        return None

    def received(self) -> ReceivedFile:
        if self.held is not None:
            return held_uploads.take(lab().storage, self.held)
        assert self.upload is not None
        return held_uploads.second_link(lab().storage, self.upload.received())


@dataclass
class _JobFiles:
    """This attempt's model files (a job's parts): those just uploaded, or those kept from an earlier
    attempt. New files replace every kept one."""

    files: list[_ModelFile] = field(default_factory=list)
    #: A kept file was asked for and isn't there (past its hour, or another browser's).
    held_gone: bool = False
    #: Files sent beside the models that the lab doesn't need (an OBJ's .mtl), discarded with the request.
    left_out: list[str] = field(default_factory=list)
    #: Models unpacked from a .zip for this attempt (removed unless a job took them over).
    unpacked: list[UnpackedModel] = field(default_factory=list)
    #: How many models each .zip (by its place among the files) held.
    zip_sizes: dict[int, int] = field(default_factory=dict)
    #: The copies of the files keep() held, in its order (for the form's kept list).
    kept_copies: list[str] = field(default_factory=list)

    @classmethod
    def of_request(cls) -> _JobFiles:
        storage, browser = lab().storage, browser_id()
        uploads = [u for u in request.files.getlist("file") if u.filename]
        copies = request.form.getlist("copies")
        tokens = [token for token in request.form.getlist("held_file") if token]
        if uploads:
            for token in tokens:
                held_uploads.release(storage, token)  # new files replace the kept ones
            chosen, left_out = choose_model_files([u.filename or "" for u in uploads], catalog())
            files = []
            for index in chosen:
                stream = uploads[index].stream
                files.append(
                    _ModelFile(
                        uploads[index].filename or "",
                        stream if isinstance(stream, HashingUpload) else None,
                        copies_text=_nth(copies, index),
                    )
                )
            return cls(files, left_out=left_out)
        kept_copies = request.form.getlist("held_copies")
        files = []
        for index, token in enumerate(tokens):
            held = held_uploads.find(storage, token, browser)
            if held is None:
                return cls(held_gone=True)
            files.append(_ModelFile(held.original_filename, held=held, copies_text=_nth(kept_copies, index)))
        return cls(files)

    @property
    def first_name(self) -> str:
        return self.files[0].name if self.files else ""

    def problem(self) -> str | None:
        """What is wrong with the files themselves, in the student's words (None: nothing).

        Checks each name, its copies, unpacks each .zip (3MF safety rules), then the count and the
        sizes of the parts together, and each model's content.
        """
        cat = catalog()
        several = len(self.files) > 1
        for file in self.files:
            if file.name and (message := checked_file_name(file.name, cat, zip_allowed=True)[1]):
                return f"{file.clean_name}: {message}" if several and file.clean_name else message
            if read_copies(file.copies_text) is None:
                return copies_message(file.clean_name)
            if file.upload is None and file.held is None:
                return EMPTY_FILE if file.name else None  # no file at all: the form's own rule says so
            if file.empty():
                return f"{file.clean_name}: {EMPTY_FILE}" if several else EMPTY_FILE
        try:
            parts = self._parts()
        except ModelRejected as exc:
            return str(exc)
        except OSError:
            log.exception("could not read an upload")
            return COULD_NOT_STORE
        if problem := parts_problem(
            [name for name, _p, _s, _c in parts], [size for _n, _p, size, _c in parts], cat
        ):
            return problem
        for name, path, _size, _copies in parts:
            try:
                check_model(path, extension_of(name))
            except ModelRejected as exc:
                return str(exc) if len(parts) == 1 else f"{name}: {exc}"
            except OSError:
                log.exception("could not read an upload")
                return COULD_NOT_STORE
        return None

    def _parts(self) -> list[tuple[str, Path, int, int]]:
        """(name, path, size, copies) of every model, a .zip's models in its place. Raises
        ModelRejected, OSError."""
        cat = catalog()
        parts: list[tuple[str, Path, int, int]] = []
        self.discard_unpacked()
        self.zip_sizes = {}
        for index, file in enumerate(self.files):
            copies = read_copies(file.copies_text) or 1
            if extension_of(file.clean_name) != ZIP_EXTENSION:
                path = file.path()
                parts.append((file.clean_name, path, path.stat().st_size, copies))
                continue
            models = unpack_models(
                file.path(),
                lab().storage.root / TEMP_FOLDER,
                model_extensions=cat.model_extensions,
                max_models=max(1, MAX_PARTS - len(parts)),
                max_file_bytes=cat.upload_limit_mb * 1024 * 1024,
                max_total_bytes=job_limit_bytes(),
            )
            self.unpacked += models
            self.zip_sizes[index] = len(models)
            parts += [(m.name, m.received.path, m.received.size, copies) for m in models]
        return parts

    def new_parts(self) -> list[submissions.NewPart]:
        """The parts for the job, in order; a .zip's models in its place (checked by problem() first)."""
        unpacked = iter(self.unpacked)
        parts = []
        for index, file in enumerate(self.files):
            copies = read_copies(file.copies_text) or 1
            if extension_of(file.clean_name) == ZIP_EXTENSION:
                parts += [
                    submissions.NewPart(model.name, model.received, copies)
                    for model in itertools.islice(unpacked, self.zip_sizes[index])
                ]
            else:
                parts.append(submissions.NewPart(file.clean_name, file.received(), copies))
        self.unpacked = []  # the job's submission consumes them now
        return parts

    def keep(self) -> list[held_uploads.HeldFile]:
        """Hold every file for the next attempt; `kept_copies` then has their copies, in the same order."""
        kept = []
        self.kept_copies = []
        for file in self.files:
            held = file.keep()
            if held is not None:
                kept.append(held)
                self.kept_copies.append(str(read_copies(file.copies_text) or 1))
        return kept

    def release(self) -> None:
        for file in self.files:
            if file.held is not None:
                held_uploads.release(lab().storage, file.held.token)

    def discard_unpacked(self) -> None:
        for model in self.unpacked:
            model.received.discard()
        self.unpacked = []


def _nth(values: list[str], index: int) -> str:
    return values[index] if index < len(values) else ""


@bp.post("/submit")
@limiter.limit(_address_ceiling, methods=["POST"], deduct_when=_sent)
@limiter.limit(_per_student, key_func=per_email, methods=["POST"], deduct_when=_sent)
@limiter.limit(_per_student, key_func=per_browser, methods=["POST"], deduct_when=_sent)
def submit():  # type: ignore[no-untyped-def]
    values = _form_values()
    files = _JobFiles.of_request()
    try:
        return _submit(values, files)
    finally:
        files.discard_unpacked()


def _submit(values: dict[str, str], files: _JobFiles):  # type: ignore[no-untyped-def]
    submission, errors = validate_submission(request.form, files.first_name, catalog(), zip_allowed=True)
    if files.held_gone:
        errors["file"] = HELD_FILE_GONE
    elif "file" not in errors:
        problem = files.problem()
        if problem:
            errors["file"] = problem
    if errors or submission is None:
        kept = [] if "file" in errors else files.keep()
        return _render_form(values, errors, 422, held=kept, held_copies=files.kept_copies)
    parts = files.new_parts()
    submission = replace(submission, original_filename=parts[0].original_filename)
    try:
        earlier = read_reference(lab().config.secret_key, values["resubmission_of"])
        job = submissions.submit_parts(db(), lab().storage, submission, parts, resubmission_of=earlier)
    except ValidationError as exc:  # the duplicate rule: this file is already with the lab
        files.release()
        return _render_form(values, exc.errors, 422)
    except OSError:
        log.exception("could not store an upload")
        kept = files.keep()
        return _render_form(values, {"file": COULD_NOT_STORE}, 503, held=kept, held_copies=files.kept_copies)
    files.release()
    log.info("job %s submitted", job.id)
    if files.left_out:  # the files left out are discarded with the request's other uploads
        flash(left_out_message(files.left_out, submission.original_filename))
    return redirect(
        url_for("student.submitted", reference=make_reference(lab().config.secret_key, job.id)), 303
    )


@bp.errorhandler(429)
def too_many(_exc: HTTPException):  # type: ignore[no-untyped-def]
    """A submission limit was reached: the form again, answers and file kept, saying when to send again."""
    files = _JobFiles.of_request()
    try:
        kept = files.keep() if files.files and files.first_name and files.problem() is None else []
    finally:
        files.discard_unpacked()
    return _render_form(
        _form_values(), {}, 429, held=kept, held_copies=files.kept_copies, send_again_at=_send_again_at()
    )


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
