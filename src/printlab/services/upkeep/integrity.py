"""Read-only integrity scan (SPEC §5): compares the job rows with the files under the storage root and reports."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Any, Literal

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Numeric, String
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import Job
from printlab.services.files.storage import (
    SIDECAR_SUFFIX,
    TEMP_FOLDER,
    LinkedPath,
    Storage,
    UnsafePath,
    is_being_written,
)
from printlab.services.jobs.records import every_job, job_folder, part_paths, sidecar_record

#: An upload still in the temporary folder after this long was abandoned (a crash, a dropped connection,
#: a killed server). A request writes its upload continuously and turns it into a job, or deletes it,
#: within seconds of the last byte, so an hour without a write is far beyond any live request.
LEFTOVER_AGE = timedelta(hours=1)
#: A sidecar is a few kilobytes; anything far bigger is not read into memory.
MAX_SIDECAR_BYTES = 1024 * 1024
#: Jobs are read in batches of this size, so a campus-sized table is never held in memory at once.
BATCH = 500
_ABSENT = object()
#: Job ids are uuid4 hex (domain.naming.new_job_id); a sidecar claiming anything else rebuilds nothing.
_JOB_ID = re.compile(r"[0-9a-f]{32}")
#: Never taken from a sidecar: a sidecar holds no confirm token (only its hash was ever stored, and
#: never in a file) and no dialog lock; a rebuilt job has neither.
_NOT_REBUILT = frozenset({"confirm_token", "locked_by", "locked_until"})


@dataclass(frozen=True)
class MissingFile:
    """The serious finding: a job's authoritative file (or one of its parts' files) or its sidecar is not
    where its row says."""

    job_id: str
    status: str
    kind: Literal["file", "sidecar"]
    path: str
    reason: (
        str  # "missing", "not a regular file", "outside the storage root", "a symbolic link (not followed)"
    )


@dataclass(frozen=True)
class Orphan:
    """A file in a status folder whose name belongs to no job."""

    path: str


@dataclass(frozen=True)
class StaleCopy:
    """One of a job's files outside the job's current folder, typically left by an interrupted move."""

    job_id: str
    path: str
    current_folder: str | None  # None when an admin deleted the job's files


@dataclass(frozen=True)
class Misplaced:
    """A job whose current folder is not the folder of its status."""

    job_id: str
    status: str
    folder: str
    expected_folder: str


@dataclass(frozen=True)
class SidecarMismatch:
    """A job's sidecar that would not rebuild its row: the differing columns, or unreadable."""

    job_id: str
    path: str
    fields: tuple[str, ...]
    unreadable: bool = False


@dataclass(frozen=True)
class MissingRow:
    """A sidecar whose job has no row (a lost database, or one restored from before the job): the
    row can be rebuilt from it. `files` are the job's files found in the status folders (the sidecar
    among them); `problem` says why this sidecar can't rebuild the row, None when it can."""

    job_id: str
    path: str
    status: str
    files: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True)
class LeftoverUpload:
    """A temporary upload older than LEFTOVER_AGE; younger ones may still be arriving."""

    path: str
    modified_at: datetime


@dataclass(frozen=True)
class UnsafeEntry:
    """A symbolic link in a status folder or the temporary folder, or a folder that leaves the root.
    Never followed."""

    path: str
    reason: str


@dataclass
class IntegrityReport:
    """Everything the scan found; `ok` when database and disk agree."""

    jobs_checked: int = 0
    files_checked: int = 0
    missing: list[MissingFile] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    stale_copies: list[StaleCopy] = field(default_factory=list)
    misplaced: list[Misplaced] = field(default_factory=list)
    sidecar_mismatches: list[SidecarMismatch] = field(default_factory=list)
    missing_rows: list[MissingRow] = field(default_factory=list)
    leftover_uploads: list[LeftoverUpload] = field(default_factory=list)
    unsafe: list[UnsafeEntry] = field(default_factory=list)

    def findings(self) -> Iterator[object]:
        """Every finding, the serious ones first."""
        yield from self.missing
        yield from self.missing_rows
        yield from self.sidecar_mismatches
        yield from self.misplaced
        yield from self.stale_copies
        yield from self.orphans
        yield from self.unsafe
        yield from self.leftover_uploads

    @property
    def ok(self) -> bool:
        return next(self.findings(), None) is None

    @property
    def serious(self) -> bool:
        """A job has lost a file: the one thing a crash must never cause."""
        return bool(self.missing)

    def for_job(self, job_id: str) -> list[object]:
        return [f for f in self.findings() if getattr(f, "job_id", None) == job_id]


