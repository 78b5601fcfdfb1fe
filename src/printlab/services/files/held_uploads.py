"""A student's upload held for an hour after a failed submission, so the retry needn't send it again.

The file waits in the storage's private holding area (`<storage>/.held/`, beside `.incoming`, left
out of status folders, the integrity check and backups). The page gets a random token (256 bits);
the storage only knows its SHA-256, which names the held file and its small record, so neither a
token nor anything else a request carries is ever used as a path. The record also holds a hash of
the browser's id: a token copied to another browser finds nothing. The worker's sweep removes what
has been held longer than an hour (`sweep()`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from printlab.clock import utcnow
from printlab.services.files.storage import TEMP_FOLDER, ReceivedFile, Storage, StorageError, UnsafePath

log = logging.getLogger(__name__)

HOLD_FOLDER = ".held"
HOLD_FOR = timedelta(hours=1)
#: What `hold()` hands out: secrets.token_urlsafe(32), exactly.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
#: The only names the holding area holds: a token's SHA-256 and a suffix.
_HELD_NAME = re.compile(r"[0-9a-f]{64}\.(?:upload|json)")
_RECORD_MAX_BYTES = 4096


@dataclass(frozen=True)
class HeldFile:
    """A held upload as the form shows it: the token to send back and the student's own file name."""

    token: str
    original_filename: str
    size: int
    sha256: str
    held_at: datetime


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _paths(storage: Storage, token: str) -> tuple[Path, Path] | None:
    """The held file and its record for `token`, or None for anything that isn't one of our tokens."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        return None
    name = _digest(token)
    try:
        return (
            storage.resolve(f"{HOLD_FOLDER}/{name}.upload"),
            storage.resolve(f"{HOLD_FOLDER}/{name}.json"),
        )
    except UnsafePath:  # the holding area itself is a link: refuse, never follow
        log.warning("the holding area %s is a symbolic link or leaves the storage root", HOLD_FOLDER)
        return None


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


def hold(
    storage: Storage,
    received: ReceivedFile,
    original_filename: str,
    browser: str,
    *,
    now: datetime | None = None,
) -> HeldFile:
    """Keep `received` (linked, so the caller may still discard its temporary file) for `browser`.

    Raises StorageError when the holding area can't be used.
    """
    now = now or utcnow()
    folder = storage.root / HOLD_FOLDER
    folder.mkdir(exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise StorageError("the holding area is not a folder")
    token = secrets.token_urlsafe(32)
    paths = _paths(storage, token)
    if paths is None:
        raise StorageError("the holding area can't be used")
    upload, record = paths
    try:
        os.link(received.path, upload, follow_symlinks=False)
    except OSError:
        temp = folder / f".{upload.name}.{secrets.token_hex(4)}.tmp"
        with open(received.path, "rb") as source, open(temp, "xb") as out:
            while chunk := source.read(1024 * 1024):
                out.write(chunk)
        os.replace(temp, upload)
    held = HeldFile(token, original_filename, received.size, received.sha256, now)
    try:
        _write_record(storage, record, held, browser)
    except BaseException:
        upload.unlink(missing_ok=True)
        raise
    return held


def _write_record(storage: Storage, record: Path, held: HeldFile, browser: str) -> None:
    data = {
        "original_filename": held.original_filename,
        "size": held.size,
        "sha256": held.sha256,
        "held_at": held.held_at.isoformat(),
        "browser": _digest(browser),
    }
    storage.write_atomic(record, json.dumps(data).encode())


def find(storage: Storage, token: str, browser: str, *, now: datetime | None = None) -> HeldFile | None:
    """The file held under `token` for this browser, or None (unknown, expired, another browser's)."""
    now = now or utcnow()
    paths = _paths(storage, token)
    if paths is None:
        return None
    upload, record = paths
    if not (_regular_file(upload) and _regular_file(record)):
        return None
    try:
        with storage.open_file(record) as handle:
            data = json.loads(handle.read(_RECORD_MAX_BYTES))
        held = HeldFile(
            token,
            str(data["original_filename"]),
            int(data["size"]),
            str(data["sha256"]),
            datetime.fromisoformat(data["held_at"]),
        )
        owner = str(data["browser"])
    except (OSError, StorageError, ValueError, KeyError, TypeError):
        return None
    if not hmac.compare_digest(owner, _digest(browser)):
        return None
    if now - held.held_at > HOLD_FOR:
        return None
    return held


def file_of(storage: Storage, held: HeldFile) -> Path:
    """Where the held file is, for reading (checked again: a regular file inside the holding area)."""
    paths = _paths(storage, held.token)
    if paths is None or not _regular_file(paths[0]):
        raise FileNotFoundError("the held file is gone")
    return paths[0]


def take(storage: Storage, held: HeldFile) -> ReceivedFile:
    """A temporary copy (a hard link) of the held file in `.incoming`, as a fresh upload would be.

    The held file stays until `release()`: if this attempt fails too, the next one still finds it.
    """
    return second_link(storage, ReceivedFile(file_of(storage, held), held.sha256, held.size))


def second_link(storage: Storage, received: ReceivedFile) -> ReceivedFile:
    """Another name (a hard link, else a copy) in `.incoming` for a file, for a service that consumes
    what it is given: the original stays, to be held if that service fails."""
    incoming = storage.root / TEMP_FOLDER
    incoming.mkdir(exist_ok=True)
    target = incoming / f"upload-{secrets.token_hex(8)}.part"
    try:
        os.link(received.path, target, follow_symlinks=False)
    except OSError:
        with storage.open_file(received.path) as handle, open(target, "xb") as out:
            while chunk := handle.read(1024 * 1024):
                out.write(chunk)
    return ReceivedFile(path=target, sha256=received.sha256, size=received.size)


def renew(storage: Storage, held: HeldFile, browser: str, *, now: datetime | None = None) -> HeldFile:
    """Another failed attempt with the held file: it is kept an hour from now."""
    renewed = HeldFile(held.token, held.original_filename, held.size, held.sha256, now or utcnow())
    paths = _paths(storage, held.token)
    if paths is not None:
        _write_record(storage, paths[1], renewed, browser)
    return renewed


def release(storage: Storage, token: str) -> None:
    """Forget a held file (used for a job, or replaced by another file)."""
    paths = _paths(storage, token)
    if paths is None:
        return
    for path in paths:
        if _regular_file(path):
            path.unlink(missing_ok=True)


def sweep(storage: Storage, *, now: datetime | None = None) -> int:
    """Remove held files older than an hour (and records whose file is gone). Returns how many files.

    Only names this module writes are touched; a link or anything else found there is left alone
    (and logged), never followed.
    """
    now = now or utcnow()
    folder = storage.root / HOLD_FOLDER
    if folder.is_symlink():
        log.warning("the holding area %s is a symbolic link; not sweeping it", HOLD_FOLDER)
        return 0
    if not folder.is_dir():
        return 0
    with os.scandir(folder) as entries:
        names = sorted(entry.name for entry in entries)
    due = []
    for name in names:
        path = folder / name
        if not _HELD_NAME.fullmatch(name) or not _regular_file(path):
            if not name.startswith("."):  # a write in progress is `.<name>.tmp`
                log.warning("left %s/%s alone: not a file PrintLab holds", HOLD_FOLDER, name)
            continue
        if now - _held_at(path, folder) > HOLD_FOR:  # decided for all before any is removed
            due.append(path)
    for path in due:
        path.unlink(missing_ok=True)
    removed = sum(path.name.endswith(".upload") for path in due)
    if removed:
        log.info("removed %d held upload(s) older than an hour", removed)
    return removed


def _held_at(path: Path, folder: Path) -> datetime:
    """When the file's record says it was held; the file's own time when the record is unreadable."""
    record = folder / (path.name.rsplit(".", 1)[0] + ".json")
    try:
        if _regular_file(record) and record.stat().st_size <= _RECORD_MAX_BYTES:
            return datetime.fromisoformat(json.loads(record.read_bytes())["held_at"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return datetime.fromtimestamp(path.lstat().st_mtime, UTC).replace(tzinfo=None)
