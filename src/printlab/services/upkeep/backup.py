"""Backup and restore: a consistent snapshot of the database and the storage tree with a SHA-256 manifest, and bringing it back."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.request import pathname2url

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from printlab import __version__
from printlab.db import (
    alembic_config,
    check_database,
    make_engine,
    normalise_url,
    safe_url,
    session_factory,
    write_transaction,
)
from printlab.domain.statuses import STATUS_FOLDERS
from printlab.models import Job
from printlab.services.errors import NotFound, ServiceError
from printlab.services.files.storage import CHUNK, Storage, UnsafePath
from printlab.services.jobs.records import every_job, lock_job, sidecar_record
from printlab.services.upkeep.integrity import (
    IntegrityReport,
    LeftoverUpload,
    Misplaced,
    MissingFile,
    Orphan,
    SidecarMismatch,
    StaleCopy,
    UnsafeEntry,
    scan,
)

FORMAT = "printlab-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_FILE = "database.sqlite"
POSTGRES_FILE = "database.pgdump"
STORAGE_FOLDER = "storage"
#: Where `restore --force` puts what was in the storage root before, inside the root itself (a
#: rename on the same file system, even when the root is a mount point).
SET_ASIDE_PREFIX = ".before-restore-"
#: Seconds pg_dump or pg_restore may run before the backup or restore counts as failed.
PG_TIMEOUT = 3600.0
#: A sidecar is a few kilobytes; anything far bigger is not read into memory.
MAX_SIDECAR_BYTES = 1024 * 1024
#: Snapshot jobs are read in batches of this size.
BATCH = 500
#: Findings listed one per line after the integrity summary; the rest are counted.
MAX_FINDINGS_SHOWN = 20
#: The temporary names Storage.write_atomic and its copies use; a write in progress, never data.
_STORAGE_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
_BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class BackupError(ServiceError):
    """A backup or restore that can't go ahead or failed; the message is one line saying what and where."""


class DamagedBackup(BackupError):
    """A backup whose files don't match its manifest; `problems` maps each bad path to what is wrong."""

    def __init__(self, directory: Path, problems: dict[str, str]):
        self.problems = problems
        shown = [f"{path} ({reason})" for path, reason in list(problems.items())[:5]]
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        super().__init__(f"backup {directory} is damaged, nothing was restored: {', '.join(shown)}{more}")


class TargetNotEmpty(BackupError):
    """The configured database or storage root already holds data and --force was not given."""


def _checkpoint(step: str) -> None:
    """A named point in a backup. Does nothing; tests patch it to change the lab right there."""


# -- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str
    mtime_ns: int | None = None


@dataclass
class BackupResult:
    """What a backup wrote; the same facts as its manifest."""

    directory: Path
    backend: str
    schema_revision: str | None
    tables: dict[str, int]
    database_file: str
    database_bytes: int
    files: int
    storage_bytes: int
    symlinks: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    reconciled: list[dict[str, str]] = field(default_factory=list)


