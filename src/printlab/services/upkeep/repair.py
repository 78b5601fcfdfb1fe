"""Integrity repair (SPEC §5): a finding's repair, applied only when asked — re-checked first, attributed,
logged and idempotent."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import is_postgresql, write_transaction
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import AnalysisState, Job, JobAnalysis, JobPart
from printlab.services import tasks
from printlab.services.errors import NotFound, ValidationError
from printlab.services.files.model_analysis import TASK_KIND as ANALYSIS_TASK
from printlab.services.files.storage import TEMP_FOLDER, FileMove, Storage, StorageError, sha256_of
from printlab.services.jobs.milestones import record_rebuilt
from printlab.services.jobs.records import (
    add_event,
    base_name,
    job_folder,
    lock_job,
    part_paths,
    sidecar_record,
)
from printlab.services.lab import admin_log
from printlab.services.lab.actors import CONSOLE, Actor, require_active_staff, require_admin
from printlab.services.upkeep.findings import (
    LOST_AND_FOUND,
    Item,
    Kind,
    NothingToDo,
    Outcome,
    RepairRefused,
    Result,
    StaleDecision,
    check,
    deleted_files,
    leftover_decision,
    relative_to_root,
    require_row_inside,
    same_content,
    stale_decision,
    without_name,
)
from printlab.services.upkeep.integrity import (
    LEFTOVER_AGE,
    UnrebuildableSidecar,
    read_record,
    rebuild_parts,
    rebuild_values,
)

log = logging.getLogger(__name__)

#: "Repair all" checks again after each round, because one repair can make another possible (a
#: rebuilt row turns orphans into stale copies; a file put back lets its job move). Bounded, so a
#: repair that keeps failing can't loop.
MAX_ROUNDS = 4
#: The `reason` of every event a repair writes.
REASON = "Integrity repair"


# -- repairing -----------------------------------------------------------------------------------


def repair(
    session: Session, storage: Storage, key: str, *, actor: Actor, now: datetime | None = None
) -> Outcome:
    """Apply the repair of one finding, named by its key, if a fresh check still finds it.

    Raises NotAllowed (not an admin workstation), ValidationError (no active staff member named,
    or a key that names no kind of finding). A finding that is gone, or a repair that is not safe
    right now, is an Outcome saying so, not an error.
    """
    kind_text, _, rest = key.partition(":")
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise ValidationError({"key": "That is not a finding of the integrity check."}) from None
    _require_repairer(session, actor)
    item = check(session, storage, now=now).find(key)
    if item is None:
        path = rest.partition(":")[2]
        return Outcome(key, kind, path, Result.NOTHING, "Already repaired, or no longer found.")
    if item.repair is None:
        return Outcome(key, kind, item.path, Result.REFUSED, f"{item.problem} PrintLab can't repair this.")
    return _apply(session, storage, item, actor, now or utcnow())


def repair_all(
    session: Session, storage: Storage, *, actor: Actor, now: datetime | None = None
) -> list[Outcome]:
    """Apply every safe repair, checking again after each round until nothing more can be done.

    Running it a second time does nothing. Raises NotAllowed, ValidationError (as `repair`).
    """
    _require_repairer(session, actor)
    moment = now or utcnow()
    outcomes: dict[str, Outcome] = {}
    for _ in range(MAX_ROUNDS):
        todo = check(session, storage, now=now).repairable
        progressed = False
        for item in todo:
            outcome = _apply(session, storage, item, actor, moment)
            progressed = progressed or outcome.result == Result.DONE
            earlier = outcomes.get(item.key)
            if earlier is None or earlier.result != Result.DONE:
                outcomes[item.key] = outcome
        if not progressed:
            break
    return list(outcomes.values())


def _require_repairer(session: Session, actor: Actor) -> None:
    """An admin workstation with an active staff member named, or the server's console."""
    require_admin(session, actor)
    if actor.staff or actor.workstation != CONSOLE:
        require_active_staff(session, actor)
    session.rollback()  # end the read; every repair starts its own write transaction


