"""Content checks on an uploaded model file before it becomes a job: is it really the STL, OBJ, 3MF or STEP it claims?"""

from __future__ import annotations

import itertools
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO
from xml.etree import ElementTree

MiB = 1024 * 1024
DEFAULT_MAX_UNCOMPRESSED = 256 * MiB
#: Deflate can reach ~1000:1 on junk; real 3MF parts (XML meshes, configs, PNG thumbnails) stay
#: far below 100:1, so anything above it is treated as a zip bomb.
MAX_COMPRESSION_RATIO = 100
#: Members smaller than this can't hurt whatever their ratio (a 10 KB config of repeated lines).
RATIO_FLOOR_BYTES = 64 * 1024
#: zipfile builds one object per member from the central directory; a 50 MB upload could hold
#: about a million empty members, so the count is checked before zipfile reads it.
MAX_ZIP_MEMBERS = 10_000
#: How much of a text file's start and end is read to recognise it.
SNIFF_BYTES = 8 * 1024
#: How much of a 3MF model part is inflated to find its <model> element (after any metadata).
MODEL_SNIFF_BYTES = 64 * 1024

#: The model files this module can check (the catalog's accepted types are among them).
STEP_EXTENSIONS = (".step", ".stp")
MODEL_EXTENSIONS = (".stl", ".obj", ".3mf", *STEP_EXTENSIONS)
#: The first line of every STEP file (ISO 10303-21, the "clear text encoding" CAD programs export).
STEP_START = b"ISO-10303-21;"
STEP_END = b"END-ISO-10303-21;"

STL_HEADER = 80
STL_PREFIX = STL_HEADER + 4  # header + uint32 triangle count
STL_RECORD = 50  # normal, 3 vertices (12 float32) and a uint16 attribute

#: What reading a damaged or hostile zip member can raise (bad CRC, corrupt deflate stream,
#: truncated data, an unsupported or encrypted compression method).
ZIP_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)

MODEL_RELATIONSHIP = "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"
_MODEL_PART = re.compile(r"^3d/[^/]+\.model$", re.IGNORECASE)

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\xd0\xcf\x11\xe0", "an Office document"),
    (b"GCDE", "binary G-code"),
)


class ModelRejected(Exception):
    """The upload isn't a usable model of the claimed type; str(error) is a message for the student."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class ModelInfo:
    """What the content check learned about an accepted file."""

    kind: str  # "stl-binary", "stl-ascii", "obj", "3mf" or "step"
    triangles: int | None = None  # known cheaply for binary STL only
    model_part: str | None = None  # 3MF: the zip member holding the root model


def normalise_extension(extension: str) -> str:
    """'.STL', 'stl' → '.stl'."""
    extension = extension.strip().lower()
    return extension if extension.startswith(".") else f".{extension}"


def check_model(
    path: Path, extension: str, *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED
) -> ModelInfo:
    """Check that the file at `path` really is a model of the type its extension claims.

    Reads only what it needs (STL: the header and size; ASCII STL: the first and last few KB; OBJ:
    streamed in chunks until vertices and a face are seen; 3MF: the zip directory, the package
    relationships and the start of the model part). Raises ModelRejected with a message a student
    understands; OSError if the file can't be read at all.
    """
    ext = normalise_extension(extension)
    if ext not in MODEL_EXTENSIONS:
        raise ModelRejected("Only .stl, .obj, .3mf, .step and .stp files are accepted.")
    size = path.stat().st_size
    if size == 0:
        raise ModelRejected("This file is empty.")
    with path.open("rb") as file:
        head = file.read(SNIFF_BYTES)
        if ext == ".stl":
            return _check_stl(file, head, size)
        if ext == ".obj":
            return _check_obj(file, head, size)
        if ext in STEP_EXTENSIONS:
            return _check_step(file, head, size, ext)
    return _check_3mf(path, head, size, max_uncompressed_bytes)


# -- sniffing ----------------------------------------------------------------------------------


def _foreign_type(head: bytes) -> str | None:
    """'a PNG image' when the bytes start with another well-known format's signature."""
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return name
    return None


_TEXT_BYTES = bytes([9, 10, 12, 13, *range(32, 256)])


