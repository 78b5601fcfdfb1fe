"""Reading an admin's catalog form, one section at a time, into validated catalog changes (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from printlab.domain.catalog import Catalog, LabDetails, Printer, PrintMethod
from printlab.domain.text import TextError, clean_text, is_email, is_plain_number

#: The most addresses the monthly summary goes to.
MAX_SUMMARY_EMAILS = 10
SECTIONS = ("disciplines", "reasons", "methods", "printers", "lab", "limits", "submissions")


class CatalogError(ValueError):
    """Form input that can't become part of the catalog; `errors` maps a field to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


#: What the form calls each field, for the messages (per-method fields are labelled by _label()).
LABELS = {
    "disciplines": "Disciplines",
    "rejection_reasons": "Rejection reasons",
    "name": "The lab's name",
    "pickup_location": "Pickup location",
    "opening_hours": "Opening hours",
    "contact_email": "Contact email",
    "summary_emails": "Monthly summary addresses",
    "time_zone": "Time zone",
    "new-name": "The new method's name",
    "new-description": "The new method's description",
    "new-colors": "The new method's colours",
}


def _label(field: str) -> str:
    if field in LABELS:
        return LABELS[field]
    kind, _, method = field.partition("-")
    return {"description": f"The description of {method}", "colors": f"The colours of {method}"}.get(
        kind, "This field"
    )


def _clean(value: object, field: str, *, multiline: bool = False, label: str | None = None) -> str:
    try:
        return clean_text(value, label or _label(field), multiline=multiline)
    except TextError as exc:
        raise CatalogError({field: str(exc)}) from None


def _lines(text: object, field: str, *, at_least: int = 1, longest: int = 100) -> tuple[str, ...]:
    items = tuple(
        dict.fromkeys(
            " ".join(line.split())
            for line in _clean(text, field, multiline=True).splitlines()
            if line.strip()
        )
    )
    if len(items) < at_least:
        raise CatalogError({field: f"Give at least {at_least} (one per line)."})
    too_long = [item for item in items if len(item) > longest]
    if too_long:
        raise CatalogError({field: f"“{too_long[0][:40]}…” is longer than {longest} characters."})
    return items


def _number(text: object, field: str, *, low: Decimal, high: Decimal) -> Decimal:
    written = str(text if text is not None else "").strip()
    if not is_plain_number(written):  # no 1e5, 1_000, NaN, Infinity or sign: digits and one point
        raise CatalogError({field: f"Enter a number from {low} to {high}, in digits (like 12.5)."})
    try:
        value = Decimal(written)
    except (InvalidOperation, ValueError):
        raise CatalogError({field: "Enter a number."}) from None
    if not value.is_finite() or not low <= value <= high:
        raise CatalogError({field: f"Enter a number from {low} to {high}."})
    return value


def _whole(text: object, field: str, *, low: int, high: int) -> int:
    value = _number(text, field, low=Decimal(low), high=Decimal(high))
    if value != value.to_integral_value():
        raise CatalogError({field: "Enter a whole number."})
    return int(value)


def _text(form: Mapping[str, Any], field: str, *, longest: int = 200, required: bool = True) -> str:
    value = " ".join(_clean(form.get(field, "") or "", field).split())
    if required and not value:
        raise CatalogError({field: "This can't be empty."})
    if len(value) > longest:
        raise CatalogError({field: f"Keep it under {longest} characters."})
    return value


def _getlist(form: Mapping[str, Any], field: str) -> Sequence[str]:
    getter = getattr(form, "getlist", None)
    values = getter(field) if getter else form.get(field, [])
    return [values] if isinstance(values, str) else list(values)


def parse_section(section: str, form: Mapping[str, Any], current: Catalog) -> dict[str, Any]:
    """The catalog fields one section of the admin form changes. Raises CatalogError."""
    if section == "disciplines":
        return {"disciplines": _lines(form.get("disciplines"), "disciplines")}
    if section == "reasons":
        return {"rejection_reasons": _lines(form.get("rejection_reasons"), "rejection_reasons", longest=200)}
    if section == "methods":
        return _methods(form, current)
    if section == "printers":
        return _printers(form, current)
    if section == "lab":
        return {"lab": _lab(form)}
    if section == "limits":
        return {
            "minimum_charge": _number(form.get("minimum_charge"), "minimum_charge", low=Decimal(0), high=Decimal(1000)).quantize(Decimal("0.01")),
            "upload_limit_mb": _whole(form.get("upload_limit_mb"), "upload_limit_mb", low=1, high=2000),
            "confirm_link_hours": _whole(form.get("confirm_link_hours"), "confirm_link_hours", low=1, high=24 * 30),
            "changes_reply_days": _whole(form.get("changes_reply_days", current.changes_reply_days), "changes_reply_days", low=1, high=365),
            "archive_after_days": _whole(form.get("archive_after_days"), "archive_after_days", low=1, high=3650),
            "prune_after_days": _whole(form.get("prune_after_days"), "prune_after_days", low=30, high=36500),
            **_job_upload_limit(form, current),
        }  # fmt: skip
    if section == "submissions":
        per_hour = _whole(form.get("submissions_per_hour"), "submissions_per_hour", low=1, high=1000)
        return {"submissions_per_hour": per_hour}
    raise CatalogError({"section": "Unknown part of the catalog."})


