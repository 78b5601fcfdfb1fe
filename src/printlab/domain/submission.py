"""Validation of a student's submission form (SPEC §3), as pure rules over the lab catalog."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of
from printlab.domain.text import BIDI_CONTROLS, MAX_EMAIL, TextError, clean_text, is_email

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f" + "".join(sorted(BIDI_CONTROLS)) + "]")
MAX_FILENAME = 256
NAME_LENGTH = (2, 100)
MAX_EMAIL_LENGTH = MAX_EMAIL
MAX_CLASS_NUMBER = 50
#: The fields in the order the form shows them (its error list follows it).
FORM_ORDER = (
    "student_name",
    "student_email",
    "discipline",
    "class_number",
    "print_method",
    "color",
    "printer",
    "file",
    "acknowledged_minimum_charge",
)
#: The messages for the rules a browser can check too; the form carries them for its script.
MESSAGES = {
    "student_name": "Enter your full name (2 to 100 characters).",
    "student_email.missing": "Enter your email address.",
    "student_email": "Enter a valid email address, like name@university.edu.",
    "discipline": "Choose your discipline from the list.",
    "class_number.missing": "Enter your class number, or N/A.",
    "class_number": "Class number can be at most 50 characters.",
    "print_method": "Choose a print method.",
    "color": "Choose a color available for {method}.",
    "printer": "Choose a {method} printer.",
    "file.missing": "Choose your model file.",
    "acknowledged_minimum_charge": "Tick the box to accept the minimum charge.",
}
#: What the form calls each field, for the messages.
LABELS = {
    "student_name": "Your name",
    "student_email": "Your email address",
    "discipline": "Discipline",
    "class_number": "Class number",
    "print_method": "Print method",
    "color": "Color",
    "printer": "Printer",
}


#: Files that travel with a model but that the lab never needs, and what each one is.
NOT_NEEDED: dict[str, str] = {".mtl": "a material file (the colours of an OBJ model)"}


def not_needed_message(extension: str, catalog: Catalog) -> str | None:
    """What to tell a student who chose a file of this extension instead of the model, or None."""
    what = NOT_NEEDED.get(extension.lower())
    if what is None:
        return None
    allowed = ", ".join(catalog.model_extensions)
    return (
        f"A {extension.lower()} file is {what}: you don't need to send it. "
        f"Choose your model file ({allowed}) instead."
    )


def choose_model_file(filenames: Sequence[str], catalog: Catalog) -> tuple[int, list[str]]:
    """Of the files sent in one submission: (index of the one to check, names of files left out).

    When one model came with files the lab doesn't need (an OBJ and its .mtl), the model is chosen
    and the others are left out; otherwise nothing is guessed and the first file is checked as sent.
    """
    chosen, left_out = choose_model_files(filenames, catalog)
    return (chosen[0], left_out) if len(chosen) == 1 else (0, [])


def choose_model_files(filenames: Sequence[str], catalog: Catalog) -> tuple[list[int], list[str]]:
    """Of the files sent for one job: (indexes of the files to check, in order; names of files left out).

    When models (or a .zip of them) came with files the lab doesn't need (an OBJ's .mtl), those are
    left out; otherwise nothing is guessed and every file is checked as sent.
    """
    extensions = [extension_of(last_part(name)) for name in filenames]
    models = [
        i for i, ext in enumerate(extensions) if ext in catalog.model_extensions or ext == ZIP_EXTENSION
    ]
    extras = [i for i, ext in enumerate(extensions) if ext in NOT_NEEDED]
    if not models or not extras or len(models) + len(extras) != len(filenames):
        return list(range(len(filenames))), []
    return models, [clean_filename(filenames[i]) for i in extras]


def left_out_message(left_out: Sequence[str], model: str) -> str:
    """The note after a submission that came with files the lab doesn't need."""
    reasons = "; ".join(f"{name}: it is {NOT_NEEDED[extension_of(name)]}" for name in left_out)
    return f"You don't need to send {reasons}. We kept your model, {model}."


@dataclass(frozen=True)
class Submission:
    student_name: str
    student_email: str
    discipline: str
    class_number: str
    print_method: str
    color: str
    printer: str
    acknowledged_minimum_charge: bool
    original_filename: str


def _text(data: Mapping[str, object], key: str, errors: dict[str, str]) -> str:
    """The field's answer with inner whitespace collapsed; "" (and a message) when it breaks the text rule."""
    try:
        value = clean_text(data.get(key), LABELS[key])
    except TextError as exc:
        errors[key] = str(exc)
        return ""
    return " ".join(value.split())


def last_part(filename: str) -> str:
    """The last path part of an uploaded file's name (browsers on Windows may send the whole path)."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1]


def clean_filename(filename: str) -> str:
    """The last path part of an uploaded file's name, without control or bidi characters, at most 256 long."""
    name = _UNSAFE.sub("", last_part(filename)).strip()
    if len(name) > MAX_FILENAME:
        ext = extension_of(name)
        name = name[: MAX_FILENAME - len(ext)] + ext
    return name