def _looks_like_text(sample: bytes) -> bool:
    """No NUL bytes and almost only printable characters or whitespace (any 8-bit encoding)."""
    if not sample or b"\x00" in sample:
        return False
    control = len(sample.translate(None, _TEXT_BYTES))
    return control <= len(sample) // 100


def _looks_like_obj(text_head: bytes) -> bool:
    return re.search(rb"(?m)^[ \t]*v[ \t]+[-+.\d]", text_head) is not None


def _not_a_model(ext: str, what: str) -> ModelRejected:
    return ModelRejected(f"This {ext} file isn't a 3D model (it looks like {what}).")


def _binary_stl_fits(head: bytes, size: int) -> int | None:
    """The triangle count when the size matches a binary STL of that many triangles, else None.

    A few trailing bytes (< one record) are allowed: some writers (numpy-stl) end with a newline.
    """
    if size < STL_PREFIX or len(head) < STL_PREFIX:
        return None
    (count,) = struct.unpack_from("<I", head, STL_HEADER)
    expected = STL_PREFIX + STL_RECORD * count
    if count > 0 and expected <= size < expected + STL_RECORD:
        return count
    return None


# -- STL ---------------------------------------------------------------------------------------


def _check_stl(file: IO[bytes], head: bytes, size: int) -> ModelInfo:
    foreign = _foreign_type(head)
    if foreign:
        if foreign == "a ZIP archive":
            raise ModelRejected(
                "This .stl file is really a ZIP archive (a 3MF project?). "
                "Upload the model itself, or name a 3MF file .3mf."
            )
        raise _not_a_model(".stl", foreign)

    # Size first: binary STL headers are free text and often begin with "solid" (see the
    # rear_case and HalfDonut fixtures), but an ASCII file can't match 84 + 50·n by accident,
    # because bytes 80–83 of text read as a count of hundreds of millions.
    count = _binary_stl_fits(head, size)
    if count is not None:
        return ModelInfo("stl-binary", count)

    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:5].lower() == b"solid" and _looks_like_text(head):
        return _check_ascii_stl(file, head, size)
    if _looks_like_text(head):
        if _looks_like_obj(head):
            raise ModelRejected(
                "This .stl file looks like an OBJ model. Rename it to .obj and upload it again."
            )
        raise _not_a_model(".stl", "text")
    if size < STL_PREFIX:
        raise ModelRejected("This .stl file is too short to hold a 3D model.")

    (declared,) = struct.unpack_from("<I", head, STL_HEADER)
    if declared == 0:
        raise ModelRejected("This STL file has no triangles in it.")
    held = (size - STL_PREFIX) // STL_RECORD
    if held < declared:
        raise ModelRejected(
            f"This STL file is cut short: it says it has {declared:,} triangles but holds only {held:,}. "
            "Export it again from your design program."
        )
    raise ModelRejected(
        f"This STL file is damaged: it says it has {declared:,} triangles but is "
        f"{size - STL_PREFIX - STL_RECORD * declared:,} bytes longer than that. Export it again."
    )


def _check_ascii_stl(file: IO[bytes], head: bytes, size: int) -> ModelInfo:
    file.seek(max(0, size - SNIFF_BYTES))
    tail = file.read(SNIFF_BYTES).lower()
    lower = head.lower()
    has_facet = b"facet" in lower and b"vertex" in lower
    if not has_facet:
        if b"endsolid" in lower and size <= SNIFF_BYTES:
            raise ModelRejected("This STL file has no triangles in it.")
        raise ModelRejected("This .stl file starts like an STL model but holds no triangles we can read.")
    if b"endsolid" not in tail:
        raise ModelRejected(
            "This STL file is cut short: it ends before its last “endsolid” line. Export it again."
        )
    return ModelInfo("stl-ascii")


# -- STEP --------------------------------------------------------------------------------------


