"""Turning a checked submission and its received file into a job: one transaction with the file placement."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import is_postgresql, write_transaction
from printlab.domain.naming import new_job_id, sidecar_name, stored_base_name, stored_file_name
from printlab.domain.statuses import DUPLICATE_BLOCKING, Status
from printlab.domain.submission import Submission
from printlab.models import Job, JobResubmission
from printlab.services.errors import ValidationError
from printlab.services.files import model_analysis
from printlab.services.files.storage import ReceivedFile, Storage
from printlab.services.jobs.records import add_event, sidecar_record, simple_id_for
from printlab.services.mail import outbox


class DuplicateSubmission(ValidationError):
    def __init__(self, existing: Job, simple_id: str):
        self.existing_id = existing.id
        super().__init__(
            {
                "file": f"You already sent this file (job {simple_id}, {existing.status_enum.label}). "
                "We'll email you about that job; there's no need to send it again."
            }
        )


def _existing_duplicate(session: Session, file_hash: str, email: str) -> Job | None:
    return session.scalar(
        select(Job)
        .where(
            Job.file_hash == file_hash,
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
    """Create the UPLOADED job: file and sidecar in Uploaded/, the row, JobCreated, the receipt email.

    `resubmission_of` names a rejected job this one corrects (from that job's status page); the link
    is kept only when that job is Rejected (or archived after a rejection) and was sent from the same
    email address, else the submission goes ahead without it.

    All or nothing: on any failure no row remains and no file is left in the storage folders. The
    received temporary file is always consumed. Raises DuplicateSubmission.
    """
    now = now or utcnow()
    placed: list[Path] = []
    try:
        with write_transaction(session):
            if is_postgresql(session):
                # Serialise submissions of the same file, so two identical uploads sent at the same
                # instant can't both pass the duplicate rule.
                session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:h))"), {"h": received.sha256})
            existing = _existing_duplicate(session, received.sha256, submission.student_email)
            if existing is not None:
                raise DuplicateSubmission(existing, simple_id_for(session, existing.id))
            job_id = new_job_id()
            simple_id = simple_id_for(session, job_id)
            args = (submission.student_name, submission.print_method, submission.color, simple_id)
            stored = stored_file_name(*args, submission.original_filename)
            folder = Status.UPLOADED.folder
            job = Job(
                id=job_id,
                student_name=submission.student_name,
                student_email=submission.student_email,
                discipline=submission.discipline,
                class_number=submission.class_number,
                original_filename=submission.original_filename,
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
                file_hash=received.sha256,
                created_at=now,
                updated_at=now,
            )
            session.add(job)
            placed.append(storage.place_new(received.path, job.file_path))  # type: ignore[arg-type]
            sidecar = storage.resolve(job.metadata_path)  # type: ignore[arg-type]
            if sidecar.exists():
                raise ValidationError({"file": "Please try again."})  # a leftover we must not overwrite
            storage.write_atomic(sidecar, storage.encode_sidecar(sidecar_record(job)))
            placed.append(sidecar)
            earlier = _corrected_job(session, resubmission_of, submission.student_email)
            if earlier is not None:
                session.flush()  # the job row first: the link refers to it
                session.add(JobResubmission(job_id=job.id, earlier_job_id=earlier.id, created_at=now))
            add_event(
                session,
                job,
                "JobCreated",
                {
                    "to": Status.UPLOADED.value,
                    "size_bytes": received.size,
                    "extension": Path(stored).suffix,
                    **({"resubmission_of": earlier.id} if earlier is not None else {}),
                },
                triggered_by=None,
                workstation_id=None,
                now=now,
            )
            outbox.enqueue(session, job, "receipt", now)
            model_analysis.request(session, job, now)
            session.flush()
    except BaseException:
        for path in placed:
            path.unlink(missing_ok=True)
        raise
    finally:
        received.discard()
    return job
