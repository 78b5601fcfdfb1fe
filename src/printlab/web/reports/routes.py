"""Report routes: read the period and filters, build the report, render it as a page or as JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, jsonify, redirect, render_template, request, url_for

from printlab.clock import utcnow
from printlab.domain.pricing import format_usd
from printlab.domain.reports import (
    AGE_BUCKETS,
    DEFAULT_PERIOD,
    PERIOD_CHOICES,
    Period,
    PeriodError,
    choose_period,
    date_words,
    duration_words,
    lab_day,
)
from printlab.services.views.reports import Filters, Report, build_report, checked_filters
from printlab.web.auth.guard import login_required, signed_in
from printlab.web.context import catalog, db

bp = Blueprint("reports", __name__, template_folder="templates")


def chosen() -> tuple[Period | None, Filters | None, dict[str, str]]:
    """The period and filters asked for, or the messages saying what is wrong with them."""
    lab = catalog()
    zone = lab.lab.time_zone
    errors: dict[str, str] = {}
    period = filters = None
    try:
        period = choose_period(
            request.args.get("period"),
            lab_day(utcnow(), zone),
            zone,
            from_day=request.args.get("from"),
            to_day=request.args.get("to"),
        )
    except PeriodError as exc:
        errors[exc.field] = exc.message
    try:
        filters = checked_filters(request.args, lab)
    except PeriodError as exc:
        errors[exc.field] = exc.message
    return period, filters, errors


def sees_money() -> bool:
    who = signed_in()
    return bool(who and who.is_admin)


@bp.get("/reports")
@login_required
def index():  # type: ignore[no-untyped-def]
    period, filters, errors = chosen()
    report: Report | None = None
    if period is not None and filters is not None:
        report = build_report(db(), period, filters)
    page = render_template(
        "reports/index.html",
        report=report,
        errors=errors,
        form=_form_values(),
        choices=PERIOD_CHOICES,
        catalog=catalog(),
        money=sees_money(),
        age_buckets=[label for _, label in AGE_BUCKETS],
        zone=catalog().lab.time_zone,
        duration_words=duration_words,
        date_words=date_words,
        usd=_usd,
    )
    return page, (400 if errors else 200)


@bp.get("/reports.json")
@login_required
def as_json():  # type: ignore[no-untyped-def]
    period, filters, errors = chosen()
    if errors or period is None or filters is None:
        return jsonify({"errors": errors}), 400
    return jsonify(build_report(db(), period, filters).as_json(money=sees_money()))


@bp.get("/analytics")
@login_required
def analytics():  # type: ignore[no-untyped-def]
    """SPEC §11 calls the page Analytics: the same reports, same query."""
    return redirect(url_for("reports.index", **request.args.to_dict()), 301)


def _form_values() -> dict[str, Any]:
    return {
        "period": request.args.get("period") or DEFAULT_PERIOD,
        "from": request.args.get("from", ""),
        "to": request.args.get("to", ""),
        "printer": request.args.get("printer", ""),
        "method": request.args.get("method", ""),
        "discipline": request.args.get("discipline", ""),
        "class": request.args.get("class", ""),
    }


def _usd(value: float | Any) -> str:
    """Money for the page: '$12.40', '−$3.00' for a negative sum (refunds outweighing charges)."""
    amount = Decimal(str(value))
    return f"−{format_usd(-amount)}" if amount < 0 else format_usd(amount)
