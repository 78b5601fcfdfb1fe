"""Integrity check and repair (SPEC §5): each finding of the scan with its repair, applied only when asked — attributed, logged, idempotent."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import is_postgresql, write_transaction
from printlab.domain.naming import extension_of
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import AnalysisState, Event, Job, JobAnalysis
from printlab.services import tasks
from printlab.services.errors import NotFound, ValidationError
from printlab.services.files.model_analysis import TASK_KIND as ANALYSIS_TASK
from printlab.services.files.storage import TEMP_FOLDER, FileMove, Storage, StorageError, sha256_of
from printlab.services.jobs.records import add_event, base_name, job_folder, lock_job, sidecar_record
from printlab.services.lab import admin_log
from printlab.services.lab.actors import CONSOLE, Actor, require_active_staff, require_admin
from printlab.services.upkeep.integrity import (
    LEFTOVER_AGE,
    IntegrityReport,
    LeftoverUpload,
    Misplaced,
    MissingFile,
    MissingRow,
    Orphan,
    SidecarMismatch,
    StaleCopy,
    UnrebuildableSidecar,
    UnsafeEntry,
    read_record,
    rebuild_values,
    scan,
)

log = logging.getLogger(__name__)

#: Where repairs put files they may not delete (a student's file is never deleted), under the root.
LOST_AND_FOUND = "Lost+Found"
#: "Repair all" checks again after each round, because one repair can make another possible (a
#: rebuilt row turns orphans into stale copies; a file put back lets its job move). Bounded, so a
#: repair that keeps failing can't loop.
MAX_ROUNDS = 4
#: The `reason` of every event a repair writes.
REASON = "Integrity repair"
#: Columns that routine changes set without rewriting the sidecar: notes, the reviewed mark, a
#: resent or expired quote, the analysis written by the worker.
ROUTINE_FIELDS = frozenset(
    {
        "notes",
        "staff_viewed_at",
        "last_updated_by",
        "confirm_token_expires",
        "confirmation_last_sent_at",
        "is_confirmation_expired",
        "analysis",
    }
)


class Kind(StrEnum):
    """Kinds of finding, in the order they are shown and repaired (a rebuilt row first: it decides
    what the other files are)."""

    MISSING_ROW = "missing_row"
    MISSING_FILE = "missing_file"
    MISSING_SIDECAR = "missing_sidecar"
    MISPLACED = "misplaced"
    SIDECAR_MISMATCH = "sidecar_mismatch"
    STALE_COPY = "stale_copy"
    ORPHAN = "orphan"
    LEFTOVER_UPLOAD = "leftover_upload"
    UNSAFE = "unsafe"

    @property
    def heading(self) -> str:
        return _HEADINGS[self]


_HEADINGS = {
    Kind.MISSING_ROW: "Jobs missing from the database whose sidecar survives",
    Kind.MISSING_FILE: "Jobs whose file is missing",
    Kind.MISSING_SIDECAR: "Jobs whose sidecar is missing",
    Kind.MISPLACED: "Jobs whose files are not in their status's folder",
    Kind.SIDECAR_MISMATCH: "Sidecars that disagree with the database",
    Kind.STALE_COPY: "Stale copies left by an interrupted move",
    Kind.ORPHAN: "Files that belong to no job",
    Kind.LEFTOVER_UPLOAD: "Abandoned uploads",
    Kind.UNSAFE: "Symbolic links and folders outside the storage root",
}


class Result(StrEnum):
    DONE = "done"
    NOTHING = "nothing to do"
    REFUSED = "not done"


@dataclass(frozen=True)
class Item:
    """One finding as an admin sees it: what is wrong and what its repair would do (None: a person
    must look at it)."""

    kind: Kind
    path: str
    job_id: str | None
    problem: str
    repair: str | None
    #: For a missing file: the copy elsewhere in the tree that would be put back, and its SHA-256.
    source: str | None = None
    source_sha256: str | None = None

    @property
    def key(self) -> str:
        """Names the finding in a form or a command; the repair looks it up in a fresh check."""
        return f"{self.kind}:{self.job_id or '-'}:{self.path}"

    @property
    def simple_id(self) -> str | None:
        return self.job_id[:6] if self.job_id else None


@dataclass
class Check:
    """The scan's report as a list of findings with their repairs."""

    report: IntegrityReport
    items: list[Item]
    #: Files waiting in Lost+Found/ for a person to look at (not findings).
    lost_and_found: int

    @property
    def ok(self) -> bool:
        return not self.items

    @property
    def repairable(self) -> list[Item]:
        return [item for item in self.items if item.repair]

    def groups(self) -> list[tuple[Kind, list[Item]]]:
        """The findings by kind, in Kind order, leaving out kinds with none."""
        return [(kind, found) for kind in Kind if (found := [i for i in self.items if i.kind == kind])]

    def find(self, key: str) -> Item | None:
        return next((item for item in self.items if item.key == key), None)


