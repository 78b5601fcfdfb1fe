"""Taking a backup: a consistent snapshot of the database and the storage tree, with a SHA-256 manifest."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from printlab import __version__
from printlab.db import check_database, make_engine, safe_url, session_factory, write_transaction
from printlab.domain.statuses import STATUS_FOLDERS
from printlab.models import Job
from printlab.services.errors import NotFound
from printlab.services.files.storage import CHUNK, Storage, UnsafePath
from printlab.services.jobs.records import every_job, lock_job, sidecar_record
from printlab.services.upkeep.backup_folder import (
    BATCH,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MAX_SIDECAR_BYTES,
    PG_TIMEOUT,
    POSTGRES_FILE,
    SQLITE_FILE,
    STORAGE_FOLDER,
    STORAGE_TEMP,
    BackupError,
    BackupResult,
    FileEntry,
    conninfo,
    hash_file,
    os_reason,
    run_pg_tool,
    sqlite_path,
    sqlite_reader,
    sqlite_uri,
    table_counts,
    tool,
    utc_timestamp,
    write_durably,
)


def _checkpoint(step: str) -> None:
    """A named point in a backup. Does nothing; tests patch it to change the lab right there."""


# -- backup ------------------------------------------------------------------------------------


def backup(
    database_url: str, storage: Storage, directory: Path | str, *, pg_timeout: float = PG_TIMEOUT
) -> BackupResult:
    """Snapshot the database, then copy the storage tree, into `directory` (new or empty).

    PrintLab keeps running. The database snapshot is taken first; the files are copied afterwards
    and then reconciled with the snapshot: a job's file that moved meanwhile is copied from its new
    folder to where the snapshot's row points, and a sidecar rewritten meanwhile is written again
    from the snapshot's row. manifest.json, written last, lists every file with size and SHA-256;
    a folder without it is not a backup. On failure the folder is emptied again.

    Raises BackupError (non-empty folder, pg_dump missing or failing, unreadable storage) and
    ConfigError (database unreachable).
    """
    target = Path(directory).expanduser().resolve()
    created = _prepare_backup_folder(target, storage.root)
    started = utc_timestamp()
    engine = make_engine(database_url)
    try:
        check_database(engine)
        backend = engine.dialect.name
        database_file = SQLITE_FILE if backend == "sqlite" else POSTGRES_FILE
        with _database_snapshot(engine, target / database_file, pg_timeout) as snapshot:
            snapshot_at = utc_timestamp()
            _checkpoint("database-snapshot-taken")
            tree = _BackupTree(storage, target / STORAGE_FOLDER)
            tree.copy_tree()
            reconciled = _reconcile(snapshot, storage, tree, engine)
            revision = MigrationContext.configure(snapshot.connection()).get_current_revision()
            tables = table_counts(snapshot.connection())
        database_entry = hash_file(target / database_file)
        files = [{"path": database_file, "size": database_entry.size, "sha256": database_entry.sha256}]
        for relative, entry in sorted(tree.files.items()):
            files.append(
                {
                    "path": f"{STORAGE_FOLDER}/{relative}",
                    "size": entry.size,
                    "sha256": entry.sha256,
                    "mtime_ns": entry.mtime_ns,  # type: ignore[dict-item]
                }
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "printlab_version": __version__,
            "backend": backend,
            "database": safe_url(database_url),
            "storage_root": str(storage.root),
            "schema_revision": revision,
            "started_at": started,
            "snapshot_at": snapshot_at,
            "finished_at": utc_timestamp(),
            "counts": {"jobs": tables.get("job", 0), "events": tables.get("event", 0)},
            "tables": tables,
            "files": files,
            "directories": [f"{STORAGE_FOLDER}/{d}" for d in sorted(tree.directories)],
            "symlinks": tree.symlinks,
            "skipped": tree.skipped,
            "vanished_while_copying": sorted(tree.vanished),
            "reconciled": reconciled,
        }
        write_durably(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    except BaseException as exc:
        _empty_folder(target, remove=created)
        if isinstance(exc, OSError):
            raise BackupError(f"backup to {target} failed: {os_reason(exc)}") from None
        raise
    finally:
        engine.dispose()
    return BackupResult(
        directory=target,
        backend=backend,
        schema_revision=revision,
        tables=tables,
        database_file=database_file,
        database_bytes=database_entry.size,
        files=len(tree.files),
        storage_bytes=sum(e.size for e in tree.files.values()),
        symlinks=tree.symlinks,
        skipped=tree.skipped,
        reconciled=reconciled,
    )


def _prepare_backup_folder(target: Path, storage_root: Path) -> bool:
    """Check the folder can take a backup and create it; True when it did not exist before."""
    if target == storage_root or storage_root in target.parents:
        raise BackupError(f"backup folder {target} is inside the storage root {storage_root}")
    if not storage_root.is_dir():
        raise BackupError(f"storage root {storage_root} does not exist")
    if target.exists() and not target.is_dir():
        raise BackupError(f"backup folder {target} is a file")
    if target.is_dir() and any(target.iterdir()):
        raise BackupError(f"backup folder {target} is not empty; give a new or empty folder")
    if target.is_dir():
        return False
    try:
        # Private: a backup holds the students' names and email addresses.
        target.mkdir(mode=0o700, parents=True)
    except OSError as exc:
        raise BackupError(f"can't create backup folder {target}: {os_reason(exc)}") from None
    return True


def _empty_folder(target: Path, *, remove: bool) -> None:
    """Remove what a failed backup wrote (the folder was empty when it started), and the folder if it made it."""
    if not target.is_dir():
        return
    for child in target.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if remove:
        target.rmdir()


@contextmanager
def _database_snapshot(engine: Engine, target: Path, pg_timeout: float) -> Iterator[Session]:
    """Write the database snapshot to `target`, then yield a read-only session on exactly that snapshot."""
    if engine.dialect.name == "sqlite":
        with _sqlite_snapshot(engine, target) as session:
            yield session
    else:
        with _postgres_snapshot(engine, target, pg_timeout) as session:
            yield session


@contextmanager
def _sqlite_snapshot(engine: Engine, target: Path) -> Iterator[Session]:
    source = sqlite_path(str(engine.url))
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    try:
        # mode=rw: never create an empty database where the configured one is missing.
        with (
            closing(sqlite3.connect(sqlite_uri(source, "rw"), uri=True, timeout=30)) as live,
            closing(sqlite3.connect(target)) as copy,
        ):
            # The online backup API; pages=-1 copies everything in one step under one read
            # transaction, so writers (WAL) carry on and the copy is one committed state.
            live.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise BackupError(f"the SQLite snapshot failed its check: {check}")
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite backup of {source} failed: {exc}") from None
    reader = sqlite_reader(target)
    try:
        with Session(bind=reader) as session:
            yield session
    finally:
        reader.dispose()


@contextmanager
def _postgres_snapshot(engine: Engine, target: Path, timeout: float) -> Iterator[Session]:
    pg_dump = tool("pg_dump")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            # pg_dump imports this transaction's snapshot, so the dump and everything read below
            # (counts, rows the storage copy is checked against) are the same committed state.
            snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            run_pg_tool(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    "--no-password",
                    f"--file={target}",
                    f"--dbname={conninfo(engine)}",
                ],
                engine,
                timeout,
                "pg_dump",
            )
            with Session(bind=connection) as session:
                yield session


# -- the storage copy --------------------------------------------------------------------------


class _BackupTree:
    """The storage tree copied file by file into the backup, with what was found on the way."""

    def __init__(self, storage: Storage, target: Path):
        self.storage = storage
        self.target = target
        self.files: dict[str, FileEntry] = {}
        self.directories: set[str] = set()
        self.symlinks: list[dict[str, str]] = []
        self.skipped: list[dict[str, str]] = []
        self.vanished: list[str] = []

    def copy_tree(self) -> None:
        self.target.mkdir()
        self._walk("")

    def _walk(self, folder: str) -> None:
        try:
            with os.scandir(self.storage.root / folder) as scanned:
                entries = sorted(scanned, key=lambda e: e.name)
        except FileNotFoundError:
            self.vanished.append(folder)
            return
        for entry in entries:
            relative = f"{folder}/{entry.name}" if folder else entry.name
            if not folder and entry.name.startswith("."):
                # .incoming holds uploads still arriving; set-aside folders are not the lab's.
                self.skipped.append({"path": relative, "reason": "hidden folder at the top of the root"})
                continue
            try:
                if entry.is_symlink():
                    # Recorded, never followed: a link may point anywhere.
                    self.symlinks.append({"path": relative, "target": os.readlink(entry.path)})
                elif entry.is_dir(follow_symlinks=False):
                    self.directories.add(relative)
                    (self.target / relative).mkdir()
                    self._walk(relative)
                elif not entry.is_file(follow_symlinks=False):
                    self.skipped.append({"path": relative, "reason": "not a regular file"})
                elif STORAGE_TEMP.match(entry.name):
                    self.skipped.append({"path": relative, "reason": "temporary file of a write in progress"})
                else:
                    self.copy_file(relative, Path(entry.path))
            except FileNotFoundError:
                self.vanished.append(relative)  # moved or removed while we looked

    def copy_file(self, relative: str, source: Path, *, replace: bool = False) -> FileEntry:
        """Copy `source` (never following a link) to `relative` in the backup, hashing on the way.

        Raises FileNotFoundError when the source is gone (a move finished meanwhile).
        """
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            descriptor = os.open(source, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # replaced by a symbolic link since it was listed
                raise FileNotFoundError(f"{source} is a symbolic link now") from None
            raise
        with os.fdopen(descriptor, "rb") as reader:
            status = os.fstat(reader.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise FileNotFoundError(f"{source} is not a regular file any more")
            destination = self.target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            temp = destination.with_name(f".{destination.name}.copying")
            digest, size = hashlib.sha256(), 0
            with open(temp, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
        os.utime(temp, ns=(status.st_atime_ns, status.st_mtime_ns))
        if not replace and destination.exists():
            temp.unlink()
            raise BackupError(f"{relative} was copied twice into the backup")
        os.replace(temp, destination)
        entry = FileEntry(size=size, sha256=digest.hexdigest(), mtime_ns=status.st_mtime_ns)
        self.files[relative] = entry
        return entry

    def write_file(self, relative: str, data: bytes) -> None:
        destination = self.target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        write_durably(destination, data)
        mtime_ns = destination.stat().st_mtime_ns
        self.files[relative] = FileEntry(len(data), hashlib.sha256(data).hexdigest(), mtime_ns)


def _reconcile(
    snapshot: Session, storage: Storage, tree: _BackupTree, engine: Engine
) -> list[dict[str, str]]:
    """Make the copied tree hold what the snapshot's rows point to; returns what was done, per file.

    Files moved after the snapshot (a job approved mid-backup) are copied from their new folder to
    the snapshot's. Sidecars that disagree with the snapshot's row are settled under the job's row
    lock in the live database: rewritten from the snapshot when the job changed since, kept as found
    when it did not (a disagreement the integrity check should go on reporting).
    """
    notes: list[dict[str, str]] = []
    unsettled: list[str] = []
    for job in every_job(snapshot, batch=BATCH):
        if job.file_path and _safe_relative(storage, job.file_path) not in tree.files:
            notes += _relocate(job, storage, tree)
        if job.metadata_path and not _sidecar_agrees(tree, storage, job):
            unsettled.append(job.id)
    if unsettled:
        live = session_factory(engine)()
        try:
            for job_id in unsettled:
                snapshot_job = snapshot.get(Job, job_id)
                assert snapshot_job is not None
                notes.append(_settle_sidecar(snapshot_job, live, storage, tree))
        finally:
            live.close()
    return notes


def _safe_relative(storage: Storage, relative: str) -> str | None:
    """The normalised root-relative path, or None for one that would leave the root."""
    try:
        storage.resolve(relative)
    except UnsafePath:
        return None
    return PurePosixPath(relative).as_posix()


def _relocate(job: Job, storage: Storage, tree: _BackupTree) -> list[dict[str, str]]:
    """Copy a job's files into its snapshot folder from wherever they are now."""
    assert job.file_path is not None
    wanted = _safe_relative(storage, job.file_path)
    if wanted is None:
        return [_note(job, job.file_path, "not copied: the path leaves the storage root")]
    home, name = PurePosixPath(wanted).parent.as_posix(), PurePosixPath(wanted).name
    sidecar = PurePosixPath(job.metadata_path).name if job.metadata_path else None
    for _attempt in range(3):  # a file can move again while we look; look again
        for folder in (home, *(f for f in STATUS_FOLDERS if f != home)):
            if not _is_regular(storage.root / folder / name):
                continue
            found = storage.job_files(folder, job.display_name) if job.display_name else []
            sources = [p for p in found if p.name != sidecar and _is_regular(p)] or [
                storage.root / folder / name
            ]
            notes = []
            try:
                for source in sources:
                    relative = f"{home}/{source.name}"
                    if relative in tree.files:
                        continue
                    tree.copy_file(relative, source)
                    notes.append(
                        _note(job, relative, f"copied from {folder}/{source.name}: moved after the snapshot")
                    )
            except FileNotFoundError:
                continue
            if wanted in tree.files:
                return notes
    return [
        _note(job, wanted, "not found in any status folder: removed after the snapshot, or missing before")
    ]


