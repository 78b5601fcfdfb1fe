"""The storage root: status folders, streamed uploads hashed on the way in, sidecars, and crash-safe moves.

Moves follow one order so that a crash at any point leaves the old or the new state plus at most a
stale copy, never a missing file: place a hard link (or a copy) at the destination → the caller
commits the database → remove the source. `FileMove.abort()` undoes the placing when the commit
does not happen.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from printlab.domain.statuses import STATUS_FOLDERS

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
TEMP_FOLDER = ".incoming"
#: The end of the name of a file Storage.write_atomic is writing (".name.1a2b3c4d.tmp"), renamed over
#: its target when complete.
WRITING_SUFFIX = ".tmp"


def is_being_written(name: str) -> bool:
    """Whether a file name is one write_atomic gives the file it is writing."""
    return name.startswith(".") and name.endswith(WRITING_SUFFIX)


SIDECAR_SUFFIX = ".metadata.json"
SIDECAR_VERSION = 1


class StorageError(Exception):
    """A file operation the lab's storage refused; the message is safe to show staff."""


class UnsafePath(StorageError):
    """A path that would leave the storage root (absolute, '..') or that passes through a symbolic link.

    The shared drive is writable from lab computers, so a link may be planted anywhere in the tree;
    PrintLab never follows one, wherever it points.
    """


class LinkedPath(UnsafePath):
    """A path inside the root that is a symbolic link, or passes through one."""


class TooLarge(StorageError):
    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        super().__init__(f"The file is larger than the {limit_bytes // (1024 * 1024)} MB limit.")


class JobTooLarge(TooLarge):
    """The files of one job, together, are over the lab's limit for a whole job."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes = limit_bytes
        StorageError.__init__(
            self,
            f"Your files together are larger than the {limit_bytes // (1024 * 1024)} MB limit for one job.",
        )


class AlreadyExists(StorageError):
    """The destination holds a different file; storage never overwrites one."""


def _checkpoint(step: str) -> None:
    """A named point in a move. Does nothing; fault-injection tests patch it to crash right there."""


@dataclass
class ReceivedFile:
    """An upload streamed to a temporary file on the storage volume, with its SHA-256 and size."""

    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class FileMove:
    """Files placed at a destination folder, waiting for the caller's commit to be finished or aborted."""

    storage: Storage
    sources: list[Path] = field(default_factory=list)
    placed: list[Path] = field(default_factory=list)
    #: Files overwritten in place (a sidecar when the folder does not change) and their old bytes.
    replaced: dict[Path, bytes] = field(default_factory=dict)

    def finish(self, keep_folder: Path | None = None) -> None:
        """After the commit: remove the sources. A failure here leaves only a stale copy behind.

        Sources in `keep_folder` (where the job's files are now, read under its row lock) are
        kept: a later move may already have brought the job back there and reused them.
        """
        for source in self.sources:
            if keep_folder is not None and source.parent == keep_folder:
                continue
            try:
                source.unlink(missing_ok=True)
            except OSError as exc:  # the new state is committed; a leftover is reported by `check`
                log.warning("could not remove %s after a move: %s", source, exc)
            _checkpoint("source-removed")

    def abort(self) -> None:
        """The commit did not happen: take back what was placed; the sources are untouched."""
        for path in self.placed:
            path.unlink(missing_ok=True)
        for path, old in self.replaced.items():
            self.storage.write_atomic(path, old)
        self.placed.clear()
        self.replaced.clear()


@dataclass
class FileReplacement:
    """A job's file replaced by a new one, the old kept under a version name, waiting for the commit.

    Placed before the commit, in this order: the old file's second name (`kept`), the new file beside
    it under a temporary hidden name, the new sidecar; `swap()` then renames the new file over the
    job's name as the last step before the commit. `abort()` undoes each step taken; `finish()`
    removes the old name when the new file has another extension (the database moved to it).
    """

    storage: Storage
    current: Path
    kept: Path
    target: Path
    staged: Path | None = None
    sidecar: Path | None = None
    sidecar_before: bytes | None = None
    swapped: bool = False

    def swap(self) -> None:
        if self.staged is not None:
            os.replace(self.staged, self.target)
            self.staged = None
            self.swapped = True
        _checkpoint("replacement-swapped")

    def finish(self) -> None:
        if self.target != self.current:
            try:
                self.current.unlink(missing_ok=True)  # still reachable as `kept`
            except OSError as exc:
                log.warning("could not remove %s after a replacement: %s", self.current, exc)

    def abort(self) -> None:
        if self.swapped:
            # The job's name gets the old bytes back, from the kept copy's second name.
            temp = self.target.with_name(f".{self.target.name}.{secrets.token_hex(4)}.tmp")
            os.link(self.kept, temp, follow_symlinks=False)
            os.replace(temp, self.target)
            self.swapped = False
        elif self.target != self.current:
            self.target.unlink(missing_ok=True)
        if self.staged is not None:
            self.staged.unlink(missing_ok=True)
        if self.sidecar is not None:
            if self.sidecar_before is None:
                self.sidecar.unlink(missing_ok=True)
            else:
                self.storage.write_atomic(self.sidecar, self.sidecar_before)
        self.kept.unlink(missing_ok=True)