@dataclass(frozen=True)
class Outcome:
    """What one repair did (or why it did nothing)."""

    key: str
    kind: Kind
    path: str
    result: Result
    message: str


class _Refused(Exception):
    """A repair that would not be safe as things stand now; the message says why."""


class _Nothing(Exception):
    """A repair found nothing left to do (repaired meanwhile, or the finding is gone)."""


# -- the check -----------------------------------------------------------------------------------


def check(session: Session, storage: Storage, *, now: datetime | None = None) -> Check:
    """Scan and say, for every finding, what its repair would do. Changes nothing.

    Reads through sessions of its own, so the caller's unit of work is untouched.
    """
    report = scan(session, storage, now=now)
    items: list[Item] = []
    wanted = {
        PurePosixPath(m.path).name for m in report.missing if m.kind == "file" and m.reason == "missing"
    }
    copies = _copies_by_name(storage, wanted) if wanted else {}
    job_ids = {m.job_id for m in report.missing} | {s.job_id for s in report.stale_copies}
    with _reader(session) as reader:
        jobs = _jobs(reader, job_ids)
        deleted = _deleted_files(reader, [s.job_id for s in report.stale_copies if s.current_folder is None])
        for row in report.missing_rows:
            items.append(_missing_row_item(row))
        for missing in report.missing:
            job = jobs.get(missing.job_id)
            if job is not None:
                items.append(_missing_item(storage, missing, job, copies))
        for misplaced in report.misplaced:
            items.append(_misplaced_item(misplaced))
        for mismatch in report.sidecar_mismatches:
            items.append(_mismatch_item(storage, mismatch))
        for stale in report.stale_copies:
            job = jobs.get(stale.job_id)
            if job is not None:
                _, why, _ = _stale_decision(storage, job, stale.path, deleted.get(job.id, set()))
                items.append(Item(Kind.STALE_COPY, stale.path, job.id, _stale_problem(stale), why))
    # A row that points out of the root is wrong itself: its sidecar and copies may be all that
    # says where the job's files really are, so nothing of the job is touched until a person fixes it.
    suspect = {m.job_id for m in report.missing if m.reason == _OUTSIDE}
    items = [
        replace(item, problem=f"{item.problem} {_SUSPECT}", repair=None)
        if item.job_id in suspect and item.repair
        else item
        for item in items
    ]
    items += [_orphan_item(o) for o in report.orphans]
    items += [_leftover_item(leftover) for leftover in report.leftover_uploads]
    items += [_unsafe_item(entry) for entry in report.unsafe]
    order = list(Kind)
    items.sort(key=lambda item: (order.index(item.kind), item.path))
    return Check(report, items, _count_files(storage, LOST_AND_FOUND))


_OUTSIDE = "outside the storage root"
_SUSPECT = "The job's row points outside the storage root: correct the row by hand first."


def _require_row_inside(storage: Storage, job: Job) -> None:
    """Refuse to act on a job whose row points out of the root (see `check`)."""
    for path in (job.file_path, job.metadata_path):
        if path:
            try:
                storage.resolve(path)
            except StorageError:
                raise _Refused(_SUSPECT) from None


def _reader(session: Session) -> Session:
    # Like the scan: a session of its own on the caller's connection source.
    return Session(bind=session.get_bind(), autoflush=False, join_transaction_mode="create_savepoint")


