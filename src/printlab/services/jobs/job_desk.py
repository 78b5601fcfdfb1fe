"""Staff changes to a job that keep its status: notes, the reviewed mark, and sliced files added to it.

Like locks, none of these moves the job's version (`updated_at`): autosaving a note must not make
another workstation's open approval stale. Each one that changes the row writes the job's sidecar
again, so the sidecar keeps describing the row and the integrity check has nothing to report.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePosixPath
from typing import IO

from sqlalchemy import update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.naming import extension_of
from printlab.domain.statuses import TAKES_FILES
from printlab.models import Job
from printlab.services.errors import ValidationError, checked_text
from printlab.services.files.storage import AlreadyExists, Storage
from printlab.services.jobs.records import add_event, base_name, job_folder, lock_job, rewrite_sidecar
from printlab.services.jobs.status_change import Expected, check_expected
from printlab.services.lab.actors import Actor, require_active_staff

MAX_NOTES = 10_000
#: What staff may add beside a model: slicer and project files, and models (a repaired mesh).
ATTACHABLE = (".gcode", ".bgcode", ".gcode.3mf", ".3mf", ".form", ".ctb", ".sl1", ".sl1s", ".stl", ".obj")


def _keep_version(session: Session, storage: Storage, job_id: str, **values: object) -> None:
    """Change the row without moving its version, then write its sidecar again (under the row lock)."""
    session.execute(update(Job).where(Job.id == job_id).values(updated_at=Job.updated_at, **values))
    rewrite_sidecar(storage, lock_job(session, job_id))  # reloaded: the row as the database has it now


def update_notes(
    session: Session,
    storage: Storage,
    job_id: str,
    notes: str,
    *,
    actor: Actor,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> None:
    """Save staff notes (NotesUpdated, attributed). Unchanged text writes nothing.

    Notes typed on a page the job has moved on from raise StaleJob: they may be about what it was.
    """
    text = checked_text(notes, "notes", "Notes", multiline=True).strip()
    if len(text) > MAX_NOTES:
        raise ValidationError({"notes": f"Notes can be at most {MAX_NOTES:,} characters."})
    now = now or utcnow()
    with write_transaction(session):
        require_active_staff(session, actor)
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        if (job.notes or "") == text:
            return
        # The event says who and how much, not what: notes can hold anything staff type.
        add_event(
            session, job, "NotesUpdated", {"length": len(text)},
            triggered_by=actor.staff, workstation_id=actor.workstation, now=now,
        )  # fmt: skip
        _keep_version(session, storage, job_id, notes=text or None, last_updated_by=actor.staff)


def mark_reviewed(
    session: Session,
    storage: Storage,
    job_id: str,
    reviewed: bool,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Clear (or bring back) the NEW badge: some staff member has looked at this job."""
    with write_transaction(session):
        require_active_staff(session, actor)
        lock_job(session, job_id)
        _keep_version(session, storage, job_id, staff_viewed_at=(now or utcnow()) if reviewed else None)


def note_opened(session: Session, storage: Storage, job_id: str, *, now: datetime | None = None) -> None:
    """A staff member opened the job: it is no longer NEW (SPEC §9). Only the first opening counts."""
    with write_transaction(session):
        job = lock_job(session, job_id)
        if job.staff_viewed_at is None:
            _keep_version(session, storage, job_id, staff_viewed_at=now or utcnow())


def attach_file(
    session: Session,
    storage: Storage,
    job_id: str,
    stream: IO[bytes],
    filename: str,
    *,
    actor: Actor,
    max_bytes: int,
    now: datetime | None = None,
) -> str:
    """Save a sliced or project file next to the job's upload, named after the job. Returns its name.

    The file becomes one of the candidates for the authoritative file at approval. Raises
    ValidationError for a type the lab doesn't use, or TooLarge.
    """
    extension = extension_of(filename)
    if extension not in ATTACHABLE:
        raise ValidationError({"file": f"Add a slicer or model file ({', '.join(ATTACHABLE)})."})
    received = storage.receive(stream, max_bytes)
    if received.size == 0:
        received.discard()
        raise ValidationError({"file": "That file is empty."})
    now = now or utcnow()
    placed = None
    try:
        with write_transaction(session):
            require_active_staff(session, actor)
            # Under the row lock no move is half-done, so the job's folder is where its files are.
            job = lock_job(session, job_id)
            status = job.status_enum
            if status not in TAKES_FILES:
                raise ValidationError(
                    {"file": f"This job is {status.label}: files can't be added to it any more."}
                )
            folder = job_folder(job)
            if folder is None:
                raise ValidationError({"file": "This job's files were deleted."})
            name = _free_name(storage, folder, base_name(job), extension)
            placed = storage.place_new(received.path, f"{folder}/{name}")
            add_event(
                session, job, "FileAttached",
                # the name minus the student's part ("_v2.gcode"): events hold no personal data
                {"file": name.removeprefix(base_name(job)), "size_bytes": received.size},
                triggered_by=actor.staff, workstation_id=actor.workstation, now=now,
            )  # fmt: skip
    except BaseException:
        if placed is not None:
            placed.unlink(missing_ok=True)
        raise
    finally:
        received.discard()
    return name


def _free_name(storage: Storage, folder: str, base: str, extension: str) -> str:
    for number in range(1, 100):
        name = f"{base}{extension}" if number == 1 else f"{base}_v{number}{extension}"
        if not storage.resolve(f"{folder}/{name}").exists():
            return name
    raise AlreadyExists(f"Too many versions of {PurePosixPath(base).name}{extension}; tidy the folder first.")
