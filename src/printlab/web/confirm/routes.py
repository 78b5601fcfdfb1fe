"""The quote page behind the emailed link: GET only shows, POST confirms, declines or asks for a fresh link.

The status page asks for a fresh link too ("Email me a new link"): the link goes to the student's
address, never onto the page, since whoever holds a status link is not necessarily the student.

Email scanners pre-fetch links, so nothing here changes state on GET. The token is a capability in
the URL: every answer forbids caching and Referer headers, and an unusable link gets one plain
page that says nothing about why.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.domain.student_messages import masked_email
from printlab.models import Job
from printlab.services.errors import JobLocked, ValidationError
from printlab.services.jobs import quote_links, student_actions, workflow
from printlab.services.jobs.quote_links import ConfirmOutcome
from printlab.services.jobs.references import make_reference
from printlab.services.lab.actors import Actor
from printlab.services.views.student_status import job_for_reference, student_view
from printlab.web.context import catalog, db, lab
from printlab.web.limits import limiter
from printlab.web.student.routes import status_page

bp = Blueprint("confirm", __name__, template_folder="templates")

#: POSTs (confirm and new-link together) one client address may make; a person needs two or three.
POST_LIMIT = "20 per hour"
_post_limit = limiter.shared_limit(POST_LIMIT, scope="confirm-post")

_TEMPLATES = {
    None: "confirm/quote.html",
    ConfirmOutcome.CONFIRMED: "confirm/confirmed.html",
    ConfirmOutcome.ALREADY_CONFIRMED: "confirm/already_confirmed.html",
    ConfirmOutcome.EXPIRED: "confirm/expired.html",
}


@bp.after_request
def _keep_the_token_private(response: Response) -> Response:
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(404)
def _unknown(_exc: Exception):  # type: ignore[no-untyped-def]
    """A link the app refuses before looking it up (e.g. with NUL in it) gets the same plain page."""
    return render_template("confirm/invalid.html", lab_details=catalog().lab), 404


@bp.errorhandler(429)
def _too_many(_exc: Exception):  # type: ignore[no-untyped-def]
    return render_template("confirm/too_many.html"), 429


@bp.get("/confirm/<token>")
def show(token: str):  # type: ignore[no-untyped-def]
    job = quote_links.find_by_token(db(), token)
    return _page(quote_links.token_state(job, utcnow()), job, token)


@bp.post("/confirm/<token>")
@_post_limit
def confirm(token: str):  # type: ignore[no-untyped-def]
    result = workflow.confirm(db(), lab().storage, token)
    return _page(result.outcome, result.job, token)


@bp.post("/confirm/<token>/decline")
@_post_limit
def decline(token: str):  # type: ignore[no-untyped-def]
    """ "Decline the quote", with an optional reason: the job is rejected at once, so staff see it."""
    reason = request.form.get("reason", "")
    try:
        result = student_actions.decline_quote(db(), lab().storage, token, reason=reason)
    except ValidationError as exc:
        job = quote_links.find_by_token(db(), token)
        state = quote_links.token_state(job, utcnow())
        return _page(
            state, job, token, decline_error=exc.errors.get("reason", str(exc)), reason=reason, status=422
        )
    except JobLocked:
        job = quote_links.find_by_token(db(), token)
        state = quote_links.token_state(job, utcnow())
        message = "Lab staff are working on this job right now. Please try again in a few minutes."
        return _page(state, job, token, decline_error=message, reason=reason, status=409)
    if not result.declined:
        return _page(result.state, result.job, token)
    assert result.job is not None
    return render_template("confirm/declined.html", **_context(result.job))


@bp.post("/confirm/<token>/new-link")
@_post_limit
def new_link(token: str):  # type: ignore[no-untyped-def]
    """An expired link asks for a fresh one (the service allows a student one an hour per job)."""
    job = quote_links.find_by_token(db(), token)
    state = quote_links.token_state(job, utcnow())
    if state != ConfirmOutcome.EXPIRED or job is None:
        return _page(state, job, token)  # nothing to renew: show what this link does now
    try:
        job = workflow.resend_quote(db(), lab().storage, job.id, actor=Actor.student())
    except ValidationError as exc:
        # Too soon after the last link, or the job left Pending meanwhile: say which applies now.
        db().expire_all()
        job = quote_links.find_by_token(db(), token)
        state = quote_links.token_state(job, utcnow())
        if state != ConfirmOutcome.EXPIRED:
            return _page(state, job, token)
        return _page(state, job, token, error=exc.errors.get("job", str(exc)), status=429)
    return render_template("confirm/new_link_sent.html", **_context(job))


@bp.post("/status/<reference>/new-link")
@_post_limit
def new_link_from_status(reference: str):  # type: ignore[no-untyped-def]
    """The status page's button: email the student a fresh quote link (one an hour per job).

    Whoever holds the status link can at most have the lab email the student's own address once an
    hour; the answer names that address masked and never carries the link.
    """
    job = job_for_reference(db(), lab().config.secret_key, reference)
    if job is None:
        abort(404)
    back = redirect(url_for("student.status", reference=reference), 303)
    if job.status != Status.PENDING:
        return back  # nothing to confirm any more: the status page says where the job is
    try:
        job = workflow.resend_quote(db(), lab().storage, job.id, actor=Actor.student())
    except ValidationError as exc:
        db().expire_all()
        job = db().get(Job, job.id)
        if job is None or job.status != Status.PENDING:
            return back
        view = student_view(db(), job, catalog())
        return status_page(view, reference, error=exc.errors.get("job", str(exc)), code=429)
    flash(
        f"We sent a new link to {masked_email(job.student_email or '')}. It can take a few minutes to arrive; "
        "the link in the earlier email no longer works."
    )
    return back


def _page(
    state: ConfirmOutcome | None,
    job: Job | None,
    token: str,
    *,
    error: str | None = None,
    status: int = 200,
    decline_error: str | None = None,
    reason: str | None = None,
):  # type: ignore[no-untyped-def]
    if job is None or state not in _TEMPLATES:
        return render_template("confirm/invalid.html", lab_details=catalog().lab), 404
    page = render_template(
        _TEMPLATES[state],
        token=token,
        error=error,
        decline_error=decline_error,
        reason=reason,
        **_context(job),
    )
    return page, status


def _context(job: Job) -> dict[str, Any]:
    cat = catalog()
    return {
        "view": student_view(db(), job, cat),
        "reference": make_reference(lab().config.secret_key, job.id),
        "lab_details": cat.lab,
        "link_hours": cat.confirm_link_hours,
    }