def _jobs(reader: Session, job_ids: Iterable[str]) -> dict[str, Job]:
    ids = sorted(job_ids)
    found: dict[str, Job] = {}
    for start in range(0, len(ids), 500):
        for job in reader.scalars(select(Job).where(Job.id.in_(ids[start : start + 500]))):
            found[job.id] = job
    return found


def _deleted_files(session: Session, job_ids: Iterable[str]) -> dict[str, set[str]]:
    """Per job, the files its FileDeleted events name (in that event's form: 'Pending/….stl')."""
    ids = sorted(set(job_ids))
    found: dict[str, set[str]] = {}
    for start in range(0, len(ids), 500):
        events = session.scalars(
            select(Event).where(Event.job_id.in_(ids[start : start + 500]), Event.event_type == "FileDeleted")
        )
        for event in events:
            names = event.details.get("files") if isinstance(event.details, dict) else None
            found.setdefault(event.job_id, set()).update(n for n in names or () if isinstance(n, str))
    return found


def _missing_row_item(row: MissingRow) -> Item:
    problem = f"No job {row.job_id[:6]} in the database; its sidecar ({row.status or 'no status'}) and "
    problem += f"{len(row.files)} file(s) survive."
    if row.problem:
        return Item(Kind.MISSING_ROW, row.path, row.job_id, f"{problem} {row.problem}", None)
    repair = "Rebuild the job's row from this sidecar (the student's quote link can't be rebuilt"
    repair += ": resend it)." if row.status == Status.PENDING else ")."
    return Item(Kind.MISSING_ROW, row.path, row.job_id, problem, repair)


def _missing_item(storage: Storage, missing: MissingFile, job: Job, copies: dict[str, list[Path]]) -> Item:
    kind = Kind.MISSING_FILE if missing.kind == "file" else Kind.MISSING_SIDECAR
    what = "The job's file" if missing.kind == "file" else "The sidecar"
    problem = f"{what} is {missing.reason}."
    if missing.reason == _OUTSIDE:
        return Item(
            kind, missing.path, job.id, problem + " PrintLab never follows it; correct the row by hand.", None
        )
    if missing.reason != "missing":
        return Item(kind, missing.path, job.id, problem + " Move what is there aside by hand.", None)
    if missing.kind == "sidecar":
        return Item(kind, missing.path, job.id, problem, "Write the sidecar again from the database.")
    found = copies.get(PurePosixPath(missing.path).name, [])
    source, sha256, explanation = _pick_copy(storage, job, found)
    if source is None:
        return Item(kind, missing.path, job.id, f"{problem} {explanation}", None)
    return Item(kind, missing.path, job.id, problem, explanation, source, sha256)


def _misplaced_item(misplaced: Misplaced) -> Item:
    label = Status(misplaced.status).label
    problem = f"The job is {label} but its files are in {misplaced.folder}/."
    return Item(
        Kind.MISPLACED,
        misplaced.folder,
        misplaced.job_id,
        problem,
        f"Move the job's files and sidecar to {misplaced.expected_folder}/.",
    )


def _mismatch_item(storage: Storage, mismatch: SidecarMismatch) -> Item:
    if (storage.root / mismatch.path).is_symlink():
        problem = "The sidecar is a symbolic link: PrintLab never follows or changes one."
        return Item(Kind.SIDECAR_MISMATCH, mismatch.path, mismatch.job_id, problem, None)
    if mismatch.unreadable:
        problem = "The sidecar can't be read."
    else:
        problem = f"The sidecar differs from the database in: {', '.join(mismatch.fields)}."
        if set(mismatch.fields) <= ROUTINE_FIELDS:
            problem += (
                " (Routine: notes, the reviewed mark and quote links change the row without rewriting it.)"
            )
    return Item(
        Kind.SIDECAR_MISMATCH,
        mismatch.path,
        mismatch.job_id,
        problem,
        "Rewrite the sidecar from the database (the database is the truth).",
    )


def _stale_problem(stale: StaleCopy) -> str:
    if stale.current_folder is None:
        return "A file of a job whose files were deleted."
    return f"A copy of the job's file outside its folder ({stale.current_folder}/)."


