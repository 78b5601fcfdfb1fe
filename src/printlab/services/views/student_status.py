"""The read model behind a student's pages: their own job only, in plain words (times as stored, in UTC)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.catalog import Catalog
from printlab.domain.pricing import format_usd
from printlab.domain.statuses import Status
from printlab.domain.student_messages import (
    CANCELLED_EXPLAINED,
    CANCELLED_LABEL,
    MILESTONE,
    NO_ANSWER_EXPLAINED,
    PRINT_FAILED_MILESTONE,
    STATUS_EXPLAINED,
    STUDENT_LABEL,
    WAITING_EXPLAINED,
    WAITING_LABEL,
    WITHDRAWN_EXPLAINED,
    Step,
    masked_email,
    printing_label,
    progress,
    staff_have_decided,
)
from printlab.models import Event, Job, JobResubmission
from printlab.services.jobs import change_requests, payments
from printlab.services.jobs.records import simple_id_for
from printlab.services.jobs.references import read_reference
from printlab.services.views.live_prints import live_prints


@dataclass(frozen=True)
class Milestone:
    label: str
    when: datetime  # naive UTC, as stored; pages show it with the `lab_time` filter


@dataclass(frozen=True)
class StudentView:
    job_id: str
    simple_id: str
    status: Status
    status_label: str  # the status in a student's words ("Queued for printing"), never the staff label
    explanation: str
    steps: list[Step]
    student_name: str
    original_filename: str
    print_method: str
    color: str
    printer: str
    submitted_at: datetime  # naive UTC, like every time here; `time_zone` is the lab's
    time_zone: str
    milestones: list[Milestone]
    quote: dict[str, Any] | None
    email_hint: str  # the student's address, masked: "j***@uni.edu"
    paid: str | None = None  # what was charged at pickup (not the quote), e.g. "$3.65"
    paid_at: datetime | None = None
    reject_reasons: list[str] = field(default_factory=list)
    #: True once staff approved or rejected the model: their decision replaces the automatic check's
    #: verdict, so neither its notes nor "No problems found." are shown.
    staff_decided: bool = False
    check_notes: list[str] = field(default_factory=list)
    analysis_state: str | None = None
    analysis: dict[str, Any] | None = None
    analysis_error: str | None = None
    has_thumbnail: bool = False
    #: A job sent in parts: each part's file name and copies, in order (empty for one file printed once).
    parts: list[tuple[str, int]] = field(default_factory=list)
    #: The job's version, sent back by the page's forms (a stale page can't cancel a changed job).
    updated_at: datetime | None = None
    #: Uploaded or Pending: the student may still cancel it.
    can_cancel: bool = False
    #: Staff asked for a corrected file and wait for it: what they asked for, and by when.
    waiting_reasons: list[str] = field(default_factory=list)
    waiting_until: datetime | None = None
    #: Rejected (not withdrawn by the student): the page offers to send a corrected file.
    can_resubmit: bool = False
    #: The job sent as this one's corrected version, and the one this corrects (ids and short ids).
    resubmitted_as: tuple[str, str] | None = None
    resubmission_of: tuple[str, str] | None = None

    @property
    def version(self) -> str:
        """What the page's forms send back as the job's version (see web/job_version.py)."""
        return (self.updated_at or datetime.min).isoformat()


#: What the student's timeline says for the events that keep the status.
_KEEPS_STATUS = {
    "ChangesRequested": "The lab asked for a corrected file",
    "FileReplaced": "Corrected file received",
}


def student_view(session: Session, job: Job, catalog: Catalog) -> StudentView:
    """Everything a student's page shows about their job (no other job is ever read)."""
    status = job.status_enum
    events = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id)).all()
    milestones = []
    archived_from: Status | None = None
    for event in events:
        details = event.details if isinstance(event.details, dict) else {}
        if event.event_type == "PrintFailed":
            milestones.append(Milestone(PRINT_FAILED_MILESTONE, event.timestamp))  # type: ignore[arg-type]
        elif event.event_type in _KEEPS_STATUS:
            milestones.append(Milestone(_KEEPS_STATUS[event.event_type], event.timestamp))  # type: ignore[arg-type]
        elif details.get("to") and not details.get("revert"):
            label = MILESTONE[Status(details["to"])]
            if details.get("by") == "student" and isinstance(details.get("reason"), str):
                label = details["reason"]  # "Cancelled by the student", "Quote declined by the student"
            elif details.get("cancelled"):
                label = CANCELLED_LABEL
            if details["to"] == Status.ARCHIVED and details.get("from"):
                archived_from = Status(details["from"])
            if milestones and milestones[-1].label == label:
                continue  # one move can write two events (StaffApproved + StatusChanged)
            milestones.append(Milestone(label, event.timestamp))  # type: ignore[arg-type]
    quote = None
    if job.cost_usd is not None:
        quote = {
            "cost": format_usd(Decimal(job.cost_usd)),
            "weight_g": job.weight_g,
            "time_hours": job.time_hours,
            "expires_at": job.confirm_token_expires,
            "expired": job.is_confirmation_expired,
        }
    payment = None
    if status in (Status.PAIDPICKEDUP, Status.ARCHIVED):
        payment = payments.balance(session, job.id)
    reasons: list[str] = []
    cancelled = withdrawn = no_answer = False
    ended_as = CANCELLED_LABEL
    if isinstance(job.reject_reasons, dict):
        reasons = [*job.reject_reasons.get("reasons", []), *filter(None, [job.reject_reasons.get("other")])]
        cancelled = bool(job.reject_reasons.get("cancelled"))
        withdrawn = bool(job.reject_reasons.get("by_student")) and bool(reasons)
        no_answer = bool(job.reject_reasons.get("no_answer"))
        if withdrawn:
            ended_as = reasons[0]
    rejected = status == Status.REJECTED
    explanation = CANCELLED_EXPLAINED if cancelled and rejected else STATUS_EXPLAINED[status]
    if withdrawn and rejected:
        explanation = WITHDRAWN_EXPLAINED.get(ended_as, explanation)
    elif no_answer and rejected:
        explanation = NO_ANSWER_EXPLAINED
    label = ended_as if cancelled and rejected else STUDENT_LABEL[status]
    waiting = change_requests.open_request(session, job.id) if status == Status.UPLOADED else None
    if waiting is not None:
        label, explanation = WAITING_LABEL, WAITING_EXPLAINED
    if status == Status.PRINTING:
        label = printing_left(session, job.id)
    if status == Status.COMPLETED:
        lab = catalog.lab
        explanation += f" Collect it at {lab.pickup_location} ({lab.opening_hours}); we keep it for {lab.hold_days} days."
    analysis = job.analysis
    decided = staff_have_decided(status)
    results = analysis.results if analysis and isinstance(analysis.results, dict) else {}
    return StudentView(
        job_id=job.id,
        simple_id=simple_id_for(session, job.id),
        status=status,
        status_label=label,
        explanation=explanation,
        steps=progress(status, archived_from, cancelled=cancelled, cancelled_label=ended_as),
        student_name=job.student_name or "",
        original_filename=job.original_filename or "",
        print_method=job.material or "",
        color=job.color or "",
        printer=job.printer or "",
        submitted_at=job.created_at,  # type: ignore[arg-type]
        time_zone=catalog.lab.time_zone,
        milestones=milestones,
        quote=quote,
        email_hint=masked_email(job.student_email or ""),
        paid=format_usd(payment.paid_usd) if payment else None,
        paid_at=payment.last_recorded_at if payment else None,
        reject_reasons=reasons,
        staff_decided=decided,
        check_notes=[] if decided else list(results.get("problems") or []),
        analysis_state=analysis.state if analysis else None,
        analysis=analysis.results if analysis else None,
        analysis_error=analysis.error if analysis else None,
        has_thumbnail=bool(analysis and analysis.thumbnail_png),
        parts=[(part.original_filename, part.copies) for part in job.parts],
        updated_at=job.updated_at,
        can_cancel=status in (Status.UPLOADED, Status.PENDING),
        waiting_reasons=change_requests.reasons_list(waiting.reasons) if waiting else [],
        waiting_until=waiting.expires_at if waiting else None,
        can_resubmit=rejected and not withdrawn,
        **resubmission_links(session, job.id),
    )


def printing_left(session: Session, job_id: str) -> str:
    """ "Printing — about 40 minutes left" while a connected printer prints the job and says how long it
    has to go; "Printing" otherwise."""
    live = live_prints(session, [job_id]).get(job_id)
    return printing_label(live.seconds_left if live is not None and live.printing else None)


def resubmission_links(session: Session, job_id: str) -> dict[str, tuple[str, str] | None]:
    """The job this one was resubmitted as, and the one it is a resubmission of: (id, short id) each."""
    later = session.scalar(
        select(JobResubmission.job_id)
        .where(JobResubmission.earlier_job_id == job_id)
        .order_by(JobResubmission.created_at.desc())
        .limit(1)
    )
    link = session.get(JobResubmission, job_id)
    return {
        "resubmitted_as": (later, simple_id_for(session, later)) if later else None,
        "resubmission_of": (link.earlier_job_id, simple_id_for(session, link.earlier_job_id))
        if link
        else None,
    }


def job_for_reference(session: Session, secret_key: str, reference: str) -> Job | None:
    """The job a student's status link names, or None for a forged, altered or unknown link."""
    job_id = read_reference(secret_key, reference)
    return session.get(Job, job_id) if job_id else None