@dataclass
class RestoreResult:
    """What a restore brought back, and the integrity check run on it (None when the schema is not current)."""

    backend: str
    database: str
    storage_root: Path
    schema_revision: str | None
    taken_at: str
    printlab_version: str
    tables: dict[str, int]
    files: int
    storage_bytes: int
    set_aside: Path | None
    symlinks_not_restored: list[dict[str, str]]
    schema_current: bool
    integrity: IntegrityReport | None


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
    started = _now()
    engine = make_engine(database_url)
    try:
        check_database(engine)
        backend = engine.dialect.name
        database_file = SQLITE_FILE if backend == "sqlite" else POSTGRES_FILE
        with _database_snapshot(engine, target / database_file, pg_timeout) as snapshot:
            snapshot_at = _now()
            _checkpoint("database-snapshot-taken")
            tree = _BackupTree(storage, target / STORAGE_FOLDER)
            tree.copy_tree()
            reconciled = _reconcile(snapshot, storage, tree, engine)
            revision = MigrationContext.configure(snapshot.connection()).get_current_revision()
            tables = _table_counts(snapshot.connection())
        database_entry = _hash_file(target / database_file)
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
            "finished_at": _now(),
            "counts": {"jobs": tables.get("job", 0), "events": tables.get("event", 0)},
            "tables": tables,
            "files": files,
            "directories": [f"{STORAGE_FOLDER}/{d}" for d in sorted(tree.directories)],
            "symlinks": tree.symlinks,
            "skipped": tree.skipped,
            "vanished_while_copying": sorted(tree.vanished),
            "reconciled": reconciled,
        }
        _write_durably(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    except BaseException as exc:
        _empty_folder(target, remove=created)
        if isinstance(exc, OSError):
            raise BackupError(f"backup to {target} failed: {_os_reason(exc)}") from None
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
        raise BackupError(f"can't create backup folder {target}: {_os_reason(exc)}") from None
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
    source = _sqlite_path(str(engine.url))
    if not source.is_file():
        raise BackupError(f"no SQLite database at {source}")
    try:
        # mode=rw: never create an empty database where the configured one is missing.
        with (
            closing(sqlite3.connect(_sqlite_uri(source, "rw"), uri=True, timeout=30)) as live,
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
    reader = _sqlite_reader(target)
    try:
        with Session(bind=reader) as session:
            yield session
    finally:
        reader.dispose()


@contextmanager
def _postgres_snapshot(engine: Engine, target: Path, timeout: float) -> Iterator[Session]:
    pg_dump = _tool("pg_dump")
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            # pg_dump imports this transaction's snapshot, so the dump and everything read below
            # (counts, rows the storage copy is checked against) are the same committed state.
            snapshot_id = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            _run_pg_tool(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    "--no-password",
                    f"--file={target}",
                    f"--dbname={_conninfo(engine)}",
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
                elif _STORAGE_TEMP.match(entry.name):
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
        _write_durably(destination, data)
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


# -- restore -----------------------------------------------------------------------------------


def read_manifest(directory: Path | str) -> dict[str, Any]:
    """The backup's manifest. Raises BackupError when it is missing, unreadable or of another format."""
    path = Path(directory).expanduser() / MANIFEST
    try:
        manifest = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupError(f"{path} not found: {path.parent} is not a complete PrintLab backup") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} can't be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a PrintLab backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} has format version {manifest.get('format_version')!r}; "
            f"this PrintLab reads version {FORMAT_VERSION}"
        )
    if not isinstance(manifest.get("files"), list) or manifest.get("backend") not in _BACKENDS:
        raise BackupError(f"{path} is not a PrintLab backup manifest")
    return manifest


def verify(directory: Path | str) -> dict[str, Any]:
    """Check every file against the manifest (present, size, SHA-256; nothing extra under storage/).

    Returns the manifest. Raises DamagedBackup naming each bad file, BackupError for a bad manifest.
    """
    directory = Path(directory).expanduser().resolve()
    manifest = read_manifest(directory)
    problems: dict[str, str] = {}
    listed: set[str] = set()
    for item in manifest["files"]:
        relative = _backup_relative(item, manifest)
        if relative is None:
            problems[str(item.get("path") if isinstance(item, dict) else item)] = "not a path in a backup"
            continue
        listed.add(relative)
        path = directory / relative
        try:
            status = path.lstat()
        except FileNotFoundError:
            problems[relative] = "missing"
            continue
        if not stat.S_ISREG(status.st_mode):
            problems[relative] = "not a regular file"
        elif status.st_size != item.get("size"):
            problems[relative] = f"{status.st_size} bytes, the manifest says {item.get('size')}"
        elif _hash_file(path).sha256 != item.get("sha256"):
            problems[relative] = "checksum does not match the manifest"
    storage_copy = directory / STORAGE_FOLDER
    if storage_copy.is_dir():
        for path in sorted(storage_copy.rglob("*")):
            relative = path.relative_to(directory).as_posix()
            if (path.is_symlink() or not path.is_dir()) and relative not in listed:
                problems[relative] = "not in the manifest"
    if problems:
        raise DamagedBackup(directory, problems)
    return manifest


def _backup_relative(item: Any, manifest: dict[str, Any]) -> str | None:
    """A manifest entry's path if it is one a backup can hold: the database file, or under storage/."""
    if not isinstance(item, dict) or not isinstance(item.get("path"), str):
        return None
    path = PurePosixPath(item["path"])
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts) or "\\" in item["path"]:
        return None
    database_file = SQLITE_FILE if manifest["backend"] == "sqlite" else POSTGRES_FILE
    if path.as_posix() != database_file and (len(path.parts) < 2 or path.parts[0] != STORAGE_FOLDER):
        return None
    return path.as_posix()