def _orphan_item(orphan: Orphan) -> Item:
    folder = PurePosixPath(orphan.path).parent.as_posix()
    return Item(
        Kind.ORPHAN,
        orphan.path,
        None,
        "No job has a file of this name, and no sidecar describes one.",
        f"Move it to {LOST_AND_FOUND}/{folder}/ (never deleted).",
    )


def _leftover_item(leftover: LeftoverUpload) -> Item:
    return Item(
        Kind.LEFTOVER_UPLOAD,
        leftover.path,
        None,
        f"An upload that never became a job (last written {leftover.modified_at:%Y-%m-%d %H:%M} UTC).",
        f"Move it to {_LEFTOVER_FOLDER}/.",
    )


def _unsafe_item(entry: UnsafeEntry) -> Item:
    return Item(
        Kind.UNSAFE,
        entry.path,
        None,
        f"{entry.reason[:1].upper()}{entry.reason[1:]}: PrintLab never follows or changes it.",
        None,
    )


_LEFTOVER_FOLDER = f"{LOST_AND_FOUND}/{TEMP_FOLDER.lstrip('.')}"


# -- choosing what a repair does -------------------------------------------------------------------


def _copies_by_name(storage: Storage, names: set[str]) -> dict[str, list[Path]]:
    """Regular files anywhere under the root with one of `names`, status folders first.

    Hidden folders at the top (temporary uploads, what a restore set aside) are not searched;
    symbolic links are neither followed into nor counted.
    """
    found: dict[str, list[Path]] = {}
    for directory, folders, files in os.walk(storage.root, followlinks=False):
        if Path(directory) == storage.root:
            folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            path = Path(directory) / name
            if name in names and not path.is_symlink() and path.is_file():
                found.setdefault(name, []).append(path)
    rank = {folder: index for index, folder in enumerate(STATUS_FOLDERS)}
    for paths in found.values():
        paths.sort(key=lambda p: (rank.get(_relative(storage, p).split("/")[0], len(rank)), str(p)))
    return found


def _pick_copy(storage: Storage, job: Job, copies: list[Path]) -> tuple[str | None, str | None, str]:
    """The copy to put back for a job's missing file: (path, SHA-256, what the repair does) or (None,
    None, why none is safe). The upload must match the hash taken when it arrived; a slicer file
    (no hash known) only when every copy found is the same."""
    if not copies:
        return None, None, "No copy was found anywhere under the storage root: restore it from a backup."
    hashes = {path: sha256_of(path) for path in copies}
    named = ", ".join(_relative(storage, p) for p in copies)
    if job.file_hash:
        for path in copies:
            if hashes[path] == job.file_hash:
                where = _relative(storage, path)
                return where, hashes[path], f"Put back the copy at {where} (the same SHA-256 as the upload)."
    upload = f"{job.display_name}{extension_of(job.original_filename or '')}"
    if PurePosixPath(job.file_path or "").name == upload:
        return (
            None,
            None,
            f"Copies were found ({named}), but none is the file the student uploaded: check by hand.",
        )
    if len(set(hashes.values())) > 1:
        return None, None, f"Different files of this name were found ({named}): choose one by hand."
    where = _relative(storage, copies[0])
    return where, hashes[copies[0]], f"Put back the copy at {where}."


class _Stale(StrEnum):
    REMOVE = "remove"
    RESTORE = "restore"
    LOST = "lost"