@dataclass(frozen=True)
class _JobView:
    """What the folder walk needs to know about a job."""

    id: str
    base_name: str | None
    folder: str | None


@dataclass
class _JobFindings:
    missing: list[MissingFile] = field(default_factory=list)
    mismatches: list[SidecarMismatch] = field(default_factory=list)
    misplaced: list[Misplaced] = field(default_factory=list)


def scan(session: Session, storage: Storage, *, now: datetime | None = None) -> IntegrityReport:
    """Compare every job row with the storage root. Reads only: changes neither database nor files.

    Reads committed data through its own session on `session`'s connection source, so the caller's
    unit of work is untouched. Paths outside the root (absolute, '..', symlinks pointing out) are
    reported and never opened. A job that looks broken is read again before it is reported, so a
    move that commits while the scan runs is not mistaken for a lost file.
    """
    now = now or utcnow()
    report = IntegrityReport()
    views: dict[str, _JobView] = {}
    flagged: dict[str, _JobFindings] = {}
    # A session of its own: its rollbacks never touch the caller's work (a savepoint if the caller's
    # connection is mid-transaction, as in tests that wrap each test in one).
    reader = Session(bind=session.get_bind(), autoflush=False, join_transaction_mode="create_savepoint")
    with reader:
        for job in every_job(reader, batch=BATCH):
            report.jobs_checked += 1
            views[job.id] = _JobView(job.id, job.display_name, job_folder(job) if job.file_path else None)
            found = _check_job(storage, job)
            if found.missing or found.mismatches or found.misplaced:
                flagged[job.id] = found
        reader.rollback()  # a fresh read for the second look
        for job_id in sorted(flagged):
            job = reader.get(Job, job_id)
            if job is None:
                continue  # deleted meanwhile: nothing to report
            views[job.id] = _JobView(job.id, job.display_name, job_folder(job) if job.file_path else None)
            found = _check_job(storage, job)
            report.missing += found.missing
            report.sidecar_mismatches += found.mismatches
            report.misplaced += found.misplaced
        reader.rollback()
    _walk_status_folders(storage, views, report, now)
    _find_missing_rows(storage, set(views), report)
    _find_leftovers(storage, now, report)
    report.orphans.sort(key=lambda f: f.path)
    report.stale_copies.sort(key=lambda f: (f.job_id, f.path))
    report.unsafe.sort(key=lambda f: f.path)
    report.leftover_uploads.sort(key=lambda f: f.path)
    return report


def _check_job(storage: Storage, job: Job) -> _JobFindings:
    found = _JobFindings()
    status = job.status or ""
    expected_files: tuple[tuple[Literal["file", "sidecar"], str | None], ...] = (
        ("file", job.file_path),
        ("sidecar", job.metadata_path),
    )
    if job.file_path and job.parts:  # a job sent in parts: every part's file besides the main one
        expected_files += tuple(("file", path) for path in part_paths(job) if path != job.file_path)
    for kind, path in expected_files:
        if not path:
            continue  # an admin deleted the job's files (FileDeleted): nothing is expected on disk
        reason = _file_problem(storage, path)
        if reason:
            found.missing.append(MissingFile(job.id, status, kind, path, reason))
    if job.metadata_path and not any(m.kind == "sidecar" for m in found.missing):
        mismatch = _compare_sidecar(storage, job)
        if mismatch:
            found.mismatches.append(mismatch)
    folder = job_folder(job) if job.file_path else None
    try:
        expected = Status(status).folder
    except ValueError:
        expected = None
    if folder is not None and expected is not None and folder != expected:
        found.misplaced.append(Misplaced(job.id, status, folder, expected))
    return found