def restore(
    directory: Path | str,
    database_url: str,
    storage_root: Path | str,
    *,
    force: bool = False,
    pg_timeout: float = PG_TIMEOUT,
) -> RestoreResult:
    """Bring a backup back into the configured database and storage root, then run the integrity check.

    Order: verify every checksum (nothing is touched if one fails), refuse a database or storage
    root that holds data unless `force`, restore the database (SQLite: the online backup API into
    the configured file; PostgreSQL: pg_restore into the configured database, after dropping what
    its schema held when forced), put the storage root's previous contents aside (forced only),
    copy the files back, check the restored row counts against the manifest, and scan.

    Stop PrintLab (web and workers) first. Raises DamagedBackup, TargetNotEmpty, BackupError, and
    ConfigError (database unreachable).
    """
    source = Path(directory).expanduser().resolve()
    manifest = verify(source)
    root = Path(storage_root).expanduser().resolve()
    engine = make_engine(database_url)
    try:
        backend = engine.dialect.name
        if backend != manifest["backend"]:
            raise BackupError(
                f"backup {source} holds a {_BACKENDS[manifest['backend']]} database; "
                f"the configured database is {_BACKENDS.get(backend, backend)}"
            )
        if backend == "sqlite":
            _sqlite_path(database_url).parent.mkdir(parents=True, exist_ok=True)
        check_database(engine)
        in_database = _database_contents(engine)
        in_storage = _storage_contents(root)
        if (in_database or in_storage) and not force:
            raise TargetNotEmpty(
                "; ".join(filter(None, (in_database, in_storage))) + "; use --force to replace"
            )
        if backend == "sqlite":
            _restore_sqlite(source / SQLITE_FILE, _sqlite_path(database_url))
        else:
            _restore_postgres(source / POSTGRES_FILE, engine, wipe=bool(in_database), timeout=pg_timeout)
        set_aside = _set_aside(root) if in_storage else None
        storage_bytes = _restore_files(source, manifest, root)
        storage = Storage(root)
        storage.ensure_folders()
        engine.dispose()  # connections opened before the restore may have cached the old schema
        revision, tables = _restored_state(engine)
        if revision != manifest["schema_revision"] or tables != manifest["tables"]:
            raise BackupError(
                f"the restored database differs from the manifest (revision {revision}, "
                f"{tables.get('job', 0)} jobs, {tables.get('event', 0)} events)"
            )
        head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
        report = None
        if revision == head:
            with session_factory(engine)() as session:
                report = scan(session, storage)
    except OSError as exc:
        raise BackupError(f"restore from {source} failed: {_os_reason(exc)}") from None
    finally:
        engine.dispose()
    return RestoreResult(
        backend=backend,
        database=safe_url(database_url),
        storage_root=root,
        schema_revision=revision,
        taken_at=str(manifest.get("snapshot_at")),
        printlab_version=str(manifest.get("printlab_version")),
        tables=tables,
        files=sum(1 for f in manifest["files"] if f["path"].startswith(f"{STORAGE_FOLDER}/")),
        storage_bytes=storage_bytes,
        set_aside=set_aside,
        symlinks_not_restored=list(manifest.get("symlinks") or []),
        schema_current=revision == head,
        integrity=report,
    )


def _database_contents(engine: Engine) -> str | None:
    """What the target database holds, in words, or None when it has no tables."""
    try:
        with engine.connect() as connection:
            tables = [t for t in inspect(connection).get_table_names() if not t.startswith("sqlite_")]
            if engine.dialect.name == "postgresql":
                others = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = current_schema() AND c.relkind IN ('v', 'm', 'S', 'f')"
                    )
                ).scalar_one()
            else:
                others = 0
            jobs = (
                connection.execute(select(func.count()).select_from(table("job"))).scalar_one()
                if "job" in tables
                else 0
            )
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return f"the database {safe_url(str(engine.url))} can't be read ({reason})"
    if not tables and not others:
        return None
    return f"the database {safe_url(str(engine.url))} is not empty ({len(tables)} tables, {jobs} jobs)"


def _storage_contents(root: Path) -> str | None:
    """What the storage root holds, in words, or None when it has no files (empty folders are fine)."""
    if not root.exists():
        return None
    if not root.is_dir():
        return f"the storage root {root} is not a folder"
    count = 0
    for _folder, folders, files in os.walk(root):
        count += len(files) + sum(1 for f in folders if os.path.islink(os.path.join(_folder, f)))
    return f"the storage root {root} is not empty ({count} files)" if count else None