def _stale_decision(storage: Storage, job: Job, relative: str, deleted: set[str]) -> tuple[_Stale, str, str]:
    """What happens to a stale copy: removed only when nothing can be lost (the same bytes are where
    the job's row points, an older snapshot of its sidecar, or a file an admin deleted), put back
    when it is the job's missing file, otherwise kept in Lost+Found/.

    Returns the action, what it does in words, and why in a few words without the student's name
    (for the admin log).
    """
    name = PurePosixPath(relative).name
    folder = job_folder(job)
    lost = f"Move it to {LOST_AND_FOUND}/{PurePosixPath(relative).parent}/"
    if folder is None:
        if _without_name(relative, job.display_name) in deleted:
            why = "Remove it: an admin deleted this job's files (FileDeleted); it was left behind."
            return _Stale.REMOVE, why, "deleted by an admin"
        return _Stale.LOST, f"{lost}: the job has no files on the storage any more.", "the job has no files"
    counterpart = f"{folder}/{name}"
    try:
        copy, real = storage.resolve(relative), storage.resolve(counterpart)
    except StorageError:
        return _Stale.LOST, f"{lost}.", "unsafe path"
    is_sidecar = bool(job.metadata_path) and counterpart == job.metadata_path
    if real.is_file() and not real.is_symlink():
        if _same_content(copy, real):
            why = f"Remove it: the same file is where the job's row points ({counterpart})."
            return _Stale.REMOVE, why, f"identical to the job's file in {folder}"
        if is_sidecar and _older_snapshot(storage, relative, job):
            why = "Remove it: an older copy of the job's sidecar (the database is newer)."
            return _Stale.REMOVE, why, "an older sidecar of the job"
        why = f"{lost}: it differs from the job's {counterpart}."
        return _Stale.LOST, why, f"differs from the job's file in {folder}"
    if counterpart == job.file_path:
        why = f"Put it back at {counterpart}, where the job's row points."
        return _Stale.RESTORE, why, "the job's missing file"
    return _Stale.LOST, f"{lost}: the job has no such file in {folder}/.", f"no such file in {folder}"


def _same_content(one: Path, other: Path) -> bool:
    try:
        if one.samefile(other):
            return True
        return one.stat().st_size == other.stat().st_size and sha256_of(one) == sha256_of(other)
    except OSError:
        return False


def _older_snapshot(storage: Storage, relative: str, job: Job) -> bool:
    """A sidecar of this job written before the row's current version: nothing in it is news."""
    record = read_record(storage, relative)
    if record is None or record.get("id") != job.id or not isinstance(record.get("updated_at"), str):
        return False
    try:
        written = datetime.fromisoformat(record["updated_at"])
    except ValueError:
        return False
    return job.updated_at is not None and written.tzinfo is None and written <= job.updated_at


def _without_name(relative: str, display_name: str | None) -> str:
    """'Pending/JaneDoe_..._a1b2c3.stl' → 'Pending/….stl', as FileDeleted events and logs name files."""
    folder, _, name = relative.rpartition("/")
    return f"{folder}/…{name.removeprefix(display_name)}" if display_name else relative


def _relative(storage: Storage, path: Path) -> str:
    return path.relative_to(storage.root).as_posix()


def _count_files(storage: Storage, folder: str) -> int:
    base = storage.root / folder
    if base.is_symlink() or not base.is_dir():
        return 0
    return sum(len(files) for _, _, files in os.walk(base, followlinks=False))


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
    except _Nothing as exc:
        return Outcome(item.key, item.kind, item.path, Result.NOTHING, str(exc))
    except (_Refused, StorageError, NotFound) as exc:
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
        raise _Refused(f"{relative} is a symbolic link; PrintLab never follows or changes one.")
    if not path.exists():
        return None
    if not path.is_file():
        raise _Refused(f"{relative} is not a regular file.")
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
        raise _Refused("The sidecar can't be read any more.")
    try:
        values = rebuild_values(storage, item.path, record)
    except UnrebuildableSidecar as exc:
        raise _Refused(f"The sidecar can't rebuild the job: {exc}.") from None
    try:
        with write_transaction(session):
            _serialise_with_submissions(session, values.get("file_hash"))
            if session.get(Job, values["id"]) is not None:
                raise _Nothing("The job is in the database already.")
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
            tasks.enqueue(session, ANALYSIS_TASK, job=job, now=now)
            needs_resend = job.status == Status.PENDING
            _job_event(
                session,
                job,
                "rebuilt_from_sidecar",
                actor,
                now,
                status=job.status,
                sidecar=_without_name(item.path, job.display_name),
                **({"needs_resend": True} if needs_resend else {}),
            )
    except IntegrityError:
        raise _Nothing("The job was put back in the database meanwhile.") from None
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
        raise _Refused("No copy to put back.")
    source = _regular_file(storage, item.source)
    if source is None or sha256_of(source) != item.source_sha256:
        raise _Refused(f"The copy at {item.source} changed since the check; check again.")
    with write_transaction(session):
        job = lock_job(session, item.job_id)
        if job.file_path != item.path:
            raise _Nothing("The job changed since the check.")
        _restore(session, storage, job, source, actor, now)
    _remove_copies(session, storage, item.job_id, [source])
    return f"Put back {item.path} from {item.source}."


