"""/api/v1 operations: jobs (the dashboard's list, one job, its history, its files), the live price, and
the staff's moves, each through the same workflow call as the job page's dialog (web/jobs/actions.py).

A move names the job's version it was decided on in `If-Match` (the job's ETag): the workflow compares
it under the job's row lock, so a job changed meanwhile is refused (412) and nothing changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from flask import Response, current_app, g, json, render_template, request
from flask_openapi3 import APIBlueprint, Tag
from pydantic import BaseModel
from werkzeug.http import parse_etags

from printlab.clock import utcnow
from printlab.domain.pricing import PricingError, format_usd, quote_cost
from printlab.domain.statuses import InvalidTransition
from printlab.models import Job
from printlab.services.errors import ConflictError, JobLocked, NotAllowed, NotFound, StaleJob, ValidationError
from printlab.services.jobs.records import get_job, simple_id_for
from printlab.services.jobs.status_change import Expected
from printlab.services.views.dashboard import JobPage, list_jobs, parse_query
from printlab.services.views.job_detail import job_detail
from printlab.services.views.printer_board import printer_board
from printlab.services.views.reports import build_report
from printlab.web.api import access, document
from printlab.web.api.problems import problem
from printlab.web.api.schemas import (
    EventList,
    FileList,
    IfMatch,
    JobList,
    JobOut,
    JobPath,
    JobsQuery,
    NoteBody,
    PickupBody,
    Price,
    PriceQuery,
    PrinterList,
    QuoteBody,
    ReasonBody,
    ReasonsBody,
    RefundBody,
    Report,
    ReportQuery,
    StartBody,
)
from printlab.web.context import catalog, db, lab
from printlab.web.job_version import version_of
from printlab.web.jobs.actions import ACTIONS
from printlab.web.reports import routes as reports_page

JOBS = Tag(name="Jobs", description="Reading jobs: the dashboard's list, one job, its history and files.")
MOVES = Tag(name="Moves", description="A staff member's moves of a job, as on the job page (write scope).")
PRICES = Tag(name="Prices", description="The lab's prices.")
REPORTS = Tag(name="Reports", description="The reports page's figures.")
PRINTERS = Tag(
    name="Printers", description="The printer board: each printer's state, what it prints, its queue."
)

api = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    template_folder="templates",
    abp_security=[{"token": []}, {"workstation": []}],
)


def _answer(model: BaseModel, status: int = 200, etag: str | None = None) -> Response:
    response = Response(
        json.dumps(model.model_dump(mode="json", by_alias=True)), status, mimetype="application/json"
    )
    if etag:
        response.headers["ETag"] = f'"{etag}"'
    return response


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# -- reading ---------------------------------------------------------------------------------------


@api.get("/jobs", tags=[JOBS], summary="List jobs", responses={200: JobList}, operation_id="listJobs")
def list_jobs_operation(query: JobsQuery):  # type: ignore[no-untyped-def]
    """The dashboard's list: one status (or ALL), its filters and search, keyset-paged by `after`/`before`."""
    found, errors = parse_query(request.args, catalog())
    page = list_jobs(db(), found, catalog())
    page = JobPage(**{**page.__dict__, "errors": errors})
    body = JobList(
        status=page.query.status.value if page.query.status else "ALL",
        total=page.total,
        counts={status.value: count for status, count in page.counts.items()},
        filters=page.query.as_args(),
        jobs=[card.as_json() for card in page.cards],
        next=page.next_cursor.encode() if page.next_cursor else None,
        previous=page.prev_cursor.encode() if page.prev_cursor else None,
        errors=page.errors,
    )
    response = _answer(body)
    response.set_etag(page.etag)
    return response.make_conditional(request)


