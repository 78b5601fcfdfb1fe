"""Read-only integrity scan (SPEC §5): compares the job rows with the files under the storage root and reports."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from printlab.clock import utcnow
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import Job
from printlab.services.jobs import job_folder, sidecar_record
from printlab.services.storage import TEMP_FOLDER, Storage, UnsafePath

#: An upload still in the temporary folder after this long was abandoned (a crash, a dropped connection).
LEFTOVER_AGE = timedelta(days=1)
#: A sidecar is a few kilobytes; anything far bigger is not read into memory.
MAX_SIDECAR_BYTES = 1024 * 1024
#: Jobs are read in batches of this size, so a campus-sized table is never held in memory at once.
BATCH = 500
_ABSENT = object()


@dataclass(frozen=True)
class MissingFile:
    """The serious finding: a job's authoritative file or sidecar is not where its row says."""

    job_id: str
    status: str
    kind: Literal["file", "sidecar"]
    path: str
    reason: str  # "missing", "not a regular file", "outside the storage root"


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
class LeftoverUpload:
    """A temporary upload older than LEFTOVER_AGE; younger ones may still be arriving."""

    path: str
    modified_at: datetime


@dataclass(frozen=True)
class UnsafeEntry:
    """A symbolic link in a status folder, or a folder that leaves the root. Never followed."""

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
    leftover_uploads: list[LeftoverUpload] = field(default_factory=list)
    unsafe: list[UnsafeEntry] = field(default_factory=list)

    def findings(self) -> Iterator[object]:
        """Every finding, the serious ones first."""
        yield from self.missing
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
        for job in _all_jobs(reader):
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
    _walk_status_folders(storage, views, report)
    _find_leftovers(storage, now, report)
    report.orphans.sort(key=lambda f: f.path)
    report.stale_copies.sort(key=lambda f: (f.job_id, f.path))
    report.unsafe.sort(key=lambda f: f.path)
    report.leftover_uploads.sort(key=lambda f: f.path)
    return report


def _all_jobs(reader: Session) -> Iterator[Job]:
    """Every job, in id order, a batch at a time (keyset paging; the batch is dropped after use)."""
    last = ""
    while True:
        batch = reader.scalars(
            # the analysis is part of the sidecar record: load it with the batch, not once per job
            select(Job).where(Job.id > last).order_by(Job.id).limit(BATCH).options(selectinload(Job.analysis))
        ).all()
        yield from batch
        if len(batch) < BATCH:
            return
        last = batch[-1].id
        reader.expunge_all()


def _check_job(storage: Storage, job: Job) -> _JobFindings:
    found = _JobFindings()
    status = job.status or ""
    expected_files: tuple[tuple[Literal["file", "sidecar"], str | None], ...] = (
        ("file", job.file_path),
        ("sidecar", job.metadata_path),
    )
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
    except UnsafePath:
        return "outside the storage root"
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    return None


def _compare_sidecar(storage: Storage, job: Job) -> SidecarMismatch | None:
    assert job.metadata_path is not None
    path = storage.resolve(job.metadata_path)  # checked by _file_problem just before
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            raise ValueError("too large")
        data: Any = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return SidecarMismatch(job.id, job.metadata_path, (), unreadable=True)
    if not isinstance(data, dict):
        return SidecarMismatch(job.id, job.metadata_path, (), unreadable=True)
    # The record as it would be written now, through JSON, so 42 and 42.0 or a tuple and a list agree.
    expected = json.loads(json.dumps(sidecar_record(job)))
    differing = {key for key, value in expected.items() if data.get(key, _ABSENT) != value}
    differing |= set(data) - set(expected) - {"sidecar_version"}
    if not differing:
        return None
    return SidecarMismatch(job.id, job.metadata_path, tuple(sorted(differing)))


def _owner(name: str, by_base: dict[str, _JobView]) -> _JobView | None:
    """The job a file name belongs to: its stored base name followed by a non-alphanumeric character.

    The same rule as Storage.job_files, so '..._a1b2c37.stl' is never taken for '..._a1b2c3'.
    """
    owner = None
    for index, char in enumerate(name):
        if index and not char.isalnum() and name[:index] in by_base:
            owner = by_base[name[:index]]  # the longest match wins
    return owner


def _walk_status_folders(storage: Storage, views: dict[str, _JobView], report: IntegrityReport) -> None:
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
                owner = _owner(entry.name, by_base)
                if owner is None:
                    report.orphans.append(Orphan(relative))
                elif owner.folder != folder:
                    report.stale_copies.append(StaleCopy(owner.id, relative, owner.folder))


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
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                continue
            modified = datetime.fromtimestamp(entry.stat(follow_symlinks=False).st_mtime, UTC)
            modified = modified.replace(tzinfo=None)
            if now - modified > LEFTOVER_AGE:
                report.leftover_uploads.append(LeftoverUpload(f"{TEMP_FOLDER}/{entry.name}", modified))
