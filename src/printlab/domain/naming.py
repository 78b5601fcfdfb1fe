"""The stored-file naming convention of SPEC §3: FirstAndLastName_PrintMethod_Color_SimpleJobID.ext."""

from __future__ import annotations

import re
import unicodedata
import uuid
from pathlib import PurePosixPath

SIMPLE_ID_LENGTH = 6
#: Used when a name has no letters or digits left after cleaning (emoji only, non-Latin script).
FALLBACK_PERSON = "Student"
_MAX_PART = 60
_WORD = re.compile(r"[A-Za-z0-9]+")
#: Typographic apostrophes, which folding to ASCII would drop instead of treating as punctuation.
_APOSTROPHES = re.compile("[\u2018\u2019\u02bc]")


def new_job_id() -> str:
    """A job id: uuid4 in hex, as the seed requires."""
    return uuid.uuid4().hex


def simple_job_id(job_id: str, length: int = SIMPLE_ID_LENGTH) -> str:
    """The short id people read aloud: the first `length` hex characters of the job id."""
    return job_id[:length]


def simple_id_in_name(display_name: str | None, job_id: str) -> str:
    """The simple id people know a job by: the one its stored name ends with, fixed at submission (the
    dashboard's), else the first characters of its id."""
    if display_name and "_" in display_name:
        return display_name.rsplit("_", 1)[-1].split(".", 1)[0]
    return simple_job_id(job_id)


def name_part(text: str, fallback: str = "") -> str:
    """'josé o'brien-smith' → 'JoseOBrienSmith': ASCII letters and digits, each word capitalised.

    Accents are folded to their base letter; apostrophes (straight or typographic), hyphens,
    spaces and other punctuation split words, so "o'brien" → "OBrien" like "O'Brien". Shared
    drives and slicers on every lab computer cope with plain ASCII names, which is why nothing
    else survives.
    """
    folded = unicodedata.normalize("NFKD", _APOSTROPHES.sub("'", text))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    words = _WORD.findall(ascii_only)
    joined = "".join(w[0].upper() + w[1:] for w in words)
    return joined[:_MAX_PART] or fallback


def extension_of(filename: str) -> str:
    """The lower-case extension with its dot ('.stl'), or '' when there is none.

    Compound slicer extensions are kept whole ('.gcode.3mf').
    """
    name = PurePosixPath(filename.replace("\\", "/")).name.lower()
    for compound in (".gcode.3mf",):
        if name.endswith(compound):
            return compound
    suffix = PurePosixPath(name).suffix
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ""


def stored_base_name(student_name: str, print_method: str, color: str, simple_id: str) -> str:
    """The stored name without extension, e.g. 'JaneDoe_Filament_TrueRed_a1b2c3'."""
    return "_".join(
        (
            name_part(student_name, FALLBACK_PERSON),
            name_part(print_method, "Method"),
            name_part(color, "Color"),
            simple_id,
        )
    )


def stored_file_name(student_name: str, print_method: str, color: str, simple_id: str, original: str) -> str:
    """The full stored name with the original file's lower-case extension."""
    return stored_base_name(student_name, print_method, color, simple_id) + extension_of(original)


def sidecar_name(stored_name: str) -> str:
    """'<stored name>.metadata.json', the sidecar that sits beside a job's files."""
    return f"{stored_name}.metadata.json"


# -- the parts of a job (issue 13) ------------------------------------------------------------------
#: The suffix after the job's stored name that marks one of its parts: "_p2" … "_p10".
_PART_SUFFIX = re.compile(r"_p([1-9][0-9]?)$")


def part_suffix(number: int) -> str:
    """'' for a job's first part (it keeps the job's own name), '_p2' for the second, and so on."""
    if number < 1:
        raise ValueError(f"part numbers start at 1, not {number}")
    return "" if number == 1 else f"_p{number}"


def part_file_name(base_name: str, number: int, original: str) -> str:
    """'JaneDoe_Filament_TrueRed_a1b2c3_p2.stl': a part's stored name, with its own file's extension."""
    return f"{base_name}{part_suffix(number)}{extension_of(original)}"


def part_number_of(stored_name: str, base_name: str) -> int | None:
    """The part a stored file name is (1 for the job's own name), or None when it is no part's name.

    'JaneDoe_…_a1b2c3.stl' → 1, 'JaneDoe_…_a1b2c3_p2.stl' → 2, 'JaneDoe_…_a1b2c3.gcode' → 1 (its
    extension is not judged here), 'JaneDoe_…_a1b2c3_v2.stl' → None.
    """
    if not stored_name.startswith(base_name):
        return None
    end = len(stored_name) - len(extension_of(stored_name))
    stem = stored_name[len(base_name) : end] if end >= len(base_name) else None
    if stem is None:
        return None
    if stem == "":
        return 1
    found = _PART_SUFFIX.fullmatch(stem)
    return int(found.group(1)) if found and int(found.group(1)) >= 2 else None