def _job_out(job: Job) -> JobOut:
    now = utcnow()
    return JobOut(
        id=job.id,
        simple_id=simple_id_for(db(), job.id),
        status=job.status or "",
        status_label=job.status_enum.label,
        version=version_of(job),
        student_name=job.student_name,
        student_email=job.student_email,
        discipline=job.discipline,
        class_number=job.class_number,
        file_name=job.original_filename,
        method=job.material,
        color=job.color,
        printer=job.printer,
        weight_g=job.weight_g,
        time_hours=job.time_hours,
        cost_usd=str(job.cost_usd) if job.cost_usd is not None else None,
        created_at=_aware(job.created_at),
        updated_at=_aware(job.updated_at),
        last_updated_by=job.last_updated_by,
        locked_by=job.locked_by if job.locked_until and job.locked_until > now else None,
    )


def _job_answer(job_id: str) -> Response:
    db().expire_all()
    job = get_job(db(), job_id)
    return _answer(_job_out(job), etag=version_of(job))


@api.get("/jobs/<job_id>", tags=[JOBS], summary="One job", responses={200: JobOut}, operation_id="getJob")
def get_job_operation(path: JobPath):  # type: ignore[no-untyped-def]
    """The job, with its version as the ETag (send it back as If-Match to change the job)."""
    return _job_answer(path.job_id)


@api.get(
    "/jobs/<job_id>/events", tags=[JOBS], summary="A job's history", responses={200: EventList},
    operation_id="listJobEvents",
)  # fmt: skip
def job_events(path: JobPath):  # type: ignore[no-untyped-def]
    """Every event of the job, oldest first, with the sentence the job page's history shows."""
    detail = job_detail(db(), lab().storage, path.job_id, catalog())
    return _answer(
        EventList(
            events=[
                {
                    "type": e.event_type,
                    "at": e.when,
                    "by": e.staff,
                    "workstation": e.workstation,
                    "sentence": e.sentence,
                }
                for e in detail.timeline
            ]
        )
    )


@api.get(
    "/jobs/<job_id>/files", tags=[JOBS], summary="A job's files", responses={200: FileList},
    operation_id="listJobFiles",
)  # fmt: skip
def job_files(path: JobPath):  # type: ignore[no-untyped-def]
    """The job's files: names, sizes, kinds, which one prints (never where they are stored)."""
    detail = job_detail(db(), lab().storage, path.job_id, catalog())
    return _answer(
        FileList(
            files=[
                {"name": f.name, "size_bytes": f.size_bytes, "modified": f.modified, "kind": f.kind,
                 "is_authoritative": f.is_authoritative, "is_original": f.is_original}
                for f in detail.files
            ]
        )
    )  # fmt: skip


@api.get("/price", tags=[PRICES], summary="A quote's price", responses={200: Price}, operation_id="getPrice")
def price(query: PriceQuery):  # type: ignore[no-untyped-def]
    """The price for a weight and print method, by the same rule as the approval."""
    cat = catalog()
    try:
        cost = quote_cost(query.weight_g, query.method, cat.rates, cat.minimum_charge)
    except PricingError as exc:
        return problem(422, str(exc), errors={"weight_g": str(exc)})
    return _answer(
        Price(
            cost_usd=str(cost), display=format_usd(cost), minimum_applied=cost == Decimal(cat.minimum_charge)
        )
    )


def _money() -> bool:
    """Money figures only for an admin workstation's own browser, as on the reports page."""
    return g.get("api_token") is None and reports_page.sees_money()


@api.get(
    "/reports", tags=[REPORTS], summary="Report figures", responses={200: Report}, operation_id="getReport"
)
def report(query: ReportQuery):  # type: ignore[no-untyped-def]
    """The reports page's figures as /reports.json gives them: a period and the one before it. Money
    figures are for admin workstations only, as on the page; a token never sees them."""
    period, filters, errors = reports_page.chosen()
    if errors or period is None or filters is None:
        return problem(422, "The period or a filter can't be used; see errors.", errors=errors)
    return _answer(Report(**build_report(db(), period, filters).as_json(money=_money())))


