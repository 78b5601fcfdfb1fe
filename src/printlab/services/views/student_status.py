"""The read model behind a student's pages: their own job only, in plain words and the lab's time zone."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import to_lab_time
from printlab.domain.catalog import Catalog
from printlab.domain.pricing import format_usd
from printlab.domain.statuses import Status
from printlab.domain.student_messages import MILESTONE, PRINT_FAILED_MILESTONE, STATUS_EXPLAINED
from printlab.models import Event, Job
from printlab.services.jobs.records import simple_id_for


@dataclass(frozen=True)
class Milestone:
    label: str
    when: datetime  # in the lab's time zone


@dataclass(frozen=True)
class StudentView:
    job_id: str
    simple_id: str
    status: Status
    status_label: str
    explanation: str
    student_name: str
    original_filename: str
    print_method: str
    color: str
    printer: str
    submitted_at: datetime
    milestones: list[Milestone]
    quote: dict[str, Any] | None
    reject_reasons: list[str] = field(default_factory=list)
    analysis_state: str | None = None
    analysis: dict[str, Any] | None = None
    analysis_error: str | None = None
    has_thumbnail: bool = False


def student_view(session: Session, job: Job, catalog: Catalog) -> StudentView:
    """Everything a student's page shows about their job (no other job is ever read)."""
    zone = catalog.lab.time_zone
    status = job.status_enum
    events = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id)).all()
    milestones = []
    for event in events:
        details = event.details if isinstance(event.details, dict) else {}
        if event.event_type == "PrintFailed":
            milestones.append(Milestone(PRINT_FAILED_MILESTONE, to_lab_time(event.timestamp, zone)))  # type: ignore[arg-type]
        elif details.get("to") and not details.get("revert"):
            label = MILESTONE[Status(details["to"])]
            if milestones and milestones[-1].label == label:
                continue  # one move can write two events (StaffApproved + StatusChanged)
            milestones.append(Milestone(label, to_lab_time(event.timestamp, zone)))  # type: ignore[arg-type]
    quote = None
    if job.cost_usd is not None:
        quote = {
            "cost": format_usd(Decimal(job.cost_usd)),
            "weight_g": job.weight_g,
            "time_hours": job.time_hours,
            "expires_at": to_lab_time(job.confirm_token_expires, zone) if job.confirm_token_expires else None,
            "expired": job.is_confirmation_expired,
        }
    reasons: list[str] = []
    if isinstance(job.reject_reasons, dict):
        reasons = [*job.reject_reasons.get("reasons", []), *filter(None, [job.reject_reasons.get("other")])]
    explanation = STATUS_EXPLAINED[status]
    if status == Status.COMPLETED:
        lab = catalog.lab
        explanation += f" Collect it at {lab.pickup_location} ({lab.opening_hours}); we keep it for {lab.hold_days} days."
    analysis = job.analysis
    return StudentView(
        job_id=job.id,
        simple_id=simple_id_for(session, job.id),
        status=status,
        status_label=status.label,
        explanation=explanation,
        student_name=job.student_name or "",
        original_filename=job.original_filename or "",
        print_method=job.material or "",
        color=job.color or "",
        printer=job.printer or "",
        submitted_at=to_lab_time(job.created_at, zone),  # type: ignore[arg-type]
        milestones=milestones,
        quote=quote,
        reject_reasons=reasons,
        analysis_state=analysis.state if analysis else None,
        analysis=analysis.results if analysis else None,
        analysis_error=analysis.error if analysis else None,
        has_thumbnail=bool(analysis and analysis.thumbnail_png),
    )