def _check_step(file: IO[bytes], head: bytes, size: int, ext: str) -> ModelInfo:
    """A STEP file is text that starts with ISO-10303-21; and ends with END-ISO-10303-21;."""
    foreign = _foreign_type(head)
    if foreign:
        if foreign == "a ZIP archive":
            raise ModelRejected(
                f"This {ext} file is a ZIP archive (a compressed STEP file?). Export it from your CAD "
                "program as a plain STEP file, or as STL or 3MF."
            )
        raise _not_a_model(ext, foreign)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(STEP_START):
        if _looks_like_text(head) and stripped.lstrip().startswith(b"<"):
            raise ModelRejected(
                f"This {ext} file is STEP written as XML, which we can't read. Export it as a standard "
                "STEP file (AP203, AP214 or AP242), or as STL or 3MF."
            )
        what = "text" if _looks_like_text(head) else "another kind of file"
        raise ModelRejected(
            f"This {ext} file isn't a STEP model (it looks like {what}). Export your model from your CAD "
            "program as STEP, STL or 3MF and upload that file."
        )
    if b"DATA;" not in head and size <= SNIFF_BYTES:
        raise ModelRejected("This STEP file has no shapes in it. Export it again from your CAD program.")
    file.seek(max(0, size - SNIFF_BYTES))
    if STEP_END not in file.read(SNIFF_BYTES):
        raise ModelRejected(
            "This STEP file is cut short: it ends before its last “END-ISO-10303-21;” line. Export it again."
        )
    return ModelInfo("step")


# -- OBJ ---------------------------------------------------------------------------------------

_OBJ_VERTEX = re.compile(rb"(?m)^[ \t]*v[ \t]+[-+.\d]")
_OBJ_FACE = re.compile(rb"(?m)^[ \t]*f[ \t]+[-+\d]")
_CHUNK = MiB
#: A "line" longer than this is searched as it is rather than carried over (bounds memory).
_MAX_LINE = 4 * MiB


def _scan_obj(lines: bytes, vertices: int, face: bool) -> tuple[int, bool]:
    """Vertex lines seen (counting stops at 3) and whether a face line was seen, after `lines`."""
    if vertices < 3:
        vertices += sum(1 for _ in itertools.islice(_OBJ_VERTEX.finditer(lines), 3 - vertices))
    return vertices, face or _OBJ_FACE.search(lines) is not None


def _check_obj(file: IO[bytes], head: bytes, size: int) -> ModelInfo:
    foreign = _foreign_type(head)
    if foreign:
        raise _not_a_model(".obj", foreign)
    if not _looks_like_text(head):
        if _binary_stl_fits(head, size) is not None:
            raise ModelRejected(
                "This .obj file looks like an STL model. Rename it to .stl and upload it again."
            )
        raise ModelRejected("This .obj file isn't a 3D model (it isn't a text file).")

    # Streamed in chunks, searching complete lines only, and stopping as soon as the file has
    # shown three vertices and a face: exporters write every vertex first, so a big file is
    # read to its faces, but never held in memory.
    vertices, face = 0, False
    carry = b""
    file.seek(0)
    for chunk in iter(lambda: file.read(_CHUNK), b""):
        if b"\x00" in chunk:
            raise ModelRejected("This .obj file is damaged: it contains binary data.")
        block = carry + chunk
        cut = block.rfind(b"\n") + 1
        if cut == 0 and len(block) <= _MAX_LINE:
            carry = block
            continue
        cut = cut or len(block)
        vertices, face = _scan_obj(block[:cut], vertices, face)
        carry = block[cut:]
        if vertices >= 3 and face:
            return ModelInfo("obj")
    vertices, face = _scan_obj(carry, vertices, face)
    if vertices >= 3 and face:
        return ModelInfo("obj")
    if vertices >= 3:
        raise ModelRejected(
            "This OBJ file has points but no faces, so there is no surface to print. "
            "Export it again as a mesh."
        )
    if vertices or face:
        raise ModelRejected("This OBJ file has too few vertices to make a 3D model.")
    if head.lstrip()[:5].lower() == b"solid":
        raise ModelRejected("This .obj file looks like an STL model. Rename it to .stl and upload it again.")
    raise _not_a_model(".obj", "text")


# -- 3MF ---------------------------------------------------------------------------------------

_DAMAGED_3MF = "This .3mf file is damaged or isn't a 3MF project."