def _file_problem(storage: Storage, relative: str) -> str | None:
    """Why `relative` is not a usable file inside the root, or None when it is."""
    try:
        path = storage.resolve(relative)
    except LinkedPath:
        return "a symbolic link (not followed)"
    except UnsafePath:
        return "outside the storage root"
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    return None


def _compare_sidecar(storage: Storage, job: Job) -> SidecarMismatch | None:
    assert job.metadata_path is not None
    data = read_record(storage, job.metadata_path)  # its path was checked by _file_problem just before
    if data is None:
        return SidecarMismatch(job.id, job.metadata_path, (), unreadable=True)
    # The record as it would be written now, through JSON, so 42 and 42.0 or a tuple and a list agree.
    expected = json.loads(json.dumps(sidecar_record(job)))
    differing = {key for key, value in expected.items() if data.get(key, _ABSENT) != value}
    differing |= set(data) - set(expected) - {"sidecar_version"}
    if not differing:
        return None
    return SidecarMismatch(job.id, job.metadata_path, tuple(sorted(differing)))


def read_record(storage: Storage, relative: str) -> dict[str, Any] | None:
    """The JSON object in a sidecar, or None when it is unreadable, too large, not an object, or a
    path outside the root or a symbolic link (never followed)."""
    try:
        path = storage.resolve(relative)
        if path.is_symlink() or path.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        data: Any = json.loads(path.read_bytes())
    except (OSError, ValueError, UnsafePath):
        return None
    return data if isinstance(data, dict) else None


class UnrebuildableSidecar(ValueError):
    """A sidecar that can't rebuild its job's row; the message says why, for the report."""


def rebuild_values(storage: Storage, path: str, record: dict[str, Any]) -> dict[str, Any]:
    """The job row the sidecar at `path` describes, as column values (no confirm token, no lock).

    Every value is checked against its column, and the row's paths must stay inside the root and
    name this very sidecar. Raises UnrebuildableSidecar saying why not.
    """
    job_id = record.get("id")
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise UnrebuildableSidecar("it names no valid job id")
    values: dict[str, Any] = {}
    for column in Job.__table__.columns:
        if column.key in _NOT_REBUILT or column.key not in record:
            continue  # a column newer than the sidecar takes its default
        values[column.key] = _column_value(column, record[column.key])
    try:
        Status(values.get("status"))
    except ValueError:
        raise UnrebuildableSidecar(f"its status {values.get('status')!r} is not one of PrintLab's") from None
    display_name = values.get("display_name")
    name = PurePosixPath(path).name
    if not (
        isinstance(display_name, str)
        and display_name
        and len(name) > len(display_name)
        and name.startswith(display_name)
        and not name[len(display_name)].isalnum()
    ):
        raise UnrebuildableSidecar("its file name does not start with the job's stored name")
    for key in ("file_path", "metadata_path"):
        if not values.get(key):
            raise UnrebuildableSidecar(f"it has no {key.replace('_', ' ')}")
        try:
            storage.resolve(values[key])
        except UnsafePath:
            raise UnrebuildableSidecar(f"its {key.replace('_', ' ')} leaves the storage root") from None
    if values["metadata_path"] != path:
        raise UnrebuildableSidecar(f"it says it is at {values['metadata_path']}, not here")
    rebuild_parts(record)
    return values


_SHA256 = re.compile(r"[0-9a-f]{64}")