def _restore_sqlite(backup_file: Path, target: Path) -> None:
    try:
        with (
            closing(sqlite3.connect(_sqlite_uri(backup_file, "ro"), uri=True)) as copy,
            closing(sqlite3.connect(target, timeout=30)) as live,
        ):
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"{backup_file} failed SQLite's check: {check}")
            # The backup API replaces the whole database (schema, triggers, rows) through SQLite's
            # own locking, so an existing -wal file of the target is handled, never left stale.
            copy.backup(live, pages=-1)
    except sqlite3.Error as exc:
        raise BackupError(f"restoring the SQLite database {target} failed: {exc}") from None


def _restore_postgres(dump: Path, engine: Engine, *, wipe: bool, timeout: float) -> None:
    pg_restore = _tool("pg_restore")
    # Read the archive's table of contents first: a dump this pg_restore can't read stops here,
    # before anything in the database is dropped.
    _run_pg_tool([pg_restore, "--list", str(dump)], engine, min(timeout, 300), "pg_restore --list")
    if wipe:
        _drop_schema_contents(engine)
    _run_pg_tool(
        [
            pg_restore,
            "--no-owner",  # objects belong to the configured role, whoever owned them before
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={_conninfo(engine)}",
            str(dump),
        ],
        engine,
        timeout,
        "pg_restore",
    )


def _drop_schema_contents(engine: Engine) -> None:
    """Drop every table, view, sequence, function and type of the current schema (not extensions')."""
    with engine.begin() as connection:
        quote = connection.dialect.identifier_preparer.quote
        for name, kind in connection.execute(_RELATIONS).all():
            connection.execute(text(f"DROP {_RELATION_KINDS[kind]} IF EXISTS {quote(name)} CASCADE"))
        for signature, kind in connection.execute(_ROUTINES).all():
            word = {"p": "PROCEDURE", "a": "AGGREGATE"}.get(kind, "FUNCTION")
            connection.execute(text(f"DROP {word} IF EXISTS {signature} CASCADE"))
        for name, kind in connection.execute(_TYPES).all():
            word = "DOMAIN" if kind == "d" else "TYPE"
            connection.execute(text(f"DROP {word} IF EXISTS {quote(name)} CASCADE"))


_RELATION_KINDS = {
    "r": "TABLE",
    "p": "TABLE",
    "f": "FOREIGN TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "S": "SEQUENCE",
}
_RELATIONS = text(
    "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype = 'e') ORDER BY c.relkind, c.relname"
)
_ROUTINES = text(
    "SELECT p.oid::regprocedure::text, p.prokind FROM pg_proc p "
    "WHERE p.pronamespace = current_schema()::regnamespace "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
    "AND d.objid = p.oid AND d.deptype = 'e')"
)
_TYPES = text(
    "SELECT t.typname, t.typtype FROM pg_type t "
    "WHERE t.typnamespace = current_schema()::regnamespace AND t.typtype IN ('e', 'd', 'r', 'c') "
    "AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass "
    "AND d.objid = t.oid AND d.deptype = 'e')"
)


def _set_aside(root: Path) -> Path:
    """Move everything in the storage root into a hidden folder inside it; returns that folder."""
    aside = root / f"{SET_ASIDE_PREFIX}{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    aside.mkdir()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(SET_ASIDE_PREFIX):
            continue  # an earlier restore's set-aside folder stays where it is
        os.rename(entry, aside / entry.name)
    return aside