@api.get(
    "/printers", tags=[PRINTERS], summary="The printer board", responses={200: PrinterList},
    operation_id="listPrinters",
)  # fmt: skip
def printers():  # type: ignore[no-untyped-def]
    """Every printer of the lab catalog as the board shows it: its state, what it prints now (with the
    connected printer's progress), and its queue of Ready-to-Print jobs in order."""
    board = printer_board(db(), catalog())
    return _answer(PrinterList(printers=[_printer(lane) for lane in board.lanes]))


def _printer(lane: Any) -> dict[str, Any]:
    def job(board_job: Any) -> dict[str, str]:
        return {"id": board_job.id, "name": board_job.name, "file_name": board_job.file_name,
                "student_name": board_job.student_name}  # fmt: skip

    def at_printer(now: Any) -> dict[str, Any]:
        live = now.live
        if live is None:
            return {"job": job(now.job), "state": "started_by_hand", "started_at": _aware(now.since)}
        state = "stopped" if live.stopped else "sending" if live.sending else "printing"
        return {
            "job": job(now.job), "state": state, "progress": live.progress, "seconds_left": live.seconds_left,
            "time_left": live.time_left, "started_at": _aware(live.started_at), "started_by": live.requested_by,
            "stopped_reason": live.stopped_reason if live.stopped else None,
        }  # fmt: skip

    return {
        "name": lane.name, "method": lane.method, "state": lane.state.value, "state_label": lane.state.label,
        "message": lane.message, "last_answer": _aware(lane.last_answer), "temperatures": lane.temperatures,
        "printing": [at_printer(now) for now in lane.printing], "queue": [job(q) for q in lane.queue],
    }  # fmt: skip


# -- moves -----------------------------------------------------------------------------------------


def _expected() -> Expected:
    """The job's version from If-Match: missing → 428; not a version the job could have → 412."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        raise access.Refused(428, "Send the job's version (its ETag from reading the job) as If-Match.")
    tags = parse_etags(header)
    if tags.star_tag:
        raise access.Refused(428, "If-Match: * can't say which version you decided on; send the job's ETag.")
    strong = tags.as_set()
    if len(strong) != 1:
        raise access.Refused(412, "If-Match must be the job's one current ETag; nothing was changed.")
    try:
        version = datetime.fromisoformat(next(iter(strong)))
    except ValueError:
        raise access.Refused(412, "If-Match isn't a version of this job; nothing was changed.") from None
    if version.tzinfo is not None:
        raise access.Refused(412, "If-Match isn't a version of this job; nothing was changed.")
    return Expected(status=None, updated_at=version)


def _move(action: str, job_id: str, fields: dict[str, Any]) -> Response:
    actor = access.acting()
    job = get_job(db(), job_id)
    expected = _expected()
    ACTIONS[action].run(db(), lab().storage, job, actor, expected, fields)
    return _job_answer(job_id)


def _fields(body: BaseModel) -> dict[str, Any]:
    """A body as the page's form would send it: blanks for absent text, "on" for a ticked box."""
    fields: dict[str, Any] = {}
    for name, value in body.model_dump().items():
        if isinstance(value, bool):
            fields[name] = "on" if value else ""
        elif value is None:
            fields[name] = ""
        elif isinstance(value, float):
            fields[name] = repr(value) if value != int(value) else str(int(value))
        else:
            fields[name] = value
    return fields


