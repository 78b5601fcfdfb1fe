"""A .zip of model files sent as one job's parts: opened with the 3MF safety rules (member count,
sizes, compression ratio, unsafe names), each model unpacked beside the uploads and hashed as it comes."""

from __future__ import annotations

import hashlib
import secrets
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from printlab.domain.naming import extension_of
from printlab.domain.submission import NOT_NEEDED, ZIP_EXTENSION, clean_filename
from printlab.domain.text import TextError, clean_text
from printlab.services.files.model_files import ZIP_ERRORS, ModelRejected, open_checked_zip
from printlab.services.files.storage import CHUNK, ReceivedFile

MiB = 1024 * 1024
#: Files a zip made on a Mac or in Windows carries beside the models, left out without a word.
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class UnpackedModel:
    """One model out of the zip: its own name (no folders) and the file unpacked to the upload folder."""

    name: str
    received: ReceivedFile


def _is_system_file(member: str) -> bool:
    parts = PurePosixPath(member.replace("\\", "/")).parts
    return (
        any(part == "__MACOSX" for part in parts)
        or parts[-1].startswith(".")
        or parts[-1].lower() in _SYSTEM_FILES
    )


def unpack_models(
    path: Path,
    temp_dir: Path,
    *,
    model_extensions: Sequence[str],
    max_models: int,
    max_file_bytes: int,
    max_total_bytes: int,
) -> list[UnpackedModel]:
    """The models in the zip at `path`, unpacked into `temp_dir` in the zip's order.

    Folders, system files (__MACOSX, .DS_Store) and files the lab doesn't need (an OBJ's .mtl) are
    left out; anything else that isn't a model refuses the whole zip. Sizes are checked from the
    zip's directory before anything is unpacked, and again while unpacking. Raises ModelRejected
    with a message for the student, leaving nothing in `temp_dir`.
    """
    allowed = ", ".join(model_extensions)
    with open_checked_zip(path, what=ZIP_EXTENSION, max_uncompressed_bytes=max_total_bytes) as archive:
        members: list[tuple[str, zipfile.ZipInfo]] = []
        for info in archive.infolist():
            if info.is_dir() or _is_system_file(info.filename):
                continue
            try:
                name = clean_text(clean_filename(info.filename), "A file's name")
            except TextError as exc:
                raise ModelRejected(
                    f"A file in this .zip has {exc.reason} in its name. Rename it and make the .zip again."
                ) from None
            extension = extension_of(name)
            if extension in NOT_NEEDED:
                continue
            if extension not in model_extensions:
                raise ModelRejected(
                    f"This .zip file holds {name[:80]}, which isn't a model file ({allowed}). "
                    "Put only your model files in it."
                )
            if info.file_size > max_file_bytes:
                raise ModelRejected(
                    f"{name[:80]} in this .zip file is {info.file_size / MiB:.1f} MB; each file can be up to "
                    f"{max_file_bytes // MiB} MB."
                )
            members.append((name, info))
        if not members:
            raise ModelRejected(f"This .zip file holds no model files ({allowed}).")
        if len(members) > max_models:
            raise ModelRejected(
                f"This .zip file holds {len(members)} model files; one job can have up to {max_models} more."
            )
        unpacked: list[UnpackedModel] = []
        try:
            for name, info in members:
                unpacked.append(UnpackedModel(name, _unpack(archive, info, temp_dir, max_file_bytes)))
        except ZIP_ERRORS:
            for model in unpacked:
                model.received.discard()
            raise ModelRejected("This .zip file is damaged or isn't a zip archive.") from None
        except BaseException:
            for model in unpacked:
                model.received.discard()
            raise
    return unpacked


def _unpack(archive: zipfile.ZipFile, info: zipfile.ZipInfo, temp_dir: Path, limit: int) -> ReceivedFile:
    """One member streamed to a new file in `temp_dir`, hashed on the way; never more than `limit`
    bytes nor more than its declared size (zipfile stops there and checks the CRC)."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    target = temp_dir / f"upload-{secrets.token_hex(8)}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with archive.open(info) as member, open(target, "xb") as out:
            while chunk := member.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ModelRejected(f"A file in this .zip file is more than {limit // MiB} MB.")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return ReceivedFile(path=target, sha256=digest.hexdigest(), size=size)
