"""The job page's read model: every field, its files, the audit timeline and the actions its status allows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import age_text, to_lab_time, utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.history import job_event_sentence, without_repeats
from printlab.domain.naming import extension_of
from printlab.domain.quotes import MODEL_EXTENSIONS
from printlab.domain.statuses import Status
from printlab.models import Event, Job, JobChangeRequest, OutboxMessage, OutboxStatus, Payment, Staff
from printlab.services.files.storage import SIDECAR_SUFFIX, Storage
from printlab.services.jobs import change_requests, payments, print_runs, resend
from printlab.services.jobs.print_runs import RunNote
from printlab.services.jobs.records import Part, get_job, job_folder, parts_of, simple_id_for
from printlab.services.jobs.workflow import SLICER_EXTENSIONS, candidate_files
from printlab.services.views.student_status import resubmission_links


@dataclass(frozen=True)
class FileEntry:
    name: str
    relative: str
    absolute: str
    size_bytes: int
    modified: datetime
    kind: str  # model, slicer, sidecar, other
    is_authoritative: bool
    is_original: bool


@dataclass(frozen=True)
class PartEntry:
    """One part of a job sent in several parts: its file name, copies and check, and its file on disk."""

    part: Part
    file: FileEntry | None


@dataclass(frozen=True)
class TimelineEntry:
    when: datetime
    event_type: str
    staff: str | None
    staff_active: bool
    workstation: str | None
    details: dict[str, Any]
    #: What happened, in words ("Approved by Alex Rivera — quote $3.80 emailed").
    sentence: str


@dataclass(frozen=True)
class JobDetail:
    job: Job
    simple_id: str
    status: Status
    created: datetime
    age: str
    files: list[FileEntry]
    candidates: list[str]
    timeline: list[TimelineEntry]
    payments: list[Payment]
    #: What the payment rows add up to (None: no payment recorded yet).
    balance: Decimal | None
    failed_emails: list[OutboxMessage]
    emails: list[OutboxMessage]
    resendable: list[str]
    locked_by: str | None
    locked_until: datetime | None
    model_file: FileEntry | None
    #: Every part with its own preview and check, for a job sent in parts (empty otherwise: its
    #: one model is `model_file`, its check the job's analysis).
    parts: list[PartEntry]
    #: The open "needs changes" request: the job waits for the student's corrected file.
    waiting: JobChangeRequest | None = None
    #: The job's print on a connected printer, in words (being sent, not started, printing, stopped).
    run_note: RunNote | None = None
    waiting_reasons: tuple[str, ...] = ()
    #: The rejected job this one corrects (id, short id) and why that one was rejected.
    resubmission_of: tuple[str, str] | None = None
    earlier_reasons: tuple[str, ...] = ()
    #: The job sent as this one's corrected version (id, short id).
    resubmitted_as: tuple[str, str] | None = None


def _kind(name: str) -> str:
    lower = name.lower()
    if lower.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if lower.endswith(SLICER_EXTENSIONS) and not lower.endswith(MODEL_EXTENSIONS):
        return "slicer"
    if lower.endswith(".gcode.3mf"):
        return "slicer"
    if lower.endswith(MODEL_EXTENSIONS):
        return "model"
    return "other"


def job_files(storage: Storage, job: Job, zone: str) -> list[FileEntry]:
    """The job's files in its folder with sizes and times, the authoritative one marked."""
    folder = job_folder(job)
    if folder is None or not job.display_name:
        return []
    original = f"{job.display_name}{extension_of(job.original_filename or '')}"
    uploads = {part.stored_name for part in parts_of(job)}
    entries = []
    for path in storage.job_files(folder, job.display_name):
        try:
            stat = path.stat(follow_symlinks=False)
        except OSError:  # moved or removed since the folder was listed
            continue
        relative = f"{folder}/{path.name}"
        entries.append(
            FileEntry(
                name=path.name,
                relative=relative,
                absolute=str(path),
                size_bytes=stat.st_size,
                modified=to_lab_time(datetime.utcfromtimestamp(stat.st_mtime), zone),
                kind=_kind(path.name),
                is_authoritative=relative == job.file_path,
                is_original=path.name == original or path.name in uploads,
            )
        )
    order = {"model": 1, "slicer": 0, "other": 2, "sidecar": 3}
    return sorted(entries, key=lambda e: (not e.is_authoritative, order[e.kind], e.name))