def _zip_member_count(file: IO[bytes], size: int) -> int | None:
    """Entries declared by the zip's end-of-central-directory record (None if it can't be found)."""
    tail_size = min(size, 22 + 65535)  # the record plus the longest possible comment
    file.seek(size - tail_size)
    tail = file.read(tail_size)
    # The record's comment runs to the end of the file: a signature that happens to sit inside
    # the comment fails that test, so keep looking further back.
    at = tail.rfind(b"PK\x05\x06")
    while at >= 0 and not (
        at + 22 <= len(tail) and at + 22 + struct.unpack_from("<H", tail, at + 20)[0] == len(tail)
    ):
        at = tail.rfind(b"PK\x05\x06", 0, at)
    if at < 0:
        return None
    (count,) = struct.unpack_from("<H", tail, at + 10)
    if count == 0xFFFF and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        # ZIP64: the locator points at the ZIP64 end record, which holds the real count.
        (offset,) = struct.unpack_from("<Q", tail, at - 20 + 8)
        if offset + 56 > size:
            return None
        file.seek(offset)
        record = file.read(56)
        if record[:4] != b"PK\x06\x06":
            return None
        (count,) = struct.unpack_from("<Q", record, 32)
    return count


def unsafe_member_name(name: str) -> bool:
    """True for a zip member name that is absolute, has a drive, a '..' part or a NUL byte."""
    if not name or "\x00" in name:
        return True
    normal = name.replace("\\", "/")
    if normal.startswith("/") or re.match(r"^[A-Za-z]:", normal):
        return True
    return any(part == ".." for part in normal.split("/"))


def _damaged(what: str) -> str:
    return _DAMAGED_3MF if what == ".3mf" else f"This {what} file is damaged or isn't a zip archive."


def check_zip_members(archive: zipfile.ZipFile, max_uncompressed_bytes: int, *, what: str = ".3mf") -> None:
    """Refuse path tricks, encryption, duplicates, too much data in total, and zip-bomb ratios.

    Uses the sizes the central directory declares; read_member() enforces them while reading.
    `what` names the file in the messages (".3mf", or ".zip" for a zip of models). Raises ModelRejected.
    """
    total = 0
    seen: set[str] = set()
    cap_mb = max_uncompressed_bytes // MiB
    real = "real 3MF files" if what == ".3mf" else "model files"
    for info in archive.infolist():
        name = info.filename
        if unsafe_member_name(name):
            raise ModelRejected(f"This {what} file is unsafe: it contains a file named {name[:80]!r}.")
        folded = name.lower()
        if folded in seen:
            raise ModelRejected(_damaged(what))
        seen.add(folded)
        if info.flag_bits & 0x1:
            raise ModelRejected(f"This {what} file is password-protected; save it again without a password.")
        total += info.file_size
        if total > max_uncompressed_bytes:
            raise ModelRejected(
                f"This {what} file unpacks to more than {cap_mb} MB; that's more than any model we print. "
                "Remove extra objects or export only the model."
            )
        if info.file_size > RATIO_FLOOR_BYTES and (
            info.compress_size == 0 or info.file_size / info.compress_size > MAX_COMPRESSION_RATIO
        ):
            raise ModelRejected(
                f"This {what} file looks like a zip bomb: {name[:80]!r} is compressed more than "
                f"{MAX_COMPRESSION_RATIO}:1, which {real} never are."
            )


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The member's bytes, never more than `limit` nor more than its declared size.

    Raises ModelRejected when the member is larger than `limit`, and one of ZIP_ERRORS when it
    is damaged (e.g. zipfile.BadZipFile for a member that inflates to more than it declared).
    """
    info = archive.getinfo(name)
    if info.file_size > limit:
        raise ModelRejected(_DAMAGED_3MF)
    with archive.open(info) as member:
        # zipfile stops at the declared size and checks the CRC at the end, so a member whose
        # data inflates beyond its header's claim fails instead of filling memory.
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ModelRejected(_DAMAGED_3MF)
    return data


@contextmanager
def open_3mf(
    path: Path, *, max_uncompressed_bytes: int = DEFAULT_MAX_UNCOMPRESSED
) -> Iterator[zipfile.ZipFile]:
    """The 3MF's zip, opened read-only after the member count and member checks.

    Raises ModelRejected (not a zip, too many members, unsafe names, bomb ratios, over the cap).
    """
    with open_checked_zip(path, what=".3mf", max_uncompressed_bytes=max_uncompressed_bytes) as archive:
        yield archive


@contextmanager
def open_checked_zip(path: Path, *, what: str, max_uncompressed_bytes: int) -> Iterator[zipfile.ZipFile]:
    """A zip (a 3MF, or a .zip of models) opened read-only after the member count and member checks.

    Raises ModelRejected, its messages naming the file by `what`.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        count = _zip_member_count(file, size)
        if count is None:
            raise ModelRejected(_damaged(what))
        if count > MAX_ZIP_MEMBERS:
            never = "a 3MF project never needs" if what == ".3mf" else "no job of models needs"
            raise ModelRejected(f"This {what} file holds {count:,} files; {never} that many.")
        file.seek(0)
        try:
            archive = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
            raise ModelRejected(_damaged(what)) from None
        with archive:
            check_zip_members(archive, max_uncompressed_bytes, what=what)
            yield archive