def _is_regular(path: Path) -> bool:
    """A regular file, not a link to one (links are never followed)."""
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def _sidecar_agrees(tree: _BackupTree, storage: Storage, job: Job) -> bool:
    assert job.metadata_path is not None
    relative = _safe_relative(storage, job.metadata_path)
    if relative is None or relative not in tree.files:
        return False
    return _same_record(_read_sidecar(tree.target / relative), job)


def _settle_sidecar(snapshot_job: Job, live: Session, storage: Storage, tree: _BackupTree) -> dict[str, str]:
    assert snapshot_job.metadata_path is not None
    relative = _safe_relative(storage, snapshot_job.metadata_path)
    if relative is None:
        return _note(snapshot_job, snapshot_job.metadata_path, "not copied: the path leaves the storage root")
    # Under the live row lock no change of this job is half-done: its sidecar on disk and its row
    # agree with each other, so comparing the row with the snapshot's tells which one is newer.
    live.expire_all()
    with write_transaction(live):
        try:
            live_job: Job | None = lock_job(live, snapshot_job.id)
        except NotFound:
            live_job = None
        if live_job is None or not _same_record(_jsonable(sidecar_record(live_job)), snapshot_job):
            tree.write_file(relative, storage.encode_sidecar(sidecar_record(snapshot_job)))
            return _note(
                snapshot_job, relative, "rewritten from the snapshot's row: the job changed after it"
            )
        try:
            tree.copy_file(relative, storage.root / relative, replace=True)
        except FileNotFoundError:
            return _note(snapshot_job, relative, "missing in the storage root as well")
    if _same_record(_read_sidecar(tree.target / relative), snapshot_job):
        return _note(snapshot_job, relative, "copied again: it was being rewritten during the copy")
    return _note(snapshot_job, relative, "kept as found: it disagrees with its row in the lab's storage too")


def _read_sidecar(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_SIDECAR_BYTES:
            return None
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _jsonable(record: dict[str, Any]) -> Any:
    return json.loads(json.dumps(record))


def _same_record(data: Any, job: Job) -> bool:
    """Whether a sidecar's content is the job's record (the version marker aside)."""
    if not isinstance(data, dict):
        return False
    return {k: v for k, v in data.items() if k != "sidecar_version"} == _jsonable(sidecar_record(job))


def _note(job: Job, path: str, action: str) -> dict[str, str]:
    return {"job_id": job.id, "path": path, "action": action}