class Storage:
    """One storage root. Every path handed in is relative to it and checked before use."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    # -- folders and paths ----------------------------------------------------------------------

    def ensure_folders(self) -> None:
        """Create the root and every status folder (idempotent)."""
        for folder in (*STATUS_FOLDERS, TEMP_FOLDER):
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def check_writable(self) -> None:
        """Raise StorageError when the root can't be written (used at start-up and by /healthz)."""
        if not self.root.is_dir():
            raise StorageError(f"storage root {self.root} does not exist")
        probe = self.root / TEMP_FOLDER / f".probe-{secrets.token_hex(4)}"
        try:
            probe.parent.mkdir(exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise StorageError(f"storage root {self.root} is not writable: {exc.strerror}") from None

    def resolve(self, relative: str | PurePosixPath) -> Path:
        """The absolute path of `relative`, refusing anything that would leave the root or pass
        through a symbolic link (even one that points somewhere inside the root)."""
        text = str(relative)
        if not text or "\x00" in text or "\\" in text:
            raise UnsafePath(f"unsafe path {text!r}")
        posix = PurePosixPath(text)
        if posix.is_absolute() or any(part in ("..", "") for part in posix.parts):
            raise UnsafePath(f"unsafe path {text!r}")
        candidate = self.root.joinpath(*posix.parts)
        # resolve() follows symlinks, so a link inside the root that points out is caught here.
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, or a name the OS can't encode
            raise UnsafePath(f"unsafe path {text!r}") from None
        if real != self.root and self.root not in real.parents:
            raise UnsafePath(f"path {text!r} leaves the storage root")
        # The root is resolved and the parts hold no '..', so any difference is a link on the way
        # (a dangling one resolves to its target's name too).
        if real != candidate:
            raise LinkedPath(f"path {text!r} is a symbolic link or passes through one")
        return candidate

    def relative(self, path: Path) -> str:
        """The root-relative POSIX form stored in the database (a link at the end is not followed)."""
        if not path.is_absolute():
            return path.as_posix()
        if path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return (path.parent.resolve() / path.name).relative_to(self.root).as_posix()

    def folder_files(self, folder: str) -> list[Path]:
        """The regular files in `folder`; symbolic links (to anything, anywhere) are left out."""
        base = self.resolve(folder)
        if not base.is_dir():
            return []
        with os.scandir(base) as entries:
            return sorted(
                base / entry.name
                for entry in entries
                if not entry.is_symlink() and entry.is_file(follow_symlinks=False)
            )

    def job_files(self, folder: str, base_name: str) -> list[Path]:
        """A job's files in `folder`: its upload, slicer files saved beside it, and its sidecar.

        They all start with the job's stored base name followed by a non-alphanumeric character
        (a simple id can't be mistaken for a longer one: '..._a1b2c3.stl' vs '..._a1b2c37.stl').
        """
        matches = []
        for path in self.folder_files(folder):
            name = path.name
            if (
                name.startswith(base_name)
                and len(name) > len(base_name)
                and not name[len(base_name)].isalnum()
            ):
                matches.append(path)
        return matches

    def open_file(self, path: Path) -> IO[bytes]:
        """Open one of the lab's files for reading, refusing a link or anything but a regular file.

        The last step is opened with O_NOFOLLOW, so a link swapped in after the file was listed is
        still refused. Raises UnsafePath, or FileNotFoundError when the file is gone.
        """
        checked = self.resolve(self.relative(path))
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            descriptor = os.open(checked, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise LinkedPath(f"{self.relative(path)} is a symbolic link") from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise UnsafePath(f"{self.relative(path)} is not a regular file")
            return os.fdopen(descriptor, "rb")
        except BaseException:
            os.close(descriptor)
            raise

    # -- streaming in ---------------------------------------------------------------------------

    def receive(self, stream: IO[bytes], max_bytes: int) -> ReceivedFile:
        """Stream `stream` to a temporary file on the storage volume, hashing as it goes.

        Memory stays at one chunk whatever the size. Raises TooLarge (and leaves nothing behind)
        as soon as more than `max_bytes` arrive.
        """
        temp_dir = self.root / TEMP_FOLDER
        temp_dir.mkdir(parents=True, exist_ok=True)
        path = temp_dir / f"upload-{secrets.token_hex(8)}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "xb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return ReceivedFile(path=path, sha256=digest.hexdigest(), size=size)

    def place_new(self, source: Path, relative: str) -> Path:
        """Put `source` at `relative` (hard link when possible), refusing to overwrite anything."""
        target = self.resolve(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._link_or_copy(source, target)
        return target

    def replace_file(
        self, current: str, new_file: Path, target: str, keep_as: str, sidecar: tuple[str, bytes]
    ) -> FileReplacement:
        """Put `new_file` at `target` in place of `current` (same folder), keeping the old one as
        `keep_as`, and write the job's new sidecar (its path, bytes). Never overwrites a file other
        than `current` itself. Call `swap()` last before the commit, `abort()` if it fails."""
        old, kept, goal = self.resolve(current), self.resolve(keep_as), self.resolve(target)
        for path in (old, kept, goal):
            _refuse_link(self, path)
        if kept.exists():
            raise AlreadyExists(f"{keep_as} already exists")
        if goal != old and goal.exists():
            raise AlreadyExists(f"{target} already exists")
        replacement = FileReplacement(self, current=old, kept=kept, target=goal)
        try:
            self._link_or_copy(old, kept)
            _checkpoint("old-file-kept")
            if goal == old:
                replacement.staged = goal.with_name(f".{goal.name}.{secrets.token_hex(4)}.tmp")
                self._link_or_copy(new_file, replacement.staged)
            else:
                self._link_or_copy(new_file, goal)
            _checkpoint("new-file-placed")
            path = self.resolve(sidecar[0])
            _refuse_link(self, path)
            replacement.sidecar_before = path.read_bytes() if path.exists() else None
            replacement.sidecar = path
            self.write_atomic(path, sidecar[1])
            _checkpoint("sidecar-written")
        except BaseException:
            replacement.abort()
            raise
        return replacement

    # -- sidecars -------------------------------------------------------------------------------

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Write a whole file or nothing: temp file in the same folder, fsync, rename over."""
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{WRITING_SUFFIX}")
        with open(temp, "xb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)

    @staticmethod
    def encode_sidecar(record: dict[str, Any]) -> bytes:
        return json.dumps({"sidecar_version": SIDECAR_VERSION, **record}, indent=2, sort_keys=True).encode()

    def read_sidecar(self, relative: str) -> dict[str, Any]:
        return json.loads(self.resolve(relative).read_text(encoding="utf-8"))

    # -- moves ----------------------------------------------------------------------------------

    def move(
        self, files: Iterable[Path], target_folder: str, sidecar: tuple[str, bytes] | None = None
    ) -> FileMove:
        """Place `files` in `target_folder` and write the job's `sidecar` (name, bytes) there.

        Sources are left in place until `finish()`; call `abort()` if the commit fails. A
        same-folder move only rewrites the sidecar (keeping the old bytes for abort).
        """
        move = FileMove(storage=self)
        destination = self.resolve(target_folder)
        destination.mkdir(parents=True, exist_ok=True)
        sidecar_name = sidecar[0] if sidecar else None
        try:
            for source in files:
                if source.is_symlink():
                    raise LinkedPath(f"{self.relative(source)} is a symbolic link; PrintLab never moves one")
                target = destination / source.name
                if source.name == sidecar_name:
                    if target != source:
                        move.sources.append(source)  # the new sidecar is written below
                    continue
                if target == source:
                    continue
                move.sources.append(source)
                if self._link_or_copy(source, target):
                    move.placed.append(target)
                _checkpoint("placed")
            if sidecar is not None:
                target = destination / sidecar[0]
                _refuse_link(self, target)
                # An existing sidecar is either this job's own (same-folder move) or a stale copy
                # from an interrupted move; either way abort() puts its old bytes back.
                if target.exists():
                    move.replaced[target] = target.read_bytes()
                else:
                    move.placed.append(target)
                self.write_atomic(target, sidecar[1])
                _checkpoint("sidecar-written")
        except BaseException:
            move.abort()
            raise
        return move

    def _link_or_copy(self, source: Path, target: Path) -> bool:
        """Hard-link (or copy) source to target. Returns False when an identical copy is already there.

        Never overwrites a different file: raises AlreadyExists instead (UnsafePath for a link).
        """
        _refuse_link(self, target)
        if target.exists():
            if target.samefile(source) or sha256_of(target) == sha256_of(source):
                return False  # a stale copy from an interrupted move: reuse it
            raise AlreadyExists(f"{self.relative(target)} already exists with different content")
        try:
            os.link(source, target, follow_symlinks=False)
        except OSError:
            # Different file systems or no hard links (some network shares): copy, then rename
            # into place so a half-written copy is never seen under the real name.
            temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
            shutil.copyfile(source, temp, follow_symlinks=False)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, target)
        return True

    def delete(self, paths: Iterable[Path]) -> list[str]:
        """Remove files (admin deletion, pruning); returns the root-relative names removed."""
        removed = []
        for path in paths:
            try:
                checked = self.resolve(self.relative(path))
            except (UnsafePath, ValueError):
                log.warning("not deleting %s: it is a link or outside the storage root", path)
                continue
            if checked.is_file():
                checked.unlink()
                removed.append(self.relative(checked))
        return removed


def _refuse_link(storage: Storage, target: Path) -> None:
    if target.is_symlink():
        raise LinkedPath(
            f"{storage.relative(target)} is a symbolic link where PrintLab would put a job's file; "
            "it was not touched. Remove it, then try again."
        )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
