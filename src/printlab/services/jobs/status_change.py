"""The one path every status change takes: lock the row, refuse a stale view or someone else's dialog,
apply the change, write its events and email, move the files crash-safely, commit — or change nothing.

`workflow.py` holds the transitions themselves; each hands this engine its table rule and its change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.catalog import Catalog
from printlab.domain.history import BY_STUDENT
from printlab.domain.statuses import Action, Status, Transition, transition_for
from printlab.models import ChangeOutcome, Event, Job
from printlab.services.errors import JobLocked, StaleJob, ValidationError, checked_text
from printlab.services.files.storage import FileMove, Storage
from printlab.services.jobs.change_requests import close_open
from printlab.services.jobs.milestones import record_move
from printlab.services.jobs.print_runs import close_after_move
from printlab.services.jobs.records import add_event, base_name, job_folder, lock_job, sidecar_record
from printlab.services.lab.actors import Actor, require_active_staff, require_admin
from printlab.services.lab.catalog import load_catalog
from printlab.services.mail import outbox
from printlab.services.webhooks import events as webhook_events

log = logging.getLogger(__name__)

LOCK_MINUTES = 5
MAX_REASON = 2000
#: The version a page sends back for a job that has none yet (a row from before versions were kept):
#: it matches only such a row, so even that page can't skip the stale check.
NO_VERSION = datetime.min


@dataclass(frozen=True)
class Expected:
    """What the caller's page showed; a job that no longer matches it is stale and is not changed."""

    status: Status | str | None = None
    updated_at: datetime | None = None


@dataclass
class Change:
    """What a transition's own code adds on top of the table row."""

    details: dict[str, Any]
    email: str | None = None
    email_context: dict[str, Any] | None = None
    #: Events written besides the transition's own, with the same details (an override that archives
    #: a job also writes JobArchived, so the trail says so in the words every reader looks for).
    also_events: tuple[str, ...] = ()
    #: What the printer reported for the print that completes the job (hours, grams), for its milestone.
    printed: tuple[float | None, float | None] | None = None


def check_expected(session: Session, job: Job, expected: Expected | None) -> None:
    """Raise StaleJob if the locked row no longer is what the caller's page showed (None: no page)."""
    if expected is None:
        return
    status_changed = expected.status is not None and str(expected.status) != job.status
    version_changed = expected.updated_at is not None and expected.updated_at != (
        job.updated_at or NO_VERSION
    )
    if status_changed or version_changed:
        zone = load_catalog(session).lab.time_zone  # the message says when, in the lab's time
        raise StaleJob(_last_changed_by(session, job), job.updated_at, job.status_enum.label, zone=zone)


#: Events that record something around a job without changing what a staff member's view shows.
_NOT_A_CHANGE = ("EmailSent", "NotesUpdated", "FileAttached")


