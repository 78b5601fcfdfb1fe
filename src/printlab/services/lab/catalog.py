"""The lab catalog as the lab has edited it: built-in defaults overlaid with rows of `lab_setting`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.catalog import DEFAULT_CATALOG, Catalog, LabDetails, Printer, PrintMethod
from printlab.domain.catalog_edit import SECTIONS, CatalogError, parse_section
from printlab.models import LabSetting
from printlab.services.errors import ConflictError, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, require_active_staff, require_admin


def _decode(key: str, value: Any) -> Any:
    if key == "methods":
        return tuple(
            PrintMethod(
                m["name"],
                m["description"],
                Decimal(str(m["rate_per_gram"])),
                tuple(m["colors"]),
                float(m.get("density_g_cm3", 1.24)),
            )
            for m in value
        )
    if key == "printers":
        return tuple(Printer(p["name"], p["method"], tuple(p["build_volume_mm"])) for p in value)
    if key == "lab":
        return LabDetails(**value)
    if key == "minimum_charge":
        return Decimal(str(value))
    if isinstance(value, list):
        return tuple(value)
    return value


def encode_setting(key: str, value: Any) -> Any:
    """The JSON form stored for one catalog field (the inverse of loading it)."""
    if key == "methods":
        return [
            {
                "name": m.name,
                "description": m.description,
                "rate_per_gram": str(m.rate_per_gram),
                "colors": list(m.colors),
                "density_g_cm3": m.density_g_cm3,
            }
            for m in value
        ]
    if key == "printers":
        return [
            {"name": p.name, "method": p.method, "build_volume_mm": list(p.build_volume_mm)} for p in value
        ]
    if key == "lab":
        return dict(value.__dict__)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def load_catalog(session: Session) -> Catalog:
    """The catalog in force now. Unknown keys (from a newer version) are ignored."""
    known = set(Catalog.__dataclass_fields__)
    changes = {
        row.key: _decode(row.key, row.value)
        for row in session.scalars(select(LabSetting))
        if row.key in known
    }
    return DEFAULT_CATALOG.with_changes(**changes) if changes else DEFAULT_CATALOG


def save_section(session: Session, section: str, form: Mapping[str, Any], *, by: Actor) -> Catalog:
    """Validate one section of the admin's catalog form and store it (logged, attributed).

    Takes effect at once for forms, prices and emails; jobs already quoted keep their price.
    Raises ValidationError (field → message) or NotAllowed.
    """
    with write_transaction(session):
        require_active_staff(session, by)
        require_admin(session, by)
        current = load_catalog(session)
        try:
            changes = parse_section(section, form, current)
        except CatalogError as exc:
            raise ValidationError(exc.errors) from None
        return _store(session, current, changes, section, by)


def _store(session: Session, current: Catalog, changes: dict[str, Any], section: str, by: Actor) -> Catalog:
    """Write the fields that differ from `current` and log which ones (inside the caller's transaction)."""
    now = utcnow()
    changed = []
    for key, value in changes.items():
        if getattr(current, key) == value:
            continue
        changed.append(key)
        row = session.get(LabSetting, key) or LabSetting(key=key)
        row.value = encode_setting(key, value)
        row.updated_at = now
        row.updated_by = by.staff
        session.add(row)
    if changed:
        admin_log.record(session, "CatalogChanged", {"section": section, "fields": changed},
                         staff=by.staff, workstation=by.workstation, now=now)  # fmt: skip
    session.flush()
    return current.with_changes(**changes)


def catalog_version(catalog: Catalog) -> str:
    """A short fingerprint of the catalog's content: the editor sends back the one it showed."""
    fields = {key: encode_setting(key, getattr(catalog, key)) for key in sorted(Catalog.__dataclass_fields__)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_catalog(session: Session, form: Mapping[str, Any], *, by: Actor, expected_version: str) -> Catalog:
    """Validate every section of the admin's catalog form and store them together (logged, attributed).

    All or nothing: a mistake in any section saves none, and every section's mistakes are reported.
    Raises ValidationError (field → message), ConflictError when the catalog changed since the editor
    showed version `expected_version`, or NotAllowed.
    """
    with write_transaction(session):
        require_active_staff(session, by)
        require_admin(session, by)
        current = load_catalog(session)
        if catalog_version(current) != expected_version:
            raise ConflictError(
                "The catalog was changed at another computer since this page was opened. Your changes are "
                "still in the form: compare them with the catalog as it is now (open it in another tab) and "
                "save again."
            )
        changes: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for section in SECTIONS:
            try:
                changes.update(parse_section(section, form, current))
            except CatalogError as exc:
                errors.update(exc.errors)
        if errors:
            raise ValidationError(errors)
        return _store(session, current, changes, "all", by)


BANNER_KEY = "banner"


def banner(session: Session) -> str:
    """The message an admin wants on every page ('' for none)."""
    row = session.get(LabSetting, BANNER_KEY)
    return str(row.value) if row and row.value else ""


def set_banner(session: Session, text: str, *, by: Actor) -> None:
    message = " ".join(checked_text(text, "banner", "The banner").split())
    if len(message) > 300:
        raise ValidationError({"banner": "Keep the banner under 300 characters."})
    with write_transaction(session):
        require_active_staff(session, by)
        require_admin(session, by)
        row = session.get(LabSetting, BANNER_KEY) or LabSetting(key=BANNER_KEY)
        row.value = message
        row.updated_at = utcnow()
        row.updated_by = by.staff
        session.add(row)
        admin_log.record(
            session, "BannerChanged", {"banner": message}, staff=by.staff, workstation=by.workstation
        )
