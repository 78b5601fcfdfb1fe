"""Dashboard routes: the page and its self-refreshing card list (its JSON list is the API's, web/api)."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.services.views.dashboard import (
    AGE_WORDS,
    JobPage,
    dashboard_version,
    job_for_number,
    list_jobs,
    parse_query,
    poll_etag,
    shows_printing,
    status_counts,
)
from printlab.services.views.live_prints import fleet_fingerprint
from printlab.web.auth.guard import login_required
from printlab.web.context import catalog, db

bp = Blueprint("dashboard", __name__, template_folder="templates")


def _page() -> JobPage:
    query, errors = parse_query(request.args, catalog())
    page = list_jobs(db(), query, catalog())
    return JobPage(**{**page.__dict__, "errors": errors})


@bp.get("/dashboard")
@login_required
def index():  # type: ignore[no-untyped-def]
    number = request.args.get("q", "")
    if number and (job_id := job_for_number(db(), number)):
        return redirect(url_for("jobs.show", job_id=job_id), 303)  # a job number opens that job
    page = _page()
    return render_template(
        "dashboard/index.html",
        page=page,
        catalog=catalog(),
        age_words=AGE_WORDS,
        uploaded_count=_uploaded(page),
    )


@bp.get("/dashboard/cards")
@login_required
def cards():  # type: ignore[no-untyped-def]
    """The tabs and cards alone; answers 304 from the one-row dashboard version when nothing changed."""
    query, _errors = parse_query(request.args, catalog())
    version = dashboard_version(db())
    etag = poll_etag(query, version, utcnow(), fleet_fingerprint(db()) if shows_printing(query) else "")
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        page = _page()
        etag = page.etag
        response = Response(
            render_template("dashboard/_board.html", page=page, catalog=catalog(), age_words=AGE_WORDS)
        )
        response.headers["X-Uploaded-Count"] = str(_uploaded(page))
    response.set_etag(etag)
    response.headers["Cache-Control"] = "no-cache"
    return response


def _uploaded(page: JobPage) -> int:
    """Uploaded jobs in the lab (the chime's count), whatever the page searched for."""
    if page.query.q:
        return status_counts(db())[Status.UPLOADED]
    return page.counts[Status.UPLOADED]
