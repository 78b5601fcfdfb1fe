"""The API's request and answer models: they validate each request and make the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Job ids are UUIDs; anything longer or with other characters names no job.
JobId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", description="The job's id.")
Text = Field(None, max_length=2000)
ShortText = Field(None, max_length=200)


class Closed(BaseModel):
    """A request body: fields not in the document are refused, so a misspelt field is never ignored."""

    model_config = ConfigDict(extra="forbid")


# -- requests --------------------------------------------------------------------------------------


class JobPath(BaseModel):
    job_id: str = JobId


class IfMatch(BaseModel):
    """The job's version the change was decided on (its ETag); required for every change."""

    if_match: str | None = Field(
        None,
        alias="If-Match",
        max_length=200,
        description='The job\'s ETag from reading it (e.g. "2026-12-04T18:00:00.123456"). '
        "Missing: 428; no longer the job's version: 412, and nothing is changed.",
    )


class JobsQuery(BaseModel):
    """The dashboard's filters and keyset paging (unknown values are ignored and named in `errors`)."""

    status: str | None = Field(
        None, max_length=20, description="A status code (UPLOADED … ARCHIVED) or ALL; default UPLOADED."
    )
    q: str | None = Field(None, max_length=200, description="Search: name, email, file, job number.")
    printer: str | None = Field(None, max_length=64)
    method: str | None = Field(None, max_length=32, description="Print method, e.g. Filament.")
    discipline: str | None = Field(None, max_length=50)
    from_: str | None = Field(None, alias="from", max_length=10, description="First lab day, YYYY-MM-DD.")
    to: str | None = Field(None, max_length=10, description="Last lab day, YYYY-MM-DD.")
    waiting: Literal["", "1"] | None = Field(None, description="1: only jobs waiting for a corrected file.")
    per_page: int | None = Field(None, ge=1, le=200, description="Jobs per page (at most 200).")
    after: str | None = Field(None, max_length=200, description="The `next` cursor of the previous page.")
    before: str | None = Field(None, max_length=200, description="The `previous` cursor of the next page.")


class ReportQuery(BaseModel):
    """The reports page's period and filters."""

    period: Literal["7d", "30d", "90d", "this-semester", "last-semester", "custom"] | None = Field(
        None, description="The period (default 30d); custom takes from and to."
    )
    from_: str | None = Field(None, alias="from", max_length=10, description="First lab day, YYYY-MM-DD.")
    to: str | None = Field(None, max_length=10, description="Last lab day, YYYY-MM-DD.")
    printer: str | None = Field(None, max_length=64)
    method: str | None = Field(None, max_length=32)
    discipline: str | None = Field(None, max_length=50)
    class_: str | None = Field(
        None, alias="class", max_length=50, description="A class number, e.g. ME 2110."
    )


class Report(BaseModel):
    """The reports page's figures for the period and the one before it (money only on admin workstations)."""

    model_config = ConfigDict(extra="allow")

    period: dict[str, Any]


class PriceQuery(BaseModel):
    weight_g: str = Field(max_length=40, description="Weight in grams, e.g. 42.5.")
    method: str = Field(max_length=32, description="Print method, e.g. Filament.")


class QuoteBody(Closed):
    """A quote: the figures the student is asked to confirm (blank names keep the job's own choice)."""

    weight_g: float = Field(gt=0, le=100000, description="Grams of material.")
    time_hours: float = Field(gt=0, le=10000, description="Print time in hours.")
    authoritative_file: str | None = Field(None, max_length=256, description="The file to print, by name.")
    material: str | None = Field(None, max_length=32, description="Print method (Filament, Resin).")
    color: str | None = Field(None, max_length=32)
    printer: str | None = Field(None, max_length=64)
    message: str | None = Text


class ReasonsBody(Closed):
    reasons: list[str] = Field(
        default_factory=list, max_length=20, description="Reasons from the lab catalog's list."
    )
    other_reason: str | None = Text


class ReasonBody(Closed):
    reason: str = Field(min_length=1, max_length=2000)


class NoteBody(Closed):
    note: str | None = Text


class StartBody(Closed):
    printer: str | None = Field(None, max_length=64, description="A printer of the job's method.")


class PickupBody(Closed):
    method: str | None = Field(None, max_length=20, description="How it was paid (CARD, CASH, ACCOUNT…).")
    weighed_g: float | None = Field(None, gt=0, le=100000, description="Weighed grams, if re-weighed.")
    keep_quote: bool = Field(False, description="Charge the quote even though the weight differs.")
    payment_reference: str | None = ShortText
    picked_up_by: str | None = ShortText
    account_code: str | None = Field(None, max_length=40)
    discount_usd: str | None = Field(None, max_length=20, description="A discount in dollars, e.g. 1.50.")
    reason: str | None = Text


