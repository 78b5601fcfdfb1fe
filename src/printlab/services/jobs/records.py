"""Shared pieces of every job change: loading and row-locking a job, its events, its parts, its sidecar record."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload

from printlab.domain.naming import SIMPLE_ID_LENGTH, extension_of, part_file_name, simple_job_id
from printlab.domain.reports import counted_action
from printlab.models import CountedAction, Event, Job, JobPart
from printlab.services.errors import NotFound
from printlab.services.files.storage import Storage, StorageError

log = logging.getLogger(__name__)

#: Columns of the job row copied into its sidecar, enough to rebuild the row if the database is lost.
SIDECAR_FIELDS = tuple(column.key for column in Job.__table__.columns)
#: Never in a sidecar: only the hash of the token is stored anyway, and a lock is transient.
_SIDECAR_SKIP = {"confirm_token", "locked_by", "locked_until"}


def get_job(session: Session, job_id: str) -> Job:
    """The job, or NotFound."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("No such job.")
    return job


def lock_job(session: Session, job_id: str) -> Job:
    """Load the job for change inside a write transaction.

    On PostgreSQL this is SELECT … FOR UPDATE, so a second app process changing the same job waits
    here and then sees the first one's result. On SQLite the write transaction (BEGIN IMMEDIATE)
    already serialises writers.
    """
    job = session.scalars(
        select(Job).where(Job.id == job_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if job is None:
        raise NotFound("No such job.")
    return job


def add_event(
    session: Session,
    job: Job,
    event_type: str,
    details: dict[str, Any] | None,
    *,
    triggered_by: str | None,
    workstation_id: str | None,
    now: datetime,
) -> Event:
    """Append an audit event (and, for an approval, rejection, cancellation or archiving override,
    its `counted_action` row). Details must not carry the student's personal data."""
    event = Event(
        job_id=job.id,
        timestamp=now,
        event_type=event_type,
        details=details or None,
        triggered_by=triggered_by,
        workstation_id=workstation_id,
    )
    session.add(event)
    action = counted_action(event_type, details)
    if action is not None:
        # Beside the event, in its transaction: what the reports count, without reading its details.
        session.add(
            CountedAction(event=event, job_id=job.id, timestamp=now, action=action, triggered_by=triggered_by)
        )
    return event


def simple_id_for(session: Session, job_id: str) -> str:
    """The shortest prefix of `job_id` (6 or more characters) that no other job's id starts with."""
    length = SIMPLE_ID_LENGTH
    while length < len(job_id):
        prefix = simple_job_id(job_id, length)
        # A range, not LIKE 'prefix%': the primary-key index answers it on both databases.
        clash = session.scalar(
            select(Job.id).where(Job.id >= prefix, Job.id < prefix + "g", Job.id != job_id).limit(1)
        )
        if clash is None:
            return prefix
        length += 1
    return job_id


def base_name(job: Job) -> str:
    """The stored base name all of a job's files start with (display_name, minus any extension)."""
    if not job.display_name:
        raise ValueError(f"job {job.id} has no display name")
    return job.display_name


def job_folder(job: Job) -> str | None:
    """The folder the job's files are in now (derived from its authoritative file)."""
    return PurePosixPath(job.file_path).parent.as_posix() if job.file_path else None


@dataclass(frozen=True)
class Part:
    """One model file of a job as the pages and checks see it: a `job_part` row, or for a job sent
    before parts existed, the job's own file as its one part."""

    number: int
    original_filename: str
    #: The stored name in the job's folder ('JaneDoe_Filament_TrueRed_a1b2c3_p2.stl').
    stored_name: str
    file_hash: str | None
    size_bytes: int | None
    copies: int
    #: The part's own model check: PENDING, DONE or FAILED (None: never analysed).
    state: str | None
    results: dict[str, Any] | None
    error: str | None
    has_thumbnail: bool

    @property
    def extension(self) -> str:
        return extension_of(self.original_filename)


def part_stored_name(job: Job, number: int, original_filename: str) -> str:
    """Where part `number` of `job` is stored, by name (its folder is the job's)."""
    return part_file_name(base_name(job), number, original_filename)


def parts_of(job: Job) -> list[Part]:
    """The job's model files in order, part 1 (the main file) first. Empty when the job has no
    stored name (its files were pruned or deleted and its row rebuilt without one)."""
    if not job.display_name:
        return []
    rows: list[JobPart] = list(job.parts)
    if not rows:
        analysis = job.analysis
        return [
            Part(
                number=1,
                original_filename=job.original_filename or "",
                stored_name=part_stored_name(job, 1, job.original_filename or ""),
                file_hash=job.file_hash,
                size_bytes=None,
                copies=1,
                state=analysis.state if analysis else None,
                results=analysis.results if analysis and isinstance(analysis.results, dict) else None,
                error=analysis.error if analysis else None,
                has_thumbnail=bool(analysis and analysis.thumbnail_png),
            )
        ]
    return [
        Part(
            number=row.number,
            original_filename=row.original_filename,
            stored_name=part_stored_name(job, row.number, row.original_filename),
            file_hash=row.file_hash,
            size_bytes=row.size_bytes,
            copies=row.copies,
            state=row.state,
            results=row.results if isinstance(row.results, dict) else None,
            error=row.error,
            has_thumbnail=bool(row.thumbnail_png),
        )
        for row in rows
    ]


def part_paths(job: Job) -> list[str]:
    """Root-relative paths of every part's file where the job's row says its files are."""
    folder = job_folder(job)
    if folder is None:
        return []
    return [f"{folder}/{part.stored_name}" for part in parts_of(job)]


def _part_record(row: JobPart) -> dict[str, Any]:
    return {
        "number": row.number,
        "original_filename": row.original_filename,
        "file_hash": row.file_hash,
        "size_bytes": row.size_bytes,
        "copies": row.copies,
        "analysis": row.results,
    }


def sidecar_record(job: Job) -> dict[str, Any]:
    """The job row as JSON-safe values for its sidecar, with the upload analysis when there is one
    and, for a job sent in parts, every part (its file, hash, copies and analysis)."""
    record: dict[str, Any] = {}
    persistent = inspect(job).persistent
    analysis = job.analysis if persistent else None
    if analysis is not None and analysis.results is not None:
        record["analysis"] = analysis.results
    parts = job.parts if persistent or "parts" in job.__dict__ else []
    if parts:
        record["parts"] = [_part_record(row) for row in parts]
    for key in SIDECAR_FIELDS:
        if key in _SIDECAR_SKIP:
            continue
        value = getattr(job, key)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        record[key] = value
    return record


def rewrite_sidecar(storage: Storage, job: Job) -> bool:
    """Write the job's sidecar again from its row, in place; call it holding the job's row lock (no
    move is half-done then, so metadata_path is where the sidecar is).

    A missing sidecar or a link in its place is left alone, and a failed write is logged, not
    raised: the change itself stands, and `printlab check` reports the sidecar until it is repaired.
    """
    if not job.metadata_path:
        return False
    try:
        path = storage.resolve(job.metadata_path)
        if not path.is_file():
            return False
        storage.write_atomic(path, storage.encode_sidecar(sidecar_record(job)))
    except (OSError, StorageError) as exc:
        log.warning("could not rewrite the sidecar of job %s: %s", job.id, exc)
        return False
    return True


def job_files(storage: Storage, job: Job) -> list[str]:
    """Root-relative names of the job's files in its current folder (upload, slicer files, sidecar)."""
    folder = job_folder(job)
    if folder is None:
        return []
    return [storage.relative(p) for p in storage.job_files(folder, base_name(job))]


def every_job(session: Session, *, batch: int = 500) -> Iterator[Job]:
    """Every job in id order, a batch at a time (keyset paging; each batch is dropped after use).

    The analysis and parts are in the sidecar record, so they are loaded with the batch, not once per job.
    """
    last = ""
    while True:
        rows = session.scalars(
            select(Job)
            .where(Job.id > last)
            .order_by(Job.id)
            .limit(batch)
            .options(selectinload(Job.analysis), selectinload(Job.parts))
        ).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1].id
        session.expunge_all()


def entered_status_at(job: Job) -> datetime | None:
    """When the job entered its current status, from the audit trail."""
    for event in reversed(job.events):
        if isinstance(event.details, dict) and event.details.get("to") == job.status:
            return event.timestamp
    return None
