"""Validation of a student's submission form (SPEC §3), as pure rules over the lab catalog."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_FILENAME = 256


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


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    return " ".join(str(value).split()) if value is not None else ""


def clean_filename(filename: str) -> str:
    """The last path part of an uploaded file's name, without control characters, at most 256 long."""
    name = _CONTROL.sub("", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    if len(name) > MAX_FILENAME:
        ext = extension_of(name)
        name = name[: MAX_FILENAME - len(ext)] + ext
    return name


def validate_submission(
    data: Mapping[str, object], filename: str, catalog: Catalog
) -> tuple[Submission | None, dict[str, str]]:
    """Check every field; returns (submission, {}) or (None, {field: message a student understands})."""
    errors: dict[str, str] = {}
    name = _text(data, "student_name")
    if not 2 <= len(name) <= 100:
        errors["student_name"] = "Enter your full name (2 to 100 characters)."
    elif _CONTROL.search(name):
        errors["student_name"] = "Your name contains characters we can't use."
    email = _text(data, "student_email").lower()
    if not email:
        errors["student_email"] = "Enter your email address."
    elif len(email) > 100 or not _EMAIL.match(email):
        errors["student_email"] = "Enter a valid email address, like name@university.edu."
    discipline = _text(data, "discipline")
    if discipline not in catalog.disciplines:
        errors["discipline"] = "Choose your discipline from the list."
    class_number = _text(data, "class_number")
    if not class_number:
        errors["class_number"] = "Enter your class number, or N/A."
    elif len(class_number) > 50:
        errors["class_number"] = "Class number can be at most 50 characters."
    method_name = _text(data, "print_method")
    method = catalog.method(method_name)
    if method is None:
        errors["print_method"] = "Choose a print method."
    color = _text(data, "color")
    if method is not None and color not in method.colors:
        errors["color"] = f"Choose a color available for {method.name}."
    printer_name = _text(data, "printer")
    printer = catalog.printer(printer_name)
    if method is not None and (printer is None or printer.method != method.name):
        errors["printer"] = f"Choose a {method.name} printer."
    acknowledged = str(data.get("acknowledged_minimum_charge", "")).lower() in ("1", "true", "on", "yes")
    if not acknowledged:
        errors["acknowledged_minimum_charge"] = "Tick the box to accept the minimum charge."
    original = clean_filename(filename or "")
    if not original:
        errors["file"] = "Choose your model file."
    elif extension_of(original) not in catalog.model_extensions:
        allowed = ", ".join(catalog.model_extensions)
        errors["file"] = f"Upload a model file ({allowed})."
    if errors:
        return None, errors
    return (
        Submission(name, email, discipline, class_number, method_name, color, printer_name, True, original),
        {},
    )
