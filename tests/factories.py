"""Factories with defaults: staff, and jobs brought to any status through the real workflow."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.domain.submission import validate_submission
from printlab.models import Job, LabSetting, OutboxMessage, Staff
from printlab.services.files.storage import Storage
from printlab.services.jobs import quote_links, submissions, workflow
from printlab.services.lab import staff as staff_service
from printlab.services.lab.actors import Actor

from .conftest import MODELS

STAFF = "Alex Rivera"
WORKSTATION = "LAB-PC-1"


def make_staff(session: Session, name: str = STAFF) -> Staff:
    existing = session.get(Staff, name)
    return existing if existing is not None else staff_service.add_staff(session, name)


def actor(name: str = STAFF, workstation: str = WORKSTATION) -> Actor:
    return Actor(name, workstation)


def form(**overrides: Any) -> dict[str, Any]:
    values = {
        "student_name": "Jane Doe",
        "student_email": "jane.doe@example.edu",
        "discipline": "Engineering",
        "class_number": "ME 2110",
        "print_method": "Filament",
        "color": "True Red",
        "printer": "Prusa MK4S",
        "acknowledged_minimum_charge": "on",
    }
    values.update(overrides)
    return values


def set_per_hour(session: Session, number: int) -> None:
    """The lab's submissions per email address and per browser in an hour, as an admin saves it."""
    session.merge(LabSetting(key="submissions_per_hour", value=number, updated_at=utcnow(), updated_by=STAFF))
    session.commit()


def submit_job(
    session: Session,
    storage: Storage,
    model: Path | str = "stl_binary_20mm_xyz_cube.stl",
    *,
    now: datetime | None = None,
    resubmission_of: str | None = None,
    **overrides: Any,
) -> Job:
    path = model if isinstance(model, Path) else MODELS / model
    submission, errors = validate_submission(form(**overrides), path.name, DEFAULT_CATALOG)
    assert submission is not None, errors
    with open(path, "rb") as handle:
        received = storage.receive(handle, 50 * 1024 * 1024)
    return submissions.submit(
        session, storage, submission, received, resubmission_of=resubmission_of, now=now
    )


def quote_token(session: Session, job_id: str) -> str:
    """The raw confirm token from the newest quote email in the outbox, as the student receives it."""
    message = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.job_id == job_id, OutboxMessage.template == "quote")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None and message.context
    return message.context["token"]


_PATH = {
    Status.UPLOADED: [],
    Status.PENDING: ["approve"],
    Status.READYTOPRINT: ["approve", "confirm"],
    Status.PRINTING: ["approve", "confirm", "start"],
    Status.COMPLETED: ["approve", "confirm", "start", "complete"],
    Status.PAIDPICKEDUP: ["approve", "confirm", "start", "complete", "pickup"],
    Status.REJECTED: ["reject"],
    Status.ARCHIVED: ["reject", "archive"],
}


def make_job(
    session: Session, storage: Storage, status: Status | str = Status.UPLOADED, **overrides: Any
) -> Job:
    """A job in `status`, reached through the real workflow (so events, files and emails are real)."""
    make_staff(session)
    job = submit_job(session, storage, **overrides)
    who = actor()
    for step in _PATH[Status(status)]:
        if step == "approve":
            workflow.approve(session, storage, job.id, actor=who, weight_g=42, time_hours=2.2)
        elif step == "confirm":
            result = workflow.confirm(session, storage, quote_token(session, job.id))
            assert result.outcome == quote_links.ConfirmOutcome.CONFIRMED
        elif step == "start":
            workflow.start_printing(session, storage, job.id, actor=who)
        elif step == "complete":
            workflow.complete(session, storage, job.id, actor=who)
        elif step == "pickup":
            workflow.record_pickup(
                session, storage, job.id, actor=who, method="CARD", weighed_g=40, payment_reference="R-1"
            )
        elif step == "reject":
            workflow.reject(session, storage, job.id, actor=who, reasons=["Walls too thin"])
        elif step == "archive":
            workflow.archive(session, storage, job.id, actor=Actor.system())
    session.expire_all()
    return session.get(Job, job.id)  # type: ignore[return-value]
