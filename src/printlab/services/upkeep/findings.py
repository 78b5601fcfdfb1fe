"""The integrity check as findings (SPEC §5): each problem the scan found, with the repair it would get,
decided from what is on disk now."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import to_lab_time
from printlab.domain.naming import extension_of
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import Event, Job
from printlab.services.files.storage import TEMP_FOLDER, Storage, StorageError, sha256_of
from printlab.services.jobs.records import job_folder, parts_of
from printlab.services.lab.catalog import load_catalog
from printlab.services.upkeep.integrity import (
    IntegrityReport,
    LeftoverUpload,
    Misplaced,
    MissingFile,
    MissingRow,
    Orphan,
    SidecarMismatch,
    StaleCopy,
    UnsafeEntry,
    read_record,
    scan,
)

log = logging.getLogger(__name__)

#: Where repairs put files they may not delete (a student's file is never deleted), under the root.
LOST_AND_FOUND = "Lost+Found"
#: What a person calls the job row's columns, for a sidecar that disagrees with the database.
FIELD_WORDS = {
    "status": "its status",
    "file_path": "where its file is",
    "metadata_path": "where its sidecar is",
    "notes": "the staff notes",
    "staff_viewed_at": "whether staff have looked at it",
    "last_updated_by": "who changed it last",
    "updated_at": "when it last changed",
    "confirm_token_expires": "when its quote link expires",
    "confirmation_last_sent_at": "when the quote was last emailed",
    "is_confirmation_expired": "whether its quote link expired",
    "student_confirmed": "whether the student confirmed",
    "student_confirmed_at": "when the student confirmed",
    "cost_usd": "the quote",
    "weight_g": "the weight",
    "time_hours": "the print time",
    "reject_reasons": "the rejection reasons",
    "analysis": "the model check",
}


def field_words(fields: Iterable[str]) -> str:
    """The differing columns in words: "the staff notes and who changed it last"."""
    words = [FIELD_WORDS.get(name, name.replace("_", " ")) for name in fields]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


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


class RepairRefused(Exception):
    """A repair that would not be safe as things stand now; the message says why."""


class NothingToDo(Exception):
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
        deleted = deleted_files(reader, [s.job_id for s in report.stale_copies if s.current_folder is None])
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
                _, why, _ = stale_decision(storage, job, stale.path, deleted.get(job.id, set()))
                items.append(Item(Kind.STALE_COPY, stale.path, job.id, _stale_problem(stale), why))
        zone = load_catalog(reader).lab.time_zone if report.leftover_uploads else "UTC"
        leftovers = [_leftover_item(reader, storage, leftover, zone) for leftover in report.leftover_uploads]
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
    items += leftovers
    items += [_unsafe_item(entry) for entry in report.unsafe]
    order = list(Kind)
    items.sort(key=lambda item: (order.index(item.kind), item.path))
    return Check(report, items, _count_files(storage, LOST_AND_FOUND))


_OUTSIDE = "outside the storage root"
_SUSPECT = "The job's row points outside the storage root: correct the row by hand first."


def require_row_inside(storage: Storage, job: Job) -> None:
    """Refuse to act on a job whose row points out of the root (see `check`)."""
    for path in (job.file_path, job.metadata_path):
        if path:
            try:
                storage.resolve(path)
            except StorageError:
                raise RepairRefused(_SUSPECT) from None


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


def deleted_files(session: Session, job_ids: Iterable[str]) -> dict[str, set[str]]:
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
    part = next((p for p in parts_of(job) if p.stored_name == PurePosixPath(missing.path).name), None)
    if part is not None and missing.path != job.file_path:
        what = f"Part {part.number} of the job"
        problem = f"{what} ({part.original_filename}) is {missing.reason}."
    source, sha256, explanation = _pick_copy(
        storage, job, found, part.file_hash if part is not None else None
    )
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
        # Every change PrintLab makes rewrites the sidecar, so this one came from outside its work:
        # a row or file edited by hand, or a change stopped between writing the file and committing.
        problem = (
            f"The job's sidecar (the copy of its record kept beside its files) disagrees with the database "
            f"about {field_words(mismatch.fields)}. PrintLab keeps them in step, so one of them was changed "
            "by hand or a change was cut off halfway."
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


def _leftover_item(session: Session, storage: Storage, leftover: LeftoverUpload, zone: str) -> Item:
    _, repair, _ = leftover_decision(session, storage, leftover.path)
    written = to_lab_time(leftover.modified_at, zone)
    return Item(
        Kind.LEFTOVER_UPLOAD,
        leftover.path,
        None,
        f"An upload that never became a job (last written {written:%d %b %Y %H:%M %Z}).",
        repair,
    )


#: The names PrintLab gives what it writes into the temporary folder (Storage.receive, check_writable).
_OWN_TEMPORARY = re.compile(r"upload-[0-9a-f]{16}\.part|\.probe-[0-9a-f]{8}")


def leftover_decision(session: Session, storage: Storage, relative: str) -> tuple[bool, str, str | None]:
    """What happens to an abandoned upload: removed (True) when it is one PrintLab wrote itself and
    no job could need it, otherwise kept in Lost+Found/. A partial upload is never a student's
    complete file; but bytes that are a job's recorded upload, while that job's file is not where its
    row says, may be the only copy left, and a file PrintLab didn't name isn't its to delete.

    Returns the decision, what the repair does in words, and the file's SHA-256 (None when unread).
    """
    keep = f"Move it to {_LEFTOVER_FOLDER}/"
    if not _OWN_TEMPORARY.fullmatch(PurePosixPath(relative).name):
        return False, f"{keep} (PrintLab didn't write it, so it is never deleted).", None
    try:
        sha256 = sha256_of(storage.resolve(relative))
    except (OSError, StorageError):
        return False, f"{keep}.", None
    for job in session.scalars(select(Job).where(Job.file_hash == sha256)):
        if job.file_path and not _is_regular_file(storage, job.file_path):
            return (
                False,
                f"{keep}: it is the upload of job {job.id[:6]}, whose file is not where its row says "
                "(it may be the only copy).",
                sha256,
            )
    return True, "Remove it: a partial upload that never became a job (nothing else needs it).", sha256


def _is_regular_file(storage: Storage, relative: str) -> bool:
    try:
        path = storage.resolve(relative)
    except StorageError:
        return False
    return path.is_file() and not path.is_symlink()


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
        paths.sort(key=lambda p: (rank.get(relative_to_root(storage, p).split("/")[0], len(rank)), str(p)))
    return found


def _pick_copy(
    storage: Storage, job: Job, copies: list[Path], part_hash: str | None = None
) -> tuple[str | None, str | None, str]:
    """The copy to put back for a job's missing file: (path, SHA-256, what the repair does) or (None,
    None, why none is safe). The upload (or a part, `part_hash`) must match the hash taken when it
    arrived; a slicer file (no hash known) only when every copy found is the same."""
    if not copies:
        return None, None, "No copy was found anywhere under the storage root: restore it from a backup."
    hashes = {path: sha256_of(path) for path in copies}
    named = ", ".join(relative_to_root(storage, p) for p in copies)
    if part_hash and not any(hashes[path] == part_hash for path in copies):
        return (
            None,
            None,
            f"Copies were found ({named}), but none is the file the student uploaded: check by hand.",
        )
    expected = part_hash or job.file_hash
    if expected:
        for path in copies:
            if hashes[path] == expected:
                where = relative_to_root(storage, path)
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
    where = relative_to_root(storage, copies[0])
    return where, hashes[copies[0]], f"Put back the copy at {where}."


class StaleDecision(StrEnum):
    REMOVE = "remove"
    RESTORE = "restore"
    LOST = "lost"


def stale_decision(
    storage: Storage, job: Job, relative: str, deleted: set[str]
) -> tuple[StaleDecision, str, str]:
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
        if without_name(relative, job.display_name) in deleted:
            why = "Remove it: an admin deleted this job's files (FileDeleted); it was left behind."
            return StaleDecision.REMOVE, why, "deleted by an admin"
        return (
            StaleDecision.LOST,
            f"{lost}: the job has no files on the storage any more.",
            "the job has no files",
        )
    counterpart = f"{folder}/{name}"
    try:
        copy, real = storage.resolve(relative), storage.resolve(counterpart)
    except StorageError:
        return StaleDecision.LOST, f"{lost}.", "unsafe path"
    is_sidecar = bool(job.metadata_path) and counterpart == job.metadata_path
    if real.is_file() and not real.is_symlink():
        if same_content(copy, real):
            why = f"Remove it: the same file is where the job's row points ({counterpart})."
            return StaleDecision.REMOVE, why, f"identical to the job's file in {folder}"
        if is_sidecar and _older_snapshot(storage, relative, job):
            why = "Remove it: an older copy of the job's sidecar (the database is newer)."
            return StaleDecision.REMOVE, why, "an older sidecar of the job"
        why = f"{lost}: it differs from the job's {counterpart}."
        return StaleDecision.LOST, why, f"differs from the job's file in {folder}"
    if counterpart == job.file_path:
        why = f"Put it back at {counterpart}, where the job's row points."
        return StaleDecision.RESTORE, why, "the job's missing file"
    return StaleDecision.LOST, f"{lost}: the job has no such file in {folder}/.", f"no such file in {folder}"


def same_content(one: Path, other: Path) -> bool:
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


def without_name(relative: str, display_name: str | None) -> str:
    """'Pending/JaneDoe_..._a1b2c3.stl' → 'Pending/….stl', as FileDeleted events and logs name files."""
    folder, _, name = relative.rpartition("/")
    return f"{folder}/…{name.removeprefix(display_name)}" if display_name else relative


def relative_to_root(storage: Storage, path: Path) -> str:
    return path.relative_to(storage.root).as_posix()


def _count_files(storage: Storage, folder: str) -> int:
    base = storage.root / folder
    if base.is_symlink() or not base.is_dir():
        return 0
    return sum(len(files) for _, _, files in os.walk(base, followlinks=False))