def rebuild_parts(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The `job_part` rows a sidecar lists (none for a job of one file printed once), as column
    values. Raises UnrebuildableSidecar when a part isn't what PrintLab writes."""
    parts = record.get("parts")
    if parts is None:
        return []
    wrong = UnrebuildableSidecar("its list of parts is not valid")
    if not isinstance(parts, list) or not 1 <= len(parts) <= 10:
        raise wrong
    rows = []
    for expected, part in enumerate(parts, start=1):
        if not isinstance(part, dict):
            raise wrong
        number, name, sha, size, copies = (
            part.get(key) for key in ("number", "original_filename", "file_hash", "size_bytes", "copies")
        )
        analysis = part.get("analysis")
        if (
            number != expected
            or isinstance(size, bool)
            or isinstance(copies, bool)
            or not isinstance(name, str)
            or not 0 < len(name) <= 256
            or not isinstance(sha, str)
            or not _SHA256.fullmatch(sha)
            or not isinstance(size, int)
            or size < 0
            or not isinstance(copies, int)
            or not 1 <= copies <= 20
            or not (analysis is None or isinstance(analysis, dict))
        ):
            raise wrong
        rows.append(
            {"number": number, "original_filename": name, "file_hash": sha, "size_bytes": size,
             "copies": copies, "results": analysis}
        )  # fmt: skip
    return rows


def _column_value(column: Any, value: Any) -> Any:
    """A sidecar's JSON value as the column stores it; raises UnrebuildableSidecar for a wrong type."""
    kind = column.type
    wrong = UnrebuildableSidecar(f"its {column.key} is not a valid value")
    if value is None:
        if not column.nullable and not column.primary_key:
            raise wrong
        return None
    if isinstance(kind, JSON):
        return value
    if isinstance(kind, DateTime):
        if not isinstance(value, str):
            raise wrong
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise wrong from None
        if moment.tzinfo is not None:
            raise wrong  # the database stores naive UTC
        return moment
    if isinstance(kind, Boolean):
        if not isinstance(value, bool):
            raise wrong
        return value
    if isinstance(value, bool):
        raise wrong  # JSON true is not a number or a text
    if isinstance(kind, Float):
        if not isinstance(value, int | float):
            raise wrong
        return float(value)
    if isinstance(kind, Numeric):
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise wrong from None
        if not number.is_finite():
            raise wrong
        return number
    if isinstance(kind, Integer):
        if not isinstance(value, int):
            raise wrong
        return value
    if isinstance(kind, String):
        if not isinstance(value, str) or (kind.length is not None and len(value) > kind.length):
            raise wrong
        return value
    raise wrong


def _find_missing_rows(storage: Storage, known_ids: set[str], report: IntegrityReport) -> None:
    """Turn orphan sidecars of jobs that have no row into MissingRow findings, with their files.

    When an interrupted move left the job's sidecar in two folders, the newest one that can rebuild
    the row is chosen; the other folder's files become stale copies once the row exists.
    """
    found: dict[str, list[tuple[str, dict[str, Any], str | None]]] = {}
    for orphan in report.orphans:
        if not orphan.path.endswith(SIDECAR_SUFFIX):
            continue
        record = read_record(storage, orphan.path)
        job_id = record.get("id") if record else None
        if record is None or not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            continue  # not a sidecar PrintLab can read: an ordinary orphan
        if job_id in known_ids:
            continue  # the job exists under another name: this file is an orphan
        try:
            rebuild_values(storage, orphan.path, record)
            problem = None
        except UnrebuildableSidecar as exc:
            problem = f"It can't rebuild the job: {exc}."
        found.setdefault(job_id, []).append((orphan.path, record, problem))
    if not found:
        return
    chosen: dict[str, tuple[str, dict[str, Any], str | None]] = {}
    for job_id, sidecars in found.items():
        chosen[job_id] = max(sidecars, key=_sidecar_preference)
    bases = {
        record["display_name"]: _JobView(job_id, record["display_name"], None)
        for job_id, (_path, record, _problem) in chosen.items()
        if isinstance(record.get("display_name"), str) and record["display_name"]
    }
    claimed: dict[str, list[str]] = {job_id: [] for job_id in chosen}
    remaining: list[Orphan] = []
    sidecar_owner = {path: job_id for job_id, sidecars in found.items() for path, _r, _p in sidecars}
    for orphan in report.orphans:
        owner = _owner(PurePosixPath(orphan.path).name, bases)
        job_id = owner.id if owner is not None else sidecar_owner.get(orphan.path)
        if job_id is None:
            remaining.append(orphan)
        else:
            claimed[job_id].append(orphan.path)
    report.orphans = remaining
    for job_id, (path, record, problem) in sorted(chosen.items()):
        status = record.get("status")
        report.missing_rows.append(
            MissingRow(
                job_id, path, status if isinstance(status, str) else "", tuple(claimed[job_id]), problem
            )
        )


def _sidecar_preference(candidate: tuple[str, dict[str, Any], str | None]) -> tuple[bool, str, bool, str]:
    """Rebuildable first, then the newest row version, then one in its own status's folder."""
    path, record, problem = candidate
    updated = record.get("updated_at")
    try:
        version = (
            datetime.fromisoformat(updated).isoformat(timespec="microseconds")
            if isinstance(updated, str)
            else ""
        )
    except ValueError:
        version = ""
    try:
        in_place = Status(record.get("status")).folder == PurePosixPath(path).parent.as_posix()
    except ValueError:
        in_place = False
    return (problem is None, version, in_place, path)


def _owner(name: str, by_base: dict[str, _JobView]) -> _JobView | None:
    """The job a file name belongs to: its stored base name followed by a non-alphanumeric character.

    The same rule as Storage.job_files, so '..._a1b2c37.stl' is never taken for '..._a1b2c3'.
    """
    owner = None
    for index, char in enumerate(name):
        if index and not char.isalnum() and name[:index] in by_base:
            owner = by_base[name[:index]]  # the longest match wins
    return owner


def _walk_status_folders(
    storage: Storage, views: dict[str, _JobView], report: IntegrityReport, now: datetime
) -> None:
    by_base = {v.base_name: v for v in views.values() if v.base_name}
    for folder in STATUS_FOLDERS:
        try:
            directory = storage.resolve(folder)
        except UnsafePath:
            report.unsafe.append(UnsafeEntry(folder, "status folder leaves the storage root"))
            continue
        if not directory.is_dir():
            continue
        with os.scandir(directory) as entries:
            for entry in entries:
                relative = f"{folder}/{entry.name}"
                if entry.is_symlink():
                    report.unsafe.append(UnsafeEntry(relative, "symbolic link (not followed)"))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue  # sub-folders are not the lab's; the workflow never creates them
                report.files_checked += 1
                if is_being_written(entry.name) and now - _modified(entry) <= LEFTOVER_AGE:
                    continue  # a sidecar being rewritten right now; a crash's leftover is reported later
                owner = _owner(entry.name, by_base)
                if owner is None:
                    report.orphans.append(Orphan(relative))
                elif owner.folder != folder:
                    report.stale_copies.append(StaleCopy(owner.id, relative, owner.folder))


def _modified(entry: os.DirEntry[str]) -> datetime:
    """When a file was last written, as naive UTC like every time in the lab's database."""
    return datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC).replace(tzinfo=None)


def _find_leftovers(storage: Storage, now: datetime, report: IntegrityReport) -> None:
    try:
        directory = storage.resolve(TEMP_FOLDER)
    except UnsafePath:
        report.unsafe.append(UnsafeEntry(TEMP_FOLDER, "temporary folder leaves the storage root"))
        return
    if not directory.is_dir():
        return
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_symlink():
                report.unsafe.append(
                    UnsafeEntry(f"{TEMP_FOLDER}/{entry.name}", "symbolic link (not followed)")
                )
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            modified = _modified(entry)
            if now - modified > LEFTOVER_AGE:
                report.leftover_uploads.append(LeftoverUpload(f"{TEMP_FOLDER}/{entry.name}", modified))