def _restore_files(source: Path, manifest: dict[str, Any], root: Path) -> int:
    """Copy the backup's files into the root, each checked against its manifest checksum again."""
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"{STORAGE_FOLDER}/"
    for folder in manifest.get("directories") or []:
        if isinstance(folder, str) and folder.startswith(prefix):
            _inside(root, folder[len(prefix) :]).mkdir(parents=True, exist_ok=True)
    total = 0
    for item in manifest["files"]:
        if not item["path"].startswith(prefix):
            continue
        destination = _inside(root, item["path"][len(prefix) :])
        destination.parent.mkdir(parents=True, exist_ok=True)
        temp = destination.with_name(f".{destination.name}.restoring")
        digest = hashlib.sha256()
        with open(source / item["path"], "rb") as reader, open(temp, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        if digest.hexdigest() != item["sha256"]:
            temp.unlink()
            raise BackupError(f"{item['path']} changed while it was being restored; run the restore again")
        if isinstance(item.get("mtime_ns"), int):
            os.utime(temp, ns=(item["mtime_ns"], item["mtime_ns"]))
        os.replace(temp, destination)
        total += item["size"]
    return total


def _inside(root: Path, relative: str) -> Path:
    """`relative` under `root`, refusing anything that would leave it (the manifest is input too)."""
    path = root.joinpath(*PurePosixPath(relative).parts)
    if not path.resolve().is_relative_to(root):
        raise BackupError(f"{relative} in the manifest would leave the storage root")
    return path


def _restored_state(engine: Engine) -> tuple[str | None, dict[str, int]]:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision(), _table_counts(connection)


def _table_counts(connection: Connection) -> dict[str, int]:
    names = sorted(t for t in inspect(connection).get_table_names() if not t.startswith("sqlite_"))
    return {
        name: connection.execute(select(func.count()).select_from(table(name))).scalar_one() for name in names
    }


# -- PostgreSQL client tools -------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools "
            "(apt-get install postgresql-client), the same major version as the server or newer"
        )
    return found


def _connect_params(engine: Engine) -> dict[str, Any]:
    """libpq parameters of the engine's URL, as psycopg receives them (password included)."""
    _args, params = engine.dialect.create_connect_args(engine.url)
    return {k: v for k, v in params.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def _conninfo(engine: Engine) -> str:
    """A libpq connection string without the password (which goes through PGPASSWORD instead)."""
    from psycopg.conninfo import make_conninfo

    params = _connect_params(engine)
    params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def _run_pg_tool(args: list[str], engine: Engine, timeout: float, label: str) -> None:
    env = dict(os.environ)
    password = _connect_params(engine).get("password")
    if password:
        env["PGPASSWORD"] = str(password)  # never on the command line, where `ps` would show it
    env.setdefault("PGCONNECT_TIMEOUT", "30")
    try:
        finished = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise BackupError(f"{args[0]} could not be started: install the PostgreSQL client tools") from None
    except subprocess.TimeoutExpired:
        raise BackupError(f"{label} took longer than {timeout:.0f} seconds and was stopped") from None
    if finished.returncode != 0:
        lines = [line.strip() for line in finished.stderr.splitlines() if line.strip()]
        # libpq and the tools put the cause on "error:" lines and the specifics on "detail:" lines.
        told = [line for line in lines if "error:" in line or "detail:" in line or "FATAL" in line]
        reason = "; ".join(told or lines[-1:]) or f"exit status {finished.returncode}"
        if password:
            reason = reason.replace(str(password), "***")
        raise BackupError(f"{label} failed: {reason}")


# -- small helpers -----------------------------------------------------------------------------


def _sqlite_path(url: str) -> Path:
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"the SQLite database {url} is not a file that can be backed up or restored")
    return Path(database).expanduser().resolve()


def _sqlite_uri(path: Path, mode: str) -> str:
    return f"file:{pathname2url(str(path))}?mode={mode}"


def _sqlite_reader(path: Path) -> Engine:
    """A read-only engine on a snapshot file; none of the live engine's WAL set-up, so no -wal appears."""
    uri = _sqlite_uri(path, "ro")
    return create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool)


def _hash_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(size=size, sha256=digest.hexdigest())