class RefundBody(Closed):
    kind: Literal["REFUND", "CORRECTION"]
    amount_usd: str = Field(max_length=20, description="Dollars, e.g. 2.00.")
    method: str | None = Field(None, max_length=20)
    account_code: str | None = Field(None, max_length=40)
    reason: str = Field(min_length=1, max_length=2000)
    payment_reference: str | None = ShortText


# -- answers ---------------------------------------------------------------------------------------


class JobCard(BaseModel):
    id: str
    simple_id: str
    student_name: str
    file_name: str
    printer: str
    color: str
    method: str
    discipline: str
    status: str
    status_label: str
    created_at: str
    status_since: str
    age: str
    age_band: str
    cost_usd: str | None
    has_notes: bool
    locked_by: str | None
    quote_expired: bool
    waiting_for_student: bool
    is_new: bool
    analysis_state: str | None


class JobList(BaseModel):
    status: str = Field(description="The status listed, or ALL.")
    total: int
    counts: dict[str, int] = Field(description="Jobs in each status.")
    filters: dict[str, str] = Field(description="The filters used, as query arguments.")
    jobs: list[JobCard]
    next: str | None = Field(description="Cursor for the next page (`after`), or null.")
    previous: str | None = Field(description="Cursor for the previous page (`before`), or null.")
    errors: dict[str, str] = Field(description="Filters that were ignored, and why.")


class JobOut(BaseModel):
    id: str
    simple_id: str = Field(description="The short job number staff and students see.")
    status: str
    status_label: str
    version: str = Field(description="The job's version: send it as If-Match to change the job.")
    student_name: str | None
    student_email: str | None
    discipline: str | None
    class_number: str | None
    file_name: str | None = Field(description="The student's own name for the file.")
    method: str | None
    color: str | None
    printer: str | None
    weight_g: float | None
    time_hours: float | None
    cost_usd: str | None
    created_at: datetime | None
    updated_at: datetime | None
    last_updated_by: str | None
    locked_by: str | None = Field(description="Who has the job's dialog open, if anyone.")


class EventOut(BaseModel):
    type: str = Field(description="The event type, e.g. StaffApproved.")
    at: datetime
    by: str | None = Field(description="The staff member who acted (null: the student or PrintLab).")
    workstation: str | None = Field(description="Where they acted (an API token says `API: <name>`).")
    sentence: str = Field(description="What happened, as the job page's history says it.")


class EventList(BaseModel):
    events: list[EventOut]


class FileOut(BaseModel):
    name: str
    size_bytes: int
    modified: datetime
    kind: Literal["model", "slicer", "sidecar", "other"]
    is_authoritative: bool = Field(description="The file that will be printed.")
    is_original: bool = Field(description="A file the student sent.")


class FileList(BaseModel):
    files: list[FileOut]


class Price(BaseModel):
    cost_usd: str
    display: str
    minimum_applied: bool


class PrinterJob(BaseModel):
    id: str
    name: str = Field(description="The job's name on the dashboard.")
    file_name: str = Field(description="The student's own name for the file.")
    student_name: str


class PrinterPrint(BaseModel):
    """A job at the printer: sent from PrintLab (with the printer's progress) or started on the printer."""

    job: PrinterJob
    state: Literal["sending", "printing", "stopped", "started_by_hand"]
    progress: float | None = Field(None, description="0–100, as the printer last said.")
    seconds_left: int | None = None
    time_left: str = Field("", description='In words: "about 40 minutes left".')
    started_at: datetime | None = None
    started_by: str | None = None
    stopped_reason: str | None = Field(None, description="Why the printer stopped, until staff confirm.")


class PrinterOut(BaseModel):
    name: str = Field(description="The catalog printer's name, as jobs name it.")
    method: str
    state: Literal[
        "idle",
        "printing",
        "paused",
        "busy",
        "error",
        "offline",
        "no-answer-yet",
        "out-of-service",
        "not-connected",
    ]
    state_label: str = Field(description='The state in words: "Idle", "Out of service — paused by the lab".')
    message: str | None = Field(None, description="The printer's error, or why PrintLab can't reach it.")
    last_answer: datetime | None = None
    temperatures: str = Field("", description='In words: "Nozzle 215/215 °C · Bed 60/60 °C".')
    printing: list[PrinterPrint]
    queue: list[PrinterJob] = Field(description="Its Ready-to-Print jobs in the board's order.")


class PrinterList(BaseModel):
    printers: list[PrinterOut]