def _apply(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> Outcome:
    try:
        message = _REPAIRS[item.kind](session, storage, item, actor, now)
    except NothingToDo as exc:
        return Outcome(item.key, item.kind, item.path, Result.NOTHING, str(exc))
    except (RepairRefused, StorageError, NotFound) as exc:
        return Outcome(item.key, item.kind, item.path, Result.REFUSED, str(exc))
    except OSError as exc:
        log.warning("integrity repair of %s failed: %s", item.path, exc)
        return Outcome(
            item.key, item.kind, item.path, Result.REFUSED, f"The storage refused: {exc.strerror or exc}."
        )
    log.info("integrity repair: %s %s: %s", item.kind, item.path, message)
    return Outcome(item.key, item.kind, item.path, Result.DONE, message)


def _regular_file(storage: Storage, relative: str) -> Path | None:
    """The file at `relative`, None when nothing is there; refuses links and anything not a file.

    Raises UnsafePath (a StorageError) for a path that leaves the root.
    """
    path = storage.resolve(relative)
    if path.is_symlink():
        raise RepairRefused(f"{relative} is a symbolic link; PrintLab never follows or changes one.")
    if not path.exists():
        return None
    if not path.is_file():
        raise RepairRefused(f"{relative} is not a regular file.")
    return path


def _job_event(
    session: Session, job: Job, override: str, actor: Actor, now: datetime, **details: Any
) -> None:
    add_event(
        session,
        job,
        "AdminOverride",
        {"override": override, "reason": REASON, **details},
        triggered_by=actor.staff,
        workstation_id=actor.workstation,
        now=now,
    )


def _log(session: Session, actor: Actor, now: datetime, **details: Any) -> None:
    admin_log.record(
        session, "IntegrityRepair", details, staff=actor.staff, workstation=actor.workstation, now=now
    )


def _serialise_with_submissions(session: Session, sha256: str | None) -> None:
    """Wait for a submission of the same bytes that is still in its transaction.

    A submission places its file before its row commits, so a scan can catch that file looking like
    an orphan. On SQLite the write transaction already waits for it; on PostgreSQL this takes the
    advisory lock `submissions.submit` holds for the file's hash until it commits.
    """
    if sha256 and is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:h))"), {"h": sha256})


