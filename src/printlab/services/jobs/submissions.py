"""Turning a checked submission and its received files (one, or the parts of one job) into a job: one
transaction with the file placement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import is_postgresql, write_transaction
from printlab.domain.naming import (
    extension_of,
    new_job_id,
    part_file_name,
    sidecar_name,
    stored_base_name,
    stored_file_name,
)
from printlab.domain.statuses import DUPLICATE_BLOCKING, Status
from printlab.domain.submission import MAX_PARTS, Submission, same_file_message, too_many_parts_message
from printlab.models import AnalysisState, Job, JobPart, JobResubmission
from printlab.services.errors import ValidationError
from printlab.services.files import model_analysis
from printlab.services.files.storage import ReceivedFile, Storage
from printlab.services.jobs.records import add_event, sidecar_record, simple_id_for
from printlab.services.mail import outbox
from printlab.services.webhooks import events as webhook_events


class DuplicateSubmission(ValidationError):
    def __init__(self, existing: Job, simple_id: str, part_name: str | None = None):
        self.existing_id = existing.id
        what = f"You already sent {part_name}" if part_name else "You already sent this file"
        super().__init__(
            {
                "file": f"{what} (job {simple_id}, {existing.status_enum.label}). "
                "We'll email you about that job; there's no need to send it again."
            }
        )


@dataclass
class NewPart:
    """One model file of a new job: the student's name for it, the received file and its copies."""

    original_filename: str
    received: ReceivedFile
    copies: int = 1


def _existing_duplicate(session: Session, file_hash: str, email: str) -> Job | None:
    """The student's oldest job still waiting or in progress that has this file, as its main file
    or as one of its parts."""
    in_a_part = select(JobPart.job_id).where(JobPart.file_hash == file_hash)
    return session.scalar(
        select(Job)
        .where(
            or_(Job.file_hash == file_hash, Job.id.in_(in_a_part)),
            func.lower(Job.student_email) == email.lower(),
            Job.status.in_([s.value for s in DUPLICATE_BLOCKING]),
        )
        .order_by(Job.created_at)
        .limit(1)
    )


def _corrected_job(session: Session, job_id: str | None, email: str) -> Job | None:
    """The rejected job a resubmission names, if it is rejected and the same student's; else None."""
    earlier = session.get(Job, job_id) if job_id else None
    if earlier is None or (earlier.student_email or "").lower() != email.lower():
        return None
    rejected = earlier.status == Status.REJECTED or (
        earlier.status == Status.ARCHIVED and bool(earlier.reject_reasons)
    )
    return earlier if rejected else None


def submit(
    session: Session,
    storage: Storage,
    submission: Submission,
    received: ReceivedFile,
    *,
    resubmission_of: str | None = None,
    now: datetime | None = None,
) -> Job:
    """Create the UPLOADED job of one file printed once (see submit_parts)."""
    return submit_parts(
        session,
        storage,
        submission,
        [NewPart(submission.original_filename, received)],
        resubmission_of=resubmission_of,
        now=now,
    )