def _restore(session: Session, storage: Storage, job: Job, source: Path, actor: Actor, now: datetime) -> None:
    """Under the job's row lock: place `source` where the row points (refusing to overwrite) and event it."""
    assert job.file_path is not None
    if _regular_file(storage, job.file_path) is not None:
        raise _Nothing(f"{job.file_path} is back already.")
    storage.place_new(source, job.file_path)
    origin = _relative(storage, source)
    _job_event(
        session,
        job,
        "restore_file",
        actor,
        now,
        file=_without_name(job.file_path, job.display_name),
        copy_from=_without_name(origin, job.display_name),
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
            raise _Nothing("The job changed since the check.")
        _require_row_inside(storage, job)
        existing = _regular_file(storage, item.path)
        data = storage.encode_sidecar(sidecar_record(job))
        if existing is not None and existing.read_bytes() == data:
            raise _Nothing("The sidecar matches the database already.")
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
            sidecar=_without_name(item.path, job.display_name),
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
            _require_row_inside(storage, job)
            current, target = job_folder(job), Status(job.status).folder
            if current is None or target is None or current == target:
                raise _Nothing("The job's files are in its status's folder already.")
            if _regular_file(storage, job.file_path or "") is None:
                raise _Refused(f"The job's file {job.file_path} is missing: put it back first.")
            files = storage.job_files(current, base_name(job))
            if any(path.is_symlink() for path in files):
                raise _Refused("A symbolic link is among the job's files; PrintLab never follows one.")
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
        _require_row_inside(storage, job)
        copy = _regular_file(storage, item.path)
        if copy is None:
            raise _Nothing("The copy is gone already.")
        if job_folder(job) == PurePosixPath(item.path).parent.as_posix():
            raise _Nothing("The job's files are in that folder now: it is not a stale copy any more.")
        deleted = _deleted_files(session, [job.id]).get(job.id, set())
        action, why, because = _stale_decision(storage, job, item.path, deleted)
        short = _without_name(item.path, job.display_name)
        if action == _Stale.RESTORE:
            _restore(session, storage, job, copy, actor, now)
            copy.unlink()  # after the placing: a crash in between leaves an identical stale copy
            return f"Put it back at {job.file_path}."
        if action == _Stale.REMOVE:
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
            to=_without_name(kept, job.display_name),
        )
        return f"Moved to {kept}."


def _orphan(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    path = _regular_file(storage, item.path)
    if path is None:
        raise _Nothing("The file is gone already.")
    sha256 = sha256_of(path)
    with write_transaction(session):
        _serialise_with_submissions(session, sha256)
        if _owned_by_a_job(session, path.name):
            raise _Nothing("A job owns this file now.")
        kept = _to_lost_and_found(storage, path, PurePosixPath(item.path).parent.as_posix())
        _log(session, actor, now, repair="orphan_to_lost_and_found", path=item.path, to=kept, sha256=sha256)
    return f"Moved to {kept}."


def _leftover(session: Session, storage: Storage, item: Item, actor: Actor, now: datetime) -> str:
    path = _regular_file(storage, item.path)
    if path is None:
        raise _Nothing("The upload is gone already.")
    if now - _mtime_utc(path) <= LEFTOVER_AGE:
        raise _Nothing("The upload was written to recently; it may still be arriving.")
    with write_transaction(session):
        kept = _to_lost_and_found(storage, path, TEMP_FOLDER.lstrip("."))
        _log(session, actor, now, repair="leftover_upload_to_lost_and_found", path=item.path, to=kept)
    return f"Moved to {kept}."


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
        if not target.exists() or (target.is_file() and _same_content(path, target)):
            storage.place_new(path, relative)
            path.unlink()
            return relative
    raise _Refused(f"{LOST_AND_FOUND}/{origin}/ has too many files named {path.name}.")


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