def _write_durably(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.writing")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _os_reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


# -- what the commands print -------------------------------------------------------------------


def _size(count: int) -> str:
    value = float(count)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def backup_summary(result: BackupResult) -> list[str]:
    """Lines `printlab backup` prints."""
    lines = [
        f"Backup written to {result.directory}",
        f"  database: {_BACKENDS[result.backend]}, schema {result.schema_revision}, "
        f"{result.tables.get('job', 0)} jobs, {result.tables.get('event', 0)} events "
        f"({result.database_file}, {_size(result.database_bytes)})",
        f"  storage:  {result.files} files, {_size(result.storage_bytes)}",
    ]
    if result.reconciled:
        lines.append(
            f"  {len(result.reconciled)} file(s) changed while the backup ran were matched to the "
            'database snapshot (see "reconciled" in manifest.json)'
        )
    if result.symlinks:
        lines.append(f"  {len(result.symlinks)} symbolic link(s) recorded in the manifest, not followed")
    return lines


def restore_summary(result: RestoreResult) -> list[str]:
    """Lines `printlab restore` prints, the integrity check's summary last."""
    lines = [
        f"Backup checked: every checksum matches ({_BACKENDS[result.backend]}, schema {result.schema_revision}, "
        f"taken {result.taken_at} by PrintLab {result.printlab_version}).",
        f"Database restored: {result.database}: {result.tables.get('job', 0)} jobs, "
        f"{result.tables.get('event', 0)} events.",
        f"Storage restored: {result.storage_root}: {result.files} files, {_size(result.storage_bytes)}.",
    ]
    if result.set_aside is not None:
        lines.append(
            f"  What the storage root held before is in {result.set_aside}; delete it when satisfied."
        )
    for link in result.symlinks_not_restored:
        lines.append(
            f"  Not restored: symbolic link {link['path']} -> {link['target']} (links are never followed)"
        )
    if not result.schema_current or result.integrity is None:
        lines.append(
            f"Integrity check not run: the backup's schema {result.schema_revision} is not this PrintLab's; "
            "run `printlab db upgrade`, then the integrity check."
        )
    else:
        lines += integrity_summary(result.integrity)
    return lines


#: How each kind of finding is counted in the summary (one, many), by its class name, so a kind the
#: integrity scan adds later is still counted (under its class name) rather than left out.
_FINDING_LABELS = {
    "MissingFile": ("missing file", "missing files"),
    "MissingRow": (
        "job without a row (its sidecar can rebuild it)",
        "jobs without a row (their sidecars can rebuild them)",
    ),
    "SidecarMismatch": ("sidecar disagreeing with the database", "sidecars disagreeing with the database"),
    "Misplaced": ("job in the wrong folder", "jobs in the wrong folder"),
    "StaleCopy": ("stale copy", "stale copies"),
    "Orphan": ("file with no job", "files with no job"),
    "UnsafeEntry": ("link or unsafe entry", "links or unsafe entries"),
    "LeftoverUpload": ("abandoned upload", "abandoned uploads"),
}


def integrity_summary(report: IntegrityReport) -> list[str]:
    """The integrity report in a few lines: counts per kind of finding, then the first findings."""
    findings = list(report.findings())
    counts: dict[str, int] = {}
    for finding in findings:
        counts[type(finding).__name__] = counts.get(type(finding).__name__, 0) + 1
    found = ", ".join(
        f"{count} {_FINDING_LABELS.get(kind, (kind, kind))[0 if count == 1 else 1]}"
        for kind, count in counts.items()
    )
    head = f"Integrity check: {report.jobs_checked} jobs and {report.files_checked} files checked: "
    lines = [head + (f"{found}." if found else "no findings.")]
    lines += [f"  {_describe(finding)}" for finding in findings[:MAX_FINDINGS_SHOWN]]
    if len(findings) > MAX_FINDINGS_SHOWN:
        lines.append(f"  … and {len(findings) - MAX_FINDINGS_SHOWN} more")
    return lines


def _describe(finding: object) -> str:
    if isinstance(finding, MissingFile):
        return f"missing: {finding.path} ({finding.kind} of job {finding.job_id}, {finding.status}): {finding.reason}"
    if isinstance(finding, SidecarMismatch):
        what = "unreadable" if finding.unreadable else ", ".join(finding.fields)
        return f"sidecar disagrees: {finding.path} (job {finding.job_id}): {what}"
    if isinstance(finding, Misplaced):
        return f"wrong folder: job {finding.job_id} is {finding.status}, its files are in {finding.folder}/"
    if isinstance(finding, StaleCopy):
        return f"stale copy: {finding.path} (job {finding.job_id} is in {finding.current_folder or 'no folder'}/)"
    if isinstance(finding, Orphan):
        return f"no job: {finding.path}"
    if isinstance(finding, UnsafeEntry):
        return f"not followed: {finding.path}: {finding.reason}"
    if isinstance(finding, LeftoverUpload):
        return f"abandoned upload: {finding.path}"
    kind = _FINDING_LABELS.get(type(finding).__name__, (type(finding).__name__,))[0]
    job = getattr(finding, "job_id", None)
    return f"{kind}: {getattr(finding, 'path', '')}" + (f" (job {job})" if job else "")