def _one_per_change(events: list[Event]) -> list[Event]:
    """The events with the second event of one change left out (approving writes two)."""
    facts = [
        {
            "event_type": e.event_type, "timestamp": e.timestamp, "triggered_by": e.triggered_by,
            "details": e.details, "event": e,
        }
        for e in events
    ]  # fmt: skip
    return [fact["event"] for fact in without_repeats(facts)]


def _timeline_entry(event: Event, active: dict[str, bool], zone: str, now: datetime) -> TimelineEntry:
    details = event.details if isinstance(event.details, dict) else {}
    staff_active = active.get(event.triggered_by or "", False)
    by = event.triggered_by
    if by and not staff_active:
        by = f"{by} (inactive)"
    return TimelineEntry(
        when=to_lab_time(event.timestamp or now, zone),
        event_type=event.event_type or "",
        staff=event.triggered_by,
        staff_active=staff_active,
        workstation=event.workstation_id,
        details=details,
        sentence=job_event_sentence(event.event_type or "", details, by),
    )


def job_detail(session: Session, storage: Storage, job_id: str, catalog: Catalog) -> JobDetail:
    """Everything the job page shows. Raises NotFound."""
    job = get_job(session, job_id)
    zone = catalog.lab.time_zone
    now = utcnow()
    events = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id)).all()
    names = {e.triggered_by for e in events if e.triggered_by}
    active = {
        s.name: bool(s.is_active) for s in session.scalars(select(Staff).where(Staff.name.in_(names)))
    } if names else {}  # fmt: skip
    timeline = [_timeline_entry(e, active, zone, now) for e in _one_per_change(events)]
    files = job_files(storage, job, zone)
    by_name = {f.name: f for f in files}
    live = job.locked_by if job.locked_until and job.locked_until > now else None
    emails = list(
        session.scalars(
            select(OutboxMessage).where(OutboxMessage.job_id == job.id).order_by(OutboxMessage.id.desc())
        )
    )
    created = job.created_at or now
    waiting = change_requests.open_request(session, job.id) if job.status == Status.UPLOADED else None
    links = resubmission_links(session, job.id)
    earlier = session.get(Job, links["resubmission_of"][0]) if links["resubmission_of"] else None
    return JobDetail(
        job=job,
        simple_id=simple_id_for(session, job.id),
        status=job.status_enum,
        created=to_lab_time(created, zone),
        age=age_text(created, now),
        files=files,
        candidates=candidate_files(storage, job) if job.status == Status.UPLOADED.value else [],
        timeline=timeline,
        payments=list(session.scalars(select(Payment).where(Payment.job_id == job.id).order_by(Payment.id))),
        balance=paid.paid_usd if (paid := payments.balance(session, job.id)) is not None else None,
        failed_emails=[m for m in emails if m.status == OutboxStatus.FAILED],
        emails=emails,
        resendable=resend.resendable(job),
        locked_by=live,
        locked_until=job.locked_until if live else None,
        model_file=next((f for f in files if f.is_original), None),
        parts=[PartEntry(part, by_name.get(part.stored_name)) for part in parts_of(job)] if job.parts else [],
        waiting=waiting,
        waiting_reasons=tuple(change_requests.reasons_list(waiting.reasons)) if waiting else (),
        resubmission_of=links["resubmission_of"],
        earlier_reasons=tuple(change_requests.reasons_list(earlier.reject_reasons)) if earlier else (),
        resubmitted_as=links["resubmitted_as"],
        run_note=print_runs.note_for(session, job),
    )


def file_for_download(storage: Storage, job: Job, name: str) -> Path:
    """The path of one of the job's own files, refusing anything else (other jobs, traversal)."""
    folder = job_folder(job)
    if folder is None or not job.display_name or PurePosixPath(name).name != name:
        raise FileNotFoundError(name)
    allowed = {p.name: p for p in storage.job_files(folder, job.display_name)}
    if name not in allowed:
        raise FileNotFoundError(name)
    return allowed[name]
