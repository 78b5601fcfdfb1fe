"""The student's actions, authorised by their links: cancel a request from its status page (a confirm
step first) and send the corrected file staff asked for (the "needs changes" email's link).

Each route parses, calls one service in `services/jobs/student_actions.py`, then redirects or shows
the page again with a message in the student's words. Who acts is a `Student` value built from the
link, so a signed-in session could authorise the same calls later. The links are capabilities:
every answer forbids caching and Referer headers.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.domain.naming import extension_of
from printlab.domain.student_messages import STUDENT_LABEL
from printlab.domain.submission import checked_file_name
from printlab.models import Job
from printlab.services.errors import ConflictError, JobLocked, NotAllowed, StaleJob, ValidationError
from printlab.services.files.model_files import ModelRejected, check_model
from printlab.services.files.storage import StorageError
from printlab.services.jobs import change_requests, student_actions
from printlab.services.jobs.change_requests import LinkState
from printlab.services.jobs.references import make_reference
from printlab.services.lab.actors import Student
from printlab.services.views.student_status import job_for_reference, student_view
from printlab.web.context import catalog, db, lab
from printlab.web.job_version import expected_from
from printlab.web.limits import limiter
from printlab.web.uploads import HashingUpload

log = logging.getLogger(__name__)
bp = Blueprint("student_actions", __name__, template_folder="templates")

#: Posts one client address may make here in an hour; a student needs one or two.
POST_LIMIT = "20 per hour"
#: What a student reads when staff have the job's dialog open.
STAFF_WORKING = "Lab staff are working on this request right now. Please try again in a few minutes."
COULD_NOT_STORE = (
    "We couldn't store your file just now. Please send it again; if it keeps failing, tell the lab."
)


@bp.after_request
def _keep_links_private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(429)
def _too_many(_exc: Exception):  # type: ignore[no-untyped-def]
    return render_template("confirm/too_many.html"), 429


def _job_for(reference: str) -> Job:
    job = job_for_reference(db(), lab().config.secret_key, reference)
    if job is None:
        abort(404, description="This link doesn't match any print job. Check that you copied the whole link.")
    return job


@bp.route("/status/<reference>/cancel", methods=["GET", "POST"])
@limiter.limit(POST_LIMIT, methods=["POST"])
def cancel(reference: str):  # type: ignore[no-untyped-def]
    """ "Cancel my request": a page that says what will happen, then the post that does it."""
    job = _job_for(reference)
    back = redirect(url_for("student.status", reference=reference), 303)
    error = None
    if request.method == "POST":
        try:
            student_actions.cancel_by_student(
                db(), lab().storage, job.id,
                student=Student.by_status_link(job.id), expected=expected_from(request.form),
            )  # fmt: skip
        except StaleJob:
            db().expire_all()
            job = _job_for(reference)
            error = (
                f"Your request changed while this page was open: it is now “{STUDENT_LABEL[job.status_enum]}”. "
                "Nothing was cancelled. Check it again before you decide."
            )
        except JobLocked:
            error = STAFF_WORKING
        except (ConflictError, NotAllowed) as exc:
            error = str(exc)
        else:
            flash("You cancelled this request. We've emailed you a confirmation.")
            return back
    view = student_view(db(), job, catalog())
    if not view.can_cancel and error is None:
        return back  # nothing to cancel any more: the status page says where the job is
    return (
        render_template("student_actions/cancel.html", view=view, reference=reference, error=error),
        409 if error else 200,
    )


def _link_page(token: str, state: LinkState, job: Job | None, status: int):  # type: ignore[no-untyped-def]
    reference = make_reference(lab().config.secret_key, job.id) if job is not None else None
    return (
        render_template(
            "student_actions/replace_closed.html",
            message=student_actions.LINK_MESSAGES[state],
            reference=reference if state != LinkState.INVALID else None,
            lab_details=catalog().lab,
        ),
        status,
    )


def _replace_form(token: str, link: change_requests.ReplyLink, error: str | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    assert link.job is not None and link.request is not None
    cat = catalog()
    return (
        render_template(
            "student_actions/replace.html",
            token=token,
            view=student_view(db(), link.job, cat),
            reasons=change_requests.reasons_list(link.request.reasons),
            expires_at=link.request.expires_at,
            extensions=cat.model_extensions,
            limit_mb=cat.upload_limit_mb,
            error=error,
        ),
        status,
    )


@bp.get("/replace/<token>")
def replace_form(token: str):  # type: ignore[no-untyped-def]
    """The "needs changes" email's link: what staff asked for, and a form for the corrected file."""
    link = change_requests.find_link(db(), token, utcnow())
    if link.state != LinkState.OPEN:
        return _link_page(token, link.state, link.job, 404 if link.state == LinkState.INVALID else 410)
    return _replace_form(token, link)


@bp.post("/replace/<token>")
@limiter.limit(POST_LIMIT)
def replace(token: str):  # type: ignore[no-untyped-def]
    link = change_requests.find_link(db(), token, utcnow())
    if link.state != LinkState.OPEN:
        return _link_page(token, link.state, link.job, 404 if link.state == LinkState.INVALID else 410)
    upload = request.files.get("file")
    name, problem = checked_file_name(upload.filename if upload else "", catalog())
    stream = upload.stream if upload is not None else None
    if problem is None and (not isinstance(stream, HashingUpload) or stream.size == 0):
        problem = "This file is empty. Choose your corrected model file again."
    if problem is None:
        assert isinstance(stream, HashingUpload)
        try:
            check_model(stream.received().path, extension_of(name))
        except ModelRejected as exc:
            problem = str(exc)
    if problem is not None:
        return _replace_form(token, link, problem, 422)
    assert isinstance(stream, HashingUpload)
    try:
        job = student_actions.replace_file(db(), lab().storage, token, stream.received(), name)
    except student_actions.LinkNotUsable as exc:
        db().expire_all()
        again = change_requests.find_link(db(), token, utcnow())
        return _link_page(token, exc.state, again.job, 410)
    except ValidationError as exc:
        db().expire_all()
        return _replace_form(
            token, change_requests.find_link(db(), token, utcnow()), exc.errors.get("file", str(exc)), 422
        )
    except (OSError, StorageError):
        log.exception("could not store a corrected file")
        db().rollback()
        return _replace_form(token, change_requests.find_link(db(), token, utcnow()), COULD_NOT_STORE, 503)
    log.info("job %s: corrected file received", job.id)
    flash("Thanks — we've received your corrected file. Lab staff will check it and email you a quote.")
    return redirect(url_for("student.status", reference=make_reference(lab().config.secret_key, job.id)), 303)