def submit_parts(
    session: Session,
    storage: Storage,
    submission: Submission,
    parts: Sequence[NewPart],
    *,
    resubmission_of: str | None = None,
    now: datetime | None = None,
) -> Job:
    """Create the UPLOADED job: its files and sidecar in Uploaded/, the row (and a `job_part` row per
    part when there are several or copies), JobCreated, the receipt email, the analysis task.

    Part 1 is the job's main file (`file_path`, `file_hash`, `original_filename`); the others are
    stored beside it with a part suffix. All or nothing: on any failure no row remains and no file
    is left in the storage folders. The received temporary files are always consumed. Raises
    DuplicateSubmission (one of the files is already with the lab, or sent twice in this job) and
    ValidationError.

    `resubmission_of` names a rejected job this one corrects (from that job's status page); the link
    is kept only when that job is Rejected (or archived after a rejection) and was sent from the same
    email address, else the submission goes ahead without it.
    """
    now = now or utcnow()
    placed: list[Path] = []
    try:
        if not 1 <= len(parts) <= MAX_PARTS:
            raise ValidationError({"file": too_many_parts_message(len(parts))})
        _refuse_the_same_file_twice(parts)
        with write_transaction(session):
            if is_postgresql(session):
                # Serialise submissions of the same file, so two identical uploads sent at the same
                # instant can't both pass the duplicate rule (in one order, so two jobs sharing
                # files can't wait for each other).
                for sha in sorted({part.received.sha256 for part in parts}):
                    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:h))"), {"h": sha})
            for part in parts:
                existing = _existing_duplicate(session, part.received.sha256, submission.student_email)
                if existing is not None:
                    name = part.original_filename if len(parts) > 1 else None
                    raise DuplicateSubmission(existing, simple_id_for(session, existing.id), name)
            job_id = new_job_id()
            simple_id = simple_id_for(session, job_id)
            args = (submission.student_name, submission.print_method, submission.color, simple_id)
            main = parts[0]
            stored = stored_file_name(*args, main.original_filename)
            folder = Status.UPLOADED.folder
            job = Job(
                id=job_id,
                student_name=submission.student_name,
                student_email=submission.student_email,
                discipline=submission.discipline,
                class_number=submission.class_number,
                original_filename=main.original_filename,
                display_name=stored_base_name(*args),
                file_path=f"{folder}/{stored}",
                metadata_path=f"{folder}/{sidecar_name(stored)}",
                status=Status.UPLOADED.value,
                printer=submission.printer,
                color=submission.color,
                material=submission.print_method,
                acknowledged_minimum_charge=submission.acknowledged_minimum_charge,
                student_confirmed=False,
                is_confirmation_expired=False,
                file_hash=main.received.sha256,
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            # A job of one file printed once is stored as before parts existed: no part rows.
            in_parts = len(parts) > 1 or main.copies != 1
            for number, part in enumerate(parts, start=1):
                relative = (
                    f"{folder}/{part_file_name(stored_base_name(*args), number, part.original_filename)}"
                )
                placed.append(storage.place_new(part.received.path, relative))
                if in_parts:
                    job.parts.append(
                        JobPart(
                            number=number,
                            original_filename=part.original_filename,
                            file_hash=part.received.sha256,
                            size_bytes=part.received.size,
                            copies=part.copies,
                            state=AnalysisState.PENDING,
                        )
                    )
            sidecar = storage.resolve(job.metadata_path)  # type: ignore[arg-type]
            if sidecar.exists():
                raise ValidationError({"file": "Please try again."})  # a leftover we must not overwrite
            storage.write_atomic(sidecar, storage.encode_sidecar(sidecar_record(job)))
            placed.append(sidecar)
            details: dict[str, object] = {
                "to": Status.UPLOADED.value,
                "size_bytes": main.received.size,
                "extension": Path(stored).suffix,
            }
            if in_parts:
                details["parts"] = [
                    {
                        "extension": extension_of(p.original_filename),
                        "size_bytes": p.received.size,
                        "copies": p.copies,
                    }
                    for p in parts
                ]
            earlier = _corrected_job(session, resubmission_of, submission.student_email)
            if earlier is not None:
                session.flush()  # the job row first: the link refers to it
                session.add(JobResubmission(job_id=job.id, earlier_job_id=earlier.id, created_at=now))
                details["resubmission_of"] = earlier.id
            add_event(session, job, "JobCreated", details, triggered_by=None, workstation_id=None, now=now)
            webhook_events.job_created(session, job, now=now)
            outbox.enqueue(session, job, "receipt", now)
            model_analysis.request(session, job, now)
            session.flush()
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        for part in parts:
            part.received.discard()
    return job


def _refuse_the_same_file_twice(parts: Sequence[NewPart]) -> None:
    """Two parts of one job with the same content: the student meant copies. Raises ValidationError."""
    seen: dict[str, NewPart] = {}
    for part in parts:
        first = seen.setdefault(part.received.sha256, part)
        if first is not part:
            raise ValidationError(
                {"file": same_file_message(first.original_filename, part.original_filename)}
            )