def _rebuild_row(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    record = read_record(storage, item.path)
    if record is None:
        raise RepairRefused("The sidecar can't be read any more.")
    try:
        values = rebuild_values(storage, item.path, record)
    except UnrebuildableSidecar as exc:
        raise RepairRefused(f"The sidecar can't rebuild the job: {exc}.") from None
    try:
        with write_transaction(session):
            _serialise_with_submissions(session, values.get("file_hash"))
            if session.get(Job, values["id"]) is not None:
                raise NothingToDo("The job is in the database already.")
            job = Job(**values)
            session.add(job)
            session.flush()
            results = record.get("analysis")
            # The sidecar keeps the analysis results, not the thumbnail: analyse again to bring it back.
            session.add(
                JobAnalysis(
                    job_id=job.id,
                    state=AnalysisState.DONE if results is not None else AnalysisState.PENDING,
                    results=results,
                    analysed_at=now if results is not None else None,
                )
            )
            # Each part's results are kept, marked for the analysis to run again (its thumbnail
            # isn't in the sidecar either).
            for part in rebuild_parts(record):
                session.add(JobPart(job_id=job.id, state=AnalysisState.PENDING, **part))
            tasks.enqueue(session, ANALYSIS_TASK, job=job, now=now)
            record_rebuilt(session, job)
            needs_resend = job.status == Status.PENDING
            _job_event(
                session,
                job,
                "rebuilt_from_sidecar",
                actor,
                now,
                status=job.status,
                sidecar=without_name(item.path, job.display_name),
                **({"needs_resend": True} if needs_resend else {}),
            )
    except IntegrityError:
        raise NothingToDo("The job was put back in the database meanwhile.") from None
    message = f"Rebuilt job {job.id[:6]} ({Status(job.status).label}) from its sidecar."
    if needs_resend:
        message += " Resend the quote from the job's page: the student's old link can't work."
    if job.status == Status.PAIDPICKEDUP:
        message += " Its payment record is not in the sidecar."
    return message


def _put_back_missing_file(
    session: Session, storage: Storage, item: Item, actor: Actor, now: datetime
) -> str:
    if item.source is None or item.job_id is None:
        raise RepairRefused("No copy to put back.")
    source = _regular_file(storage, item.source)
    if source is None or sha256_of(source) != item.source_sha256:
        raise RepairRefused(f"The copy at {item.source} changed since the check; check again.")
    with write_transaction(session):
        job = lock_job(session, item.job_id)
        if item.path != job.file_path and item.path not in part_paths(job):
            raise NothingToDo("The job changed since the check.")
        _restore(session, storage, job, source, actor, now, item.path)
    _remove_copies(session, storage, item.job_id, [source])
    return f"Put back {item.path} from {item.source}."


def _restore(
    session: Session,
    storage: Storage,
    job: Job,
    source: Path,
    actor: Actor,
    now: datetime,
    target: str | None = None,
) -> None:
    """Under the job's row lock: place `source` where the row points (`target`: one of its parts' files;
    the authoritative file by default), refusing to overwrite, and event it."""
    target = target or job.file_path
    assert target is not None
    if _regular_file(storage, target) is not None:
        raise NothingToDo(f"{target} is back already.")
    storage.place_new(source, target)
    origin = relative_to_root(storage, source)
    _job_event(
        session,
        job,
        "restore_file",
        actor,
        now,
        file=without_name(target, job.display_name),
        copy_from=without_name(origin, job.display_name),
    )


def _remove_copies(session: Session, storage: Storage, job_id: str, copies: list[Path]) -> None:
    """After the commit, under the row lock: remove copies left in status folders other than the
    job's own (a later move may have brought the job back there and made them its files)."""
    with write_transaction(session):
        folder = job_folder(lock_job(session, job_id))
        keep = storage.resolve(folder) if folder else None
        for copy in copies:
            if (
                copy.parent != keep
                and copy.parent.parent == storage.root
                and copy.parent.name in STATUS_FOLDERS
            ):
                copy.unlink(missing_ok=True)


def _write_sidecar(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    assert item.job_id is not None
    with write_transaction(session):
        job = lock_job(session, item.job_id)
        if job.metadata_path != item.path:
            raise NothingToDo("The job changed since the check.")
        require_row_inside(storage, job)
        existing = _regular_file(storage, item.path)
        data = storage.encode_sidecar(sidecar_record(job))
        if existing is not None and existing.read_bytes() == data:
            raise NothingToDo("The sidecar matches the database already.")
        target = storage.resolve(item.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written before the commit: if the commit fails the sidecar still describes the row.
        storage.write_atomic(target, data)
        _job_event(
            session,
            job,
            "rewrite_sidecar",
            actor,
            now,
            sidecar=without_name(item.path, job.display_name),
            was="missing" if existing is None else "different",
        )
    return f"Wrote {item.path} from the database."


def _move_to_status_folder(
    session: Session, storage: Storage, item: Item, actor: Actor, now: datetime
) -> str:
    assert item.job_id is not None
    move: FileMove | None = None
    try:
        with write_transaction(session):
            job = lock_job(session, item.job_id)
            require_row_inside(storage, job)
            current, target = job_folder(job), Status(job.status).folder
            if current is None or target is None or current == target:
                raise NothingToDo("The job's files are in its status's folder already.")
            if _regular_file(storage, job.file_path or "") is None:
                raise RepairRefused(f"The job's file {job.file_path} is missing: put it back first.")
            files = storage.job_files(current, base_name(job))
            if any(path.is_symlink() for path in files):
                raise RepairRefused("A symbolic link is among the job's files; PrintLab never follows one.")
            sidecar = PurePosixPath(job.metadata_path).name if job.metadata_path else None
            job.file_path = f"{target}/{PurePosixPath(job.file_path or '').name}"
            job.metadata_path = f"{target}/{sidecar}" if sidecar else None
            # The row changed (its paths): a page showing the old ones is stale, as after a transition.
            job.updated_at = max(now, (job.updated_at or now) + timedelta(microseconds=1))
            encoded = storage.encode_sidecar(sidecar_record(job))
            # Place → commit → remove, as a transition moves files: a crash leaves a stale copy at most.
            move = storage.move(files, target, sidecar=(sidecar, encoded) if sidecar else None)
            _job_event(
                session, job, "move_to_status_folder", actor, now, from_folder=current, to_folder=target
            )
            session.flush()
    except BaseException:
        if move is not None:
            move.abort()
        raise
    assert move is not None
    with write_transaction(session):
        folder = job_folder(lock_job(session, item.job_id))
        move.finish(keep_folder=storage.resolve(folder) if folder else None)
    return f"Moved the job's files from {current}/ to {target}/."


def _stale_copy(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    assert item.job_id is not None
    with write_transaction(session):
        job = lock_job(session, item.job_id)
        require_row_inside(storage, job)
        copy = _regular_file(storage, item.path)
        if copy is None:
            raise NothingToDo("The copy is gone already.")
        if job_folder(job) == PurePosixPath(item.path).parent.as_posix():
            raise NothingToDo("The job's files are in that folder now: it is not a stale copy any more.")
        deleted = deleted_files(session, [job.id]).get(job.id, set())
        action, why, because = stale_decision(storage, job, item.path, deleted)
        short = without_name(item.path, job.display_name)
        if action == StaleDecision.RESTORE:
            _restore(session, storage, job, copy, actor, now)
            copy.unlink()  # after the placing: a crash in between leaves an identical stale copy
            return f"Put it back at {job.file_path}."
        if action == StaleDecision.REMOVE:
            copy.unlink()
            _log(session, actor, now, repair="stale_copy_removed", job_id=job.id, path=short, because=because)
            return "Removed: " + why.removeprefix("Remove it: ")
        kept = _to_lost_and_found(storage, copy, PurePosixPath(item.path).parent.as_posix())
        _log(
            session,
            actor,
            now,
            repair="stale_copy_to_lost_and_found",
            job_id=job.id,
            path=short,
            because=because,
            to=without_name(kept, job.display_name),
        )
        return f"Moved to {kept}."


def _orphan(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    path = _regular_file(storage, item.path)
    if path is None:
        raise NothingToDo("The file is gone already.")
    sha256 = sha256_of(path)
    with write_transaction(session):
        _serialise_with_submissions(session, sha256)
        if _owned_by_a_job(session, path.name):
            raise NothingToDo("A job owns this file now.")
        kept = _to_lost_and_found(storage, path, PurePosixPath(item.path).parent.as_posix())
        _log(session, actor, now, repair="orphan_to_lost_and_found", path=item.path, to=kept, sha256=sha256)
    return f"Moved to {kept}."


def _leftover(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    path = _regular_file(storage, item.path)
    if path is None:
        raise NothingToDo("The upload is gone already.")
    if now - _mtime_utc(path) <= LEFTOVER_AGE:
        raise NothingToDo("The upload was written to recently; it may still be arriving.")
    with write_transaction(session):
        # Decided again now, after any submission of the same bytes still in its transaction.
        _serialise_with_submissions(session, sha256_of(path))
        remove, _, sha256 = leftover_decision(session, storage, item.path)
        if remove:
            _log(session, actor, now, repair="leftover_upload_removed", path=item.path, sha256=sha256)
        else:
            kept = _to_lost_and_found(storage, path, TEMP_FOLDER.lstrip("."))
            _log(session, actor, now, repair="leftover_upload_to_lost_and_found", path=item.path, to=kept)
    if not remove:
        return f"Moved to {kept}."
    # After the commit, so the admin log always has the entry; a crash before this line leaves the
    # upload for the next check to report again.
    path.unlink(missing_ok=True)
    return "Removed."


def _mtime_utc(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)


def _owned_by_a_job(session: Session, name: str) -> bool:
    """Whether a job's stored name starts `name` (the scan's rule: followed by a non-alphanumeric)."""
    prefixes = [name[:index] for index in range(1, len(name)) if not name[index].isalnum()]
    return (
        bool(prefixes)
        and session.scalar(select(Job.id).where(Job.display_name.in_(prefixes)).limit(1)) is not None
    )


def _to_lost_and_found(storage: Storage, path: Path, origin: str) -> str:
    """Move `path` into Lost+Found/<origin>/ under a free name (or onto an identical copy already
    there); place first, then remove, so a crash leaves two copies rather than none."""
    name = PurePosixPath(path.name)
    for number in range(1, 1000):
        candidate = name.name if number == 1 else f"{name.stem} ({number}){name.suffix}"
        relative = f"{LOST_AND_FOUND}/{origin}/{candidate}"
        target = storage.resolve(relative)  # UnsafePath when Lost+Found leads out of the root
        if target.is_symlink():
            continue
        if not target.exists() or (target.is_file() and same_content(path, target)):
            storage.place_new(path, relative)
            path.unlink()
            return relative
    raise RepairRefused(f"{LOST_AND_FOUND}/{origin}/ has too many files named {path.name}.")


_REPAIRS = {
    Kind.MISSING_ROW: _rebuild_row,
    Kind.MISSING_FILE: _put_back_missing_file,
    Kind.MISSING_SIDECAR: _write_sidecar,
    Kind.MISPLACED: _move_to_status_folder,
    Kind.SIDECAR_MISMATCH: _write_sidecar,
    Kind.STALE_COPY: _stale_copy,
    Kind.ORPHAN: _orphan,
    Kind.LEFTOVER_UPLOAD: _leftover,
}


def describe(outcomes: Iterable[Outcome]) -> Iterator[str]:
    """One line per outcome, for the command line."""
    for outcome in outcomes:
        yield f"[{outcome.result}] {outcome.path}: {outcome.message}"
