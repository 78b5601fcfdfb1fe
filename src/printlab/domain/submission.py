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
    if len(filenames) < 2:
        return 0, []
    extensions = [extension_of(last_part(name)) for name in filenames]
    models = [i for i, ext in enumerate(extensions) if ext in catalog.model_extensions]
    extras = [i for i, ext in enumerate(extensions) if ext in NOT_NEEDED]
    if len(models) != 1 or len(models) + len(extras) != len(filenames):
        return 0, []
    return models[0], [clean_filename(filenames[i]) for i in extras]


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
    data: Mapping[str, object], filename: str, catalog: Catalog
) -> tuple[Submission | None, dict[str, str]]:
    """Check every field; returns (submission, {}) or (None, {field: message a student understands})."""
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
    original, problem = checked_model_name(filename, catalog)
    if problem:
        errors["file"] = problem
    if errors:
        return None, in_form_order(errors)
    return (
        Submission(name, email, discipline, class_number, method_name, color, printer_name, True, original),
        {},
    )


def checked_model_name(filename: str | None, catalog: Catalog) -> tuple[str, str | None]:
    """The model file's name as stored (last path part, checked text) and what is wrong with it, if
    anything: no file, a file the lab doesn't need, or a type the lab doesn't take."""
    try:
        clean_text(last_part(filename or ""), "Your file's name")
    except TextError as exc:
        return "", f"{exc.field_label} contains {exc.reason}. Rename the file and choose it again."
    original = clean_text(clean_filename(filename or ""), "Your file's name")
    if not original:
        return "", MESSAGES["file.missing"]
    if material := not_needed_message(extension_of(original), catalog):
        return original, material
    if extension_of(original) not in catalog.model_extensions:
        return original, f"Upload a model file ({', '.join(catalog.model_extensions)})."
    return original, None


def in_form_order(errors: dict[str, str]) -> dict[str, str]:
    """The messages in the order of the form's fields (anything else after them)."""
    rank = {name: index for index, name in enumerate(FORM_ORDER)}
    return dict(sorted(errors.items(), key=lambda item: rank.get(item[0], len(rank))))
