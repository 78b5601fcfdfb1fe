"""Bringing a backup back: verify it against its manifest, then restore the database and storage tree."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from printlab.db import alembic_config, check_database, make_engine, safe_url, session_factory
from printlab.services.files.storage import CHUNK, Storage
from printlab.services.upkeep.backup_folder import (
    BACKENDS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PG_TIMEOUT,
    POSTGRES_FILE,
    SET_ASIDE_PREFIX,
    SQLITE_FILE,
    STORAGE_FOLDER,
    BackupError,
    DamagedBackup,
    RestoreResult,
    TargetNotEmpty,
    conninfo,
    hash_file,
    os_reason,
    run_pg_tool,
    sqlite_path,
    sqlite_uri,
    table_counts,
    tool,
)
from printlab.services.upkeep.integrity import scan

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
    if not isinstance(manifest.get("files"), list) or manifest.get("backend") not in BACKENDS:
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
        elif hash_file(path).sha256 != item.get("sha256"):
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
                f"backup {source} holds a {BACKENDS[manifest['backend']]} database; "
                f"the configured database is {BACKENDS.get(backend, backend)}"
            )
        if backend == "sqlite":
            sqlite_path(database_url).parent.mkdir(parents=True, exist_ok=True)
        check_database(engine)
        in_database = _database_contents(engine)
        in_storage = _storage_contents(root)
        if (in_database or in_storage) and not force:
            raise TargetNotEmpty(
                "; ".join(filter(None, (in_database, in_storage))) + "; use --force to replace"
            )
        if backend == "sqlite":
            _restore_sqlite(source / SQLITE_FILE, sqlite_path(database_url))
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
        raise BackupError(f"restore from {source} failed: {os_reason(exc)}") from None
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
            closing(sqlite3.connect(sqlite_uri(backup_file, "ro"), uri=True)) as copy,
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
    pg_restore = tool("pg_restore")
    # Read the archive's table of contents first: a dump this pg_restore can't read stops here,
    # before anything in the database is dropped.
    run_pg_tool([pg_restore, "--list", str(dump)], engine, min(timeout, 300), "pg_restore --list")
    if wipe:
        _drop_schema_contents(engine)
    run_pg_tool(
        [
            pg_restore,
            "--no-owner",  # objects belong to the configured role, whoever owned them before
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            f"--dbname={conninfo(engine)}",
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
        return MigrationContext.configure(connection).get_current_revision(), table_counts(connection)