def _last_changed_by(session: Session, job: Job) -> str:
    """Who made the job's latest change, in words: a staff name, the student, or PrintLab itself."""
    last = session.scalars(
        select(Event)
        .where(Event.job_id == job.id, Event.event_type.not_in(_NOT_A_CHANGE))
        .order_by(Event.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return job.last_updated_by or "someone else"
    if last.triggered_by:
        return last.triggered_by
    return "the student" if last.event_type in BY_STUDENT else "PrintLab (automatic)"


def check_dialog_lock(job: Job, actor: Actor, now: datetime) -> None:
    """Raise JobLocked while another staff member's action dialog holds the job."""
    if job.locked_by and job.locked_until and job.locked_until > now and job.locked_by != actor.staff:
        raise JobLocked(job.locked_by, job.locked_until)


def next_version(job: Job, now: datetime) -> datetime:
    # updated_at doubles as the job's version, so it must strictly increase even within a microsecond.
    previous = job.updated_at
    return now if previous is None or now > previous else previous + timedelta(microseconds=1)


def _move_files(storage: Storage, job: Job, target: Status) -> FileMove | None:
    """Place the job's files and fresh sidecar in the target status's folder (REJECTED: stay put)."""
    source_folder = job_folder(job)
    if source_folder is None or not job.metadata_path:
        return None  # files deleted by an admin: nothing to move
    target_folder = target.folder or source_folder
    files = storage.job_files(source_folder, base_name(job))
    sidecar = PurePosixPath(job.metadata_path).name
    job.file_path = f"{target_folder}/{PurePosixPath(job.file_path).name}"
    job.metadata_path = f"{target_folder}/{sidecar}"
    return storage.move(files, target_folder, sidecar=(sidecar, storage.encode_sidecar(sidecar_record(job))))


def run_transition(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    expected: Expected | None,
    now: datetime | None,
    rule: Callable[[Job], Transition],
    change: Callable[[Job, Transition], Change],
    needs_staff: bool = True,
    needs_admin: bool = False,
    honour_dialog_lock: bool = True,
) -> Job:
    now = now or utcnow()
    move: FileMove | None = None
    try:
        with write_transaction(session):
            job = lock_job(session, job_id)
            check_expected(session, job, expected)
            transition = rule(job)
            if needs_staff:
                require_active_staff(session, actor)
            if needs_admin:
                require_admin(session, actor)
            if honour_dialog_lock:
                check_dialog_lock(job, actor, now)
            source = job.status_enum
            result = change(job, transition)

            job.status = transition.target.value
            job.updated_at = next_version(job, now)
            if actor.staff:
                job.last_updated_by = actor.staff
            job.locked_by = None  # an action ends the dialog that held the lock
            job.locked_until = None
            if source == Status.UPLOADED and transition.target != Status.UPLOADED:
                # A job that left Uploaded waits for no corrected file. Read without flushing: a
                # second UPDATE of the job row would stamp `updated_at` with the column's own clock.
                with session.no_autoflush:
                    close_open(session, job, ChangeOutcome.MOVED_ON, now)

            # After the version is set: the milestone's lookup may flush the job row, whose status
            # change must carry it (job_search's trigger takes the time of entering the status from it).
            record_move(
                session, job, source.value, job.status, revert=bool(result.details.get("revert")), now=now,
                printed=result.printed,
            )  # fmt: skip
            # A run on a connected printer that this move leaves with nothing to follow is closed with it.
            close_after_move(session, job, transition, by=actor.staff, now=now)
            details = {"from": source.value, "to": transition.target.value, **result.details}
            events = (
                transition.event_type,
                *(("StatusChanged",) if transition.action == Action.APPROVE else ()),
                *result.also_events,
            )
            for event_type in events:
                add_event(
                    session,
                    job,
                    event_type,
                    details,
                    triggered_by=actor.staff,
                    workstation_id=actor.workstation,
                    now=now,
                )
            webhook_events.status_changed(
                session, job, source.value, by=actor.staff, details=details, now=now
            )
            email = result.email if result.email is not None else transition.email
            if email:
                outbox.enqueue(session, job, email, now, **(result.email_context or {}))
            move = _move_files(storage, job, transition.target)
            session.flush()
    except BaseException:
        if move is not None:
            move.abort()
        raise
    if move is not None:
        _finish_move(session, storage, job_id, move)
    return job


def _finish_move(session: Session, storage: Storage, job_id: str, move: FileMove) -> None:
    """Remove the move's sources under the job's row lock, sparing the folder the job is in now.

    Without the lock, a second move committed in between (back to the old folder) could reuse the
    stale sources as its own files, and this cleanup would then delete them.
    """
    try:
        with write_transaction(session):
            folder = job_folder(lock_job(session, job_id))
            move.finish(keep_folder=storage.resolve(folder) if folder else None)
    except Exception:  # the move is committed; a leftover stale copy is all this can cost
        log.exception("cleanup after moving job %s failed; stale copies remain", job_id)


def by_table(action: Action) -> Callable[[Job], Transition]:
    return lambda job: transition_for(action, job.status_enum)


def checked_reason(
    reason: str | None, field: str = "reason", what: str = "a reason", label: str = "The reason"
) -> str:
    """A reason typed in a dialog (several lines allowed), checked by the one text rule."""
    text = checked_text(reason, field, label, multiline=True).strip()
    if not text:
        raise ValidationError({field: f"Give {what}."})
    if len(text) > MAX_REASON:
        raise ValidationError({field: f"Keep it under {MAX_REASON} characters."})
    return text


def checked_reasons(
    catalog: Catalog, reasons: list[str] | None, other_reason: str | None, other_label: str, none_given: str
) -> dict[str, Any]:
    """Reasons staff give the student (for a rejection or a "needs changes"): the catalog's, chosen
    once each, and/or their own words. {"reasons": [...], "other": text or None}; raises
    ValidationError (`none_given` when there is neither)."""
    chosen = [r for r in dict.fromkeys(reasons or []) if r]
    if any(r not in catalog.rejection_reasons for r in chosen):
        raise ValidationError({"reasons": "Choose reasons from the list, or write your own."})
    other = checked_text(other_reason, "other_reason", other_label, multiline=True).strip()
    if len(other) > MAX_REASON:
        raise ValidationError({"other_reason": f"Keep it under {MAX_REASON} characters."})
    if not chosen and not other:
        raise ValidationError({"reasons": none_given})
    return {"reasons": chosen, "other": other or None}
