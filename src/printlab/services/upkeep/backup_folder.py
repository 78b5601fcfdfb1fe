"""The backup folder both directions share: its layout and manifest names, the errors and results, the
PostgreSQL client tools and the small file helpers."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

from sqlalchemy import Connection, Engine, create_engine, func, inspect, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from printlab.db import normalise_url
from printlab.services.errors import ServiceError
from printlab.services.files.storage import CHUNK
from printlab.services.upkeep.integrity import IntegrityReport

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
STORAGE_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
BACKENDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


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


# -- PostgreSQL client tools -------------------------------------------------------------------


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools "
            "(apt-get install postgresql-client), the same major version as the server or newer"
        )
    return found


def connect_params(engine: Engine) -> dict[str, Any]:
    """libpq parameters of the engine's URL, as psycopg receives them (password included)."""
    _args, params = engine.dialect.create_connect_args(engine.url)
    return {k: v for k, v in params.items() if isinstance(v, str | int) and not isinstance(v, bool)}


def conninfo(engine: Engine) -> str:
    """A libpq connection string without the password (which goes through PGPASSWORD instead)."""
    from psycopg.conninfo import make_conninfo

    params = connect_params(engine)
    params.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in params.items()})


def run_pg_tool(args: list[str], engine: Engine, timeout: float, label: str) -> None:
    env = dict(os.environ)
    password = connect_params(engine).get("password")
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


def sqlite_path(url: str) -> Path:
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"the SQLite database {url} is not a file that can be backed up or restored")
    return Path(database).expanduser().resolve()


def sqlite_uri(path: Path, mode: str) -> str:
    return f"file:{pathname2url(str(path))}?mode={mode}"


def sqlite_reader(path: Path) -> Engine:
    """A read-only engine on a snapshot file; none of the live engine's WAL set-up, so no -wal appears."""
    uri = sqlite_uri(path, "ro")
    return create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool, hide_parameters=True
    )


def hash_file(path: Path) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return FileEntry(size=size, sha256=digest.hexdigest())


def write_durably(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.writing")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def os_reason(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def table_counts(connection: Connection) -> dict[str, int]:
    names = sorted(t for t in inspect(connection).get_table_names() if not t.startswith("sqlite_"))
    return {
        name: connection.execute(select(func.count()).select_from(table(name))).scalar_one() for name in names
    }