def find_model_part(archive: zipfile.ZipFile) -> str:
    """The zip member holding the 3MF root model: the package relationship's target, or 3D/*.model.

    Part names compare case-insensitively, as the OPC specification says. Raises ModelRejected.
    """
    by_folded = {name.lower(): name for name in archive.namelist()}
    rels = by_folded.get("_rels/.rels")
    if rels is not None:
        target = _relationship_target(read_member(archive, rels, MiB))
        if target is not None:
            name = by_folded.get(target.lower())
            if name is not None:
                return name
    candidates = sorted(name for name in archive.namelist() if _MODEL_PART.match(name))
    for name in candidates:  # the conventional name first, as most writers use it
        if name.lower() == "3d/3dmodel.model":
            return name
    if candidates:
        return candidates[0]
    raise ModelRejected(_DAMAGED_3MF)


_DTD_3MF = (
    "This .3mf file declares a DTD (a <!DOCTYPE> or <!ENTITY> block), which 3MF files may not. "
    "Export it again from your design program."
)


def _declares_dtd(data: bytes) -> bool:
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


def _relationship_target(data: bytes) -> str | None:
    """The part the package's 3D-model relationship points at (leading '/' removed), if any.

    Raises ModelRejected for a relationships part that declares a DTD (OPC forbids them).
    """
    if _declares_dtd(data):
        raise ModelRejected(_DTD_3MF)
    try:
        root = ElementTree.fromstring(data)  # noqa: S314 - no DTD (checked above), ≤ 1 MiB
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Relationship" and element.get("Type") == MODEL_RELATIONSHIP:
            target = element.get("Target", "")
            posix = PurePosixPath(target.lstrip("/"))
            return None if unsafe_member_name(str(posix)) else str(posix)
    return None


def _check_3mf(path: Path, head: bytes, size: int, max_uncompressed_bytes: int) -> ModelInfo:
    if not head.startswith(b"PK\x03\x04"):
        foreign = _foreign_type(head)
        if foreign and foreign != "a ZIP archive":
            raise _not_a_model(".3mf", foreign)
        if _binary_stl_fits(head, size) is not None or head.lstrip()[:5].lower() == b"solid":
            raise ModelRejected(
                "This .3mf file looks like an STL model. Rename it to .stl and upload it again."
            )
        if _looks_like_text(head):
            raise _not_a_model(".3mf", "text")
        raise ModelRejected(_DAMAGED_3MF)
    with open_3mf(path, max_uncompressed_bytes=max_uncompressed_bytes) as archive:
        try:
            part = find_model_part(archive)
            with archive.open(part) as member:
                start = member.read(MODEL_SNIFF_BYTES)
        except ZIP_ERRORS:
            raise ModelRejected(_DAMAGED_3MF) from None
    root = re.search(rb"<(?:[A-Za-z_][\w.-]*:)?model[\s>]", start)
    if not root:
        raise ModelRejected(_DAMAGED_3MF)
    # A DTD can only come before the root element; the analysis would refuse it later, after the
    # student had gone, so it is refused here while they still see the form.
    if _declares_dtd(start[: root.start()]):
        raise ModelRejected(_DTD_3MF)
    return ModelInfo("3mf", model_part=part)
