"""Dashboard routes: the page, the self-refreshing card list, the jobs API and the live price."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.domain.pricing import PricingError, format_usd, quote_cost
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


@bp.get("/api/v1/jobs")
@login_required
def api_jobs():  # type: ignore[no-untyped-def]
    page = _page()
    body = {
        "status": page.query.status.value if page.query.status else "ALL",
        "total": page.total,
        "counts": {status.value: count for status, count in page.counts.items()},
        "filters": page.query.as_args(),
        "jobs": [card.as_json() for card in page.cards],
        "next": page.next_cursor.encode() if page.next_cursor else None,
        "previous": page.prev_cursor.encode() if page.prev_cursor else None,
        "errors": page.errors,
    }
    response = jsonify(body)
    response.set_etag(page.etag)
    return response.make_conditional(request)


@bp.get("/api/v1/price")
@login_required
def api_price():  # type: ignore[no-untyped-def]
    """The quote for a weight and print method, computed by the same rule as the approval."""
    cat = catalog()
    try:
        cost = quote_cost(
            request.args.get("weight_g", ""), request.args.get("method", ""), cat.rates, cat.minimum_charge
        )
    except PricingError as exc:
        return jsonify({"error": str(exc)}), 422
    return jsonify(
        {
            "cost_usd": str(cost),
            "display": format_usd(cost),
            "minimum_applied": cost == Decimal(cat.minimum_charge),
        }
    )
