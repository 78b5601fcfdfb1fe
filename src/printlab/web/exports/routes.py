"""Export downloads for admin workstations: the form page and the streamed CSV or XLSX file."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from datetime import timedelta

from flask import Blueprint, Response, render_template, request, send_file

from printlab.clock import to_lab_time, utcnow
from printlab.domain.charging import signed_usd
from printlab.domain.periods import Period, PeriodError, parse_month, parse_period
from printlab.services.exports import export
from printlab.services.exports.statement import monthly_statement
from printlab.web.auth.guard import admin_required
from printlab.web.context import catalog, db, lab

bp = Blueprint("exports", __name__, template_folder="templates")

#: Each export's name and what it holds, in the page's words.
EXPORTS = {
    "jobs": (
        "Jobs",
        "Jobs submitted in the period: student, print choices, status, quoted and paid amounts.",
    ),
    "payments": (
        "Payments",
        "Every payment row recorded in the period: charges, refunds, corrections and reversals, with the "
        "method, account code, reason, and who recorded it.",
    ),
    "events": (
        "Events",
        "Everything that happened in the period, one sentence per change, with staff and workstation.",
    ),
    "statement": (
        "Account-code statement lines",
        "Payments charged to account codes, with the refunds and reversals against them, by code.",
    ),
}


def _page(values: Mapping[str, str], errors: Mapping[str, str] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    today = to_lab_time(utcnow(), catalog().lab.time_zone).date()
    return render_template(
        "exports/index.html",
        kinds=export.KINDS,
        exports=EXPORTS,
        values=values,
        errors=errors or {},
        default_from=today.replace(day=1).isoformat(),
        default_to=today.isoformat(),
        zone=catalog().lab.time_zone,
    ), status


@bp.get("/reports/exports")
@admin_required
def index():  # type: ignore[no-untyped-def]
    return _page(request.args)


@bp.get("/reports/export")
@admin_required
def download_from_form():  # type: ignore[no-untyped-def]
    """The page's form: the export and the format as fields instead of in the address."""
    kind, fmt = request.args.get("kind", ""), request.args.get("format", "")
    errors = {}
    if kind not in export.KINDS:
        errors["kind"] = "Choose what to export."
    if fmt not in export.FORMATS:
        errors["format"] = "Choose CSV or XLSX."
    if errors:
        return _page(request.args, errors, 400)
    return _download(kind, fmt)


@bp.get("/reports/export/<any(jobs, payments, events, statement):kind>.<any(csv, xlsx):fmt>")
@admin_required
def download(kind: str, fmt: str):  # type: ignore[no-untyped-def]
    return _download(kind, fmt)


def _download(kind: str, fmt: str):  # type: ignore[no-untyped-def]
    try:
        period = parse_period(request.args.get("from"), request.args.get("to"))
    except PeriodError as exc:
        return _page(request.args | {"kind": kind, "format": fmt}, exc.errors, 400)
    headers = {"Content-Disposition": f"attachment; filename={export.file_name(kind, period, fmt)}"}
    if fmt == "csv":
        return Response(_csv(kind, period), mimetype="text/csv", headers=headers)
    return _xlsx(kind, period, headers)


def _csv(kind: str, period: Period) -> Iterator[bytes]:
    """Rows read with a session of the download's own (the request's closes when the view returns)."""
    sessions = lab().sessions

    def body() -> Iterator[bytes]:
        with sessions() as session:
            yield from export.csv_stream(session, kind, period)

    return body()


def _xlsx(kind: str, period: Period, headers: dict[str, str]) -> Response:
    """An XLSX file is a zip finished at the end: written to a temporary file row by row (constant
    memory), then sent from it. The file is unlinked at once; the open handle keeps it until sent."""
    handle = tempfile.TemporaryFile(prefix="printlab-export-")  # noqa: SIM115 (send_file closes it)
    try:
        with lab().sessions() as session:
            export.write_xlsx(session, kind, period, handle)
        size = handle.tell()
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    answer = send_file(handle, mimetype=export.MEDIA_TYPES["xlsx"], conditional=False, max_age=0)
    answer.headers.update(headers)
    answer.headers["Content-Length"] = str(size)
    return answer


@bp.get("/reports/statement")
@admin_required
def statement():  # type: ignore[no-untyped-def]
    """The month's statement per account code, printable; ?month=2026-11 (default: last month)."""
    zone = catalog().lab.time_zone
    today = to_lab_time(utcnow(), zone).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    month = (request.args.get("month") or last_month).strip()[:20]
    try:
        period = parse_month(month)
    except PeriodError as exc:
        return render_template(
            "exports/statement.html", statement=None, month=month, month_words="", error=exc.errors["month"]
        ), 400
    return render_template(
        "exports/statement.html",
        statement=monthly_statement(db(), period, zone),
        month=month,
        month_words=f"{period.first:%B %Y}",
        error=None,
        lab_name=catalog().lab.name,
        made_at=to_lab_time(utcnow(), zone).strftime("%-d %B %Y %H:%M %Z"),
        usd=signed_usd,
    )