_MOVE_RESPONSES = {200: JobOut}
MOVE_PATHS: dict[str, tuple[str, type[BaseModel] | None, str]] = {
    "approve": ("approve", QuoteBody, "Approve and send the quote (Uploaded → Pending)."),
    "edit_quote": ("edit-quote", QuoteBody, "Send a new quote (Pending or Ready to Print → Pending)."),
    "reject": ("reject", ReasonsBody, "Reject with reasons (Uploaded → Rejected); the student is emailed."),
    "request_changes": (
        "request-changes",
        ReasonsBody,
        "Ask the student for a corrected file (stays Uploaded).",
    ),
    "confirm_for_student": ("confirm-for-student", NoteBody, "Confirm the quote on the student's behalf."),
    "resend_quote": ("resend-quote", None, "Send the quote again with a new link (Pending)."),
    "cancel": ("cancel", ReasonBody, "Cancel a quoted job (Pending or Ready to Print → Rejected)."),
    "start_printing": ("start-printing", StartBody, "Start printing (Ready to Print → Printing)."),
    "complete": ("complete", None, "Mark the print complete (Printing → Completed); the student is emailed."),
    "print_failed": ("print-failed", ReasonBody, "The print failed (Printing → Ready to Print)."),
    "record_pickup": (
        "record-pickup",
        PickupBody,
        "Record pickup and payment (Completed → Paid & Picked Up).",
    ),
    "refund": ("refund", RefundBody, "Refund or correct a recorded payment (no status change)."),
    "revert": ("revert", ReasonBody, "Undo a Complete or Record pickup made in the last 24 hours."),
}


def _make_move(action: str, slug: str, model: type[BaseModel] | None, summary: str) -> None:
    def operation(path: JobPath, header: IfMatch, body: Any = None):  # type: ignore[no-untyped-def]
        return _move(action, path.job_id, _fields(body) if body is not None else {})

    # A move with nothing to say (complete, resend the quote) takes no body; any body sent is ignored.
    operation.__annotations__ = {"path": JobPath, "header": IfMatch} | ({"body": model} if model else {})
    operation.__name__ = f"move_{action}"
    operation.__doc__ = f"{summary} Needs a write token and If-Match."
    api.post(
        f"/jobs/<job_id>/{slug}", tags=[MOVES], summary=ACTIONS[action].label, responses=_MOVE_RESPONSES,
        operation_id="".join(w.capitalize() if i else w for i, w in enumerate(action.split("_"))),
    )(operation)  # fmt: skip


for _action, (_slug, _model, _summary) in MOVE_PATHS.items():
    _make_move(_action, _slug, _model, _summary)


# -- the document and its reference page -----------------------------------------------------------


@api.get("/openapi.json", doc_ui=False)
def openapi_document():  # type: ignore[no-untyped-def]
    return Response(json.dumps(document.build(current_app)), mimetype="application/json")


@api.get("/reference", doc_ui=False)
def reference():  # type: ignore[no-untyped-def]
    return render_template(
        "api/reference.html", doc=document.build(current_app), operations=document.operations(current_app)
    )


# -- who calls, and the one error shape ------------------------------------------------------------


api.before_request(access.identify)


@api.errorhandler(access.Refused)
def _refused(exc: access.Refused):  # type: ignore[no-untyped-def]
    return exc.response()


@api.errorhandler(NotFound)
def _not_found(exc: NotFound):  # type: ignore[no-untyped-def]
    return problem(404, "There is no job with that id.")


@api.errorhandler(NotAllowed)
def _not_allowed(exc: NotAllowed):  # type: ignore[no-untyped-def]
    return problem(403, str(exc))


@api.errorhandler(ValidationError)
def _invalid(exc: ValidationError):  # type: ignore[no-untyped-def]
    return problem(422, "Some of the request's fields can't be used; see errors.", errors=exc.errors)


@api.errorhandler(StaleJob)
def _stale(exc: StaleJob):  # type: ignore[no-untyped-def]
    return problem(412, f"{exc} Nothing was changed.")


@api.errorhandler(JobLocked)
@api.errorhandler(ConflictError)
def _conflict(exc: ConflictError):  # type: ignore[no-untyped-def]
    return problem(409, str(exc))


@api.errorhandler(InvalidTransition)
def _wrong_status(exc: InvalidTransition):  # type: ignore[no-untyped-def]
    return problem(409, f"{exc} Nothing was changed.")