def validate_submission(
    data: Mapping[str, object], filename: str, catalog: Catalog, *, zip_allowed: bool = False
) -> tuple[Submission | None, dict[str, str]]:
    """Check every field; returns (submission, {}) or (None, {field: message a student understands}).

    `filename` is the (first) model file's; with `zip_allowed` it may be a .zip of models.
    """
    errors: dict[str, str] = {}
    name = _text(data, "student_name", errors)
    if "student_name" in errors:
        pass
    elif not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        errors["student_name"] = MESSAGES["student_name"]
    email = _text(data, "student_email", errors).lower()
    if "student_email" in errors:
        pass
    elif not email:
        errors["student_email"] = MESSAGES["student_email.missing"]
    elif not is_email(email):
        errors["student_email"] = MESSAGES["student_email"]
    discipline = _text(data, "discipline", errors)
    if "discipline" not in errors and discipline not in catalog.disciplines:
        errors["discipline"] = MESSAGES["discipline"]
    class_number = _text(data, "class_number", errors)
    if "class_number" in errors:
        pass
    elif not class_number:
        errors["class_number"] = MESSAGES["class_number.missing"]
    elif len(class_number) > MAX_CLASS_NUMBER:
        errors["class_number"] = MESSAGES["class_number"]
    method_name = _text(data, "print_method", errors)
    method = catalog.method(method_name)
    if "print_method" not in errors and method is None:
        errors["print_method"] = MESSAGES["print_method"]
    color = _text(data, "color", errors)
    if "color" not in errors and method is not None and color not in method.colors:
        errors["color"] = MESSAGES["color"].format(method=method.name)
    printer_name = _text(data, "printer", errors)
    printer = catalog.printer(printer_name)
    if "printer" not in errors and method is not None and (printer is None or printer.method != method.name):
        errors["printer"] = MESSAGES["printer"].format(method=method.name)
    acknowledged = str(data.get("acknowledged_minimum_charge", "")).lower() in ("1", "true", "on", "yes")
    if not acknowledged:
        errors["acknowledged_minimum_charge"] = MESSAGES["acknowledged_minimum_charge"]
    original, problem = checked_file_name(filename, catalog, zip_allowed=zip_allowed)
    if problem:
        errors["file"] = problem
    if errors:
        return None, in_form_order(errors)
    return (
        Submission(name, email, discipline, class_number, method_name, color, printer_name, True, original),
        {},
    )


def checked_file_name(
    filename: str | None, catalog: Catalog, *, zip_allowed: bool = False
) -> tuple[str, str | None]:
    """(the file's cleaned name, None) or ("", what is wrong with its name or type, for the student).

    `zip_allowed`: a .zip of models may stand in for the models (the parts of one job).
    """
    try:
        clean_text(last_part(filename or ""), "Your file's name")
    except TextError as exc:
        return "", f"{exc.field_label} contains {exc.reason}. Rename the file and choose it again."
    original = clean_text(clean_filename(filename or ""), "Your file's name")
    extension = extension_of(original)
    if not original:
        return "", MESSAGES["file.missing"]
    if material := not_needed_message(extension, catalog):
        return "", material
    if extension not in catalog.model_extensions and not (zip_allowed and extension == ZIP_EXTENSION):
        allowed = ", ".join(catalog.model_extensions)
        return "", f"Upload a model file ({allowed})." + (
            " Several parts may come in a .zip." if zip_allowed else ""
        )
    return original, None


# -- the parts of one job (issue 13) -----------------------------------------------------------
#: The most model files one job may have (a .zip counts as the models inside it).
MAX_PARTS = 10
#: The most copies of one part a student may ask for.
MAX_COPIES = 20
#: A .zip of model files, unpacked into the job's parts with the 3MF safety rules.
ZIP_EXTENSION = ".zip"
MiB = 1024 * 1024


def read_copies(text: object) -> int | None:
    """The number of copies typed for a part: a whole number 1…MAX_COPIES, "" meaning 1; None otherwise."""
    value = str(text if text is not None else "").strip()
    if value == "":
        return 1
    if not value.isascii() or not value.isdigit() or len(value) > 3:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_COPIES else None


def copies_message(name: str) -> str:
    return f"Copies of {name}: enter a whole number from 1 to {MAX_COPIES}."


def too_many_parts_message(count: int) -> str:
    return (
        f"One job can have up to {MAX_PARTS} model files; you chose {count}. "
        "Send the others as another job, or join parts in your design program."
    )


def _megabytes(size: int) -> str:
    return f"{size / MiB:.1f} MB"


def parts_problem(names: Sequence[str], sizes: Sequence[int], catalog: Catalog) -> str | None:
    """What is wrong with a job's model files as a whole (their count and sizes), or None.

    Each file may be at most the catalog's upload limit, and all of them together its job limit.
    """
    if len(names) > MAX_PARTS:
        return too_many_parts_message(len(names))
    file_limit = catalog.upload_limit_mb * MiB
    for name, size in zip(names, sizes, strict=True):
        if size > file_limit:
            return f"{name} is {_megabytes(size)}; each file can be up to {catalog.upload_limit_mb} MB."
    total = sum(sizes)
    if total > catalog.job_upload_limit_mb * MiB:
        return (
            f"Your files add up to {_megabytes(total)}; one job can be up to "
            f"{catalog.job_upload_limit_mb} MB. Send the others as another job."
        )
    return None


def same_file_message(first: str, second: str) -> str:
    return f"{first} and {second} are the same file. Send it once and set its copies instead."


def in_form_order(errors: dict[str, str]) -> dict[str, str]:
    """The messages in the order of the form's fields (anything else after them)."""
    rank = {name: index for index, name in enumerate(FORM_ORDER)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))