def _job_upload_limit(form: Mapping[str, Any], current: Catalog) -> dict[str, int]:
    """The whole job's upload limit; a form from before it existed leaves it as it is."""
    if form.get("job_upload_limit_mb") is None:
        return {}
    job = _whole(form.get("job_upload_limit_mb"), "job_upload_limit_mb", low=1, high=20000)
    per_file = form.get("upload_limit_mb")
    try:
        file_limit = _whole(per_file, "upload_limit_mb", low=1, high=2000)
    except CatalogError:
        return {"job_upload_limit_mb": job}  # the file limit's own message says what is wrong
    if job < file_limit:
        raise CatalogError({"job_upload_limit_mb": "A whole job can't be smaller than one file's limit."})
    return {"job_upload_limit_mb": job}


def _methods(form: Mapping[str, Any], current: Catalog) -> dict[str, Any]:
    methods = []
    for method in current.methods:
        key = method.name
        methods.append(
            PrintMethod(
                name=method.name,  # renaming would orphan every job's method; add a new one instead
                description=_text(form, f"description-{key}", longest=300),
                rate_per_gram=_number(form.get(f"rate-{key}"), f"rate-{key}", low=Decimal(0), high=Decimal(100)),
                colors=_lines(form.get(f"colors-{key}"), f"colors-{key}", longest=32),
                density_g_cm3=float(_number(form.get(f"density-{key}"), f"density-{key}", low=Decimal("0.1"), high=Decimal(25))),
            )
        )  # fmt: skip
    new_name = _text(form, "new-name", longest=32, required=False)
    if new_name:
        if any(m.name.lower() == new_name.lower() for m in methods):
            raise CatalogError({"new-name": f"There is already a method called {new_name}."})
        methods.append(
            PrintMethod(
                name=new_name,
                description=_text(form, "new-description", longest=300),
                rate_per_gram=_number(form.get("new-rate"), "new-rate", low=Decimal(0), high=Decimal(100)),
                colors=_lines(form.get("new-colors"), "new-colors", longest=32),
                density_g_cm3=float(_number(form.get("new-density") or "1.24", "new-density", low=Decimal("0.1"), high=Decimal(25))),
            )
        )  # fmt: skip
    return {"methods": tuple(methods)}


def _printers(form: Mapping[str, Any], current: Catalog) -> dict[str, Any]:
    names = _getlist(form, "printer-name")
    methods = _getlist(form, "printer-method")
    sizes = [_getlist(form, f"printer-{axis}") for axis in "xyz"]
    known = {m.name for m in current.methods}
    printers: list[Printer] = []
    for index, raw in enumerate(names):
        field = f"printer-{index}"
        name = " ".join(_clean(raw, field, label="Printer name").split())
        if not name:
            continue  # an emptied row removes that printer; the blank row adds nothing
        if len(name) > 64:
            raise CatalogError({field: "Printer names can be at most 64 characters."})
        method = methods[index] if index < len(methods) else ""
        if method not in known:
            raise CatalogError({field: f"Choose a print method for {name}."})
        volume = tuple(
            float(
                _number(axis[index] if index < len(axis) else "", field, low=Decimal(1), high=Decimal(5000))
            )
            for axis in sizes
        )
        if any(p.name.lower() == name.lower() for p in printers):
            raise CatalogError({field: f"{name} is listed twice."})
        printers.append(Printer(name, method, volume))  # type: ignore[arg-type]
    for method in known:
        if not any(p.method == method for p in printers):
            raise CatalogError(
                {"printers": f"Keep at least one {method} printer, or students can't choose {method}."}
            )
    return {"printers": tuple(printers)}


def _lab(form: Mapping[str, Any]) -> LabDetails:
    zone = _text(form, "time_zone", longest=64)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CatalogError({"time_zone": "Use a time zone name like America/Chicago."}) from None
    email = _text(form, "contact_email", longest=100)
    if not is_email(email):
        raise CatalogError({"contact_email": "Enter an email address, like lab@university.edu."})
    hold = _whole(form.get("hold_days"), "hold_days", low=1, high=365)
    reminder = _whole(form.get("pickup_reminder_days"), "pickup_reminder_days", low=1, high=365)
    final = _whole(
        form.get("final_reminder_days_before_hold_ends"),
        "final_reminder_days_before_hold_ends",
        low=0,
        high=365,
    )
    if reminder >= hold:
        raise CatalogError({"pickup_reminder_days": "The reminder must come before the hold period ends."})
    summary = [
        a.strip()
        for a in re.split(r"[,;\s]+", _text(form, "summary_emails", longest=1000, required=False))
        if a.strip()
    ]
    if any(not is_email(a) for a in summary) or len(summary) > MAX_SUMMARY_EMAILS:
        raise CatalogError(
            {
                "summary_emails": f"List up to {MAX_SUMMARY_EMAILS} email addresses separated by commas, "
                "like manager@university.edu, finance@university.edu."
            }
        )
    return LabDetails(
        name=_text(form, "name", longest=100),
        pickup_location=_text(form, "pickup_location"),
        opening_hours=_text(form, "opening_hours"),
        contact_email=email,
        time_zone=zone,
        hold_days=hold,
        pickup_reminder_days=reminder,
        final_reminder_days_before_hold_ends=final,
        summary_emails=", ".join(summary),
    )
