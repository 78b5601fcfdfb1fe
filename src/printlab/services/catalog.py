"""The lab catalog as the lab has edited it: built-in defaults overlaid with rows of `lab_setting`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.catalog import DEFAULT_CATALOG, Catalog, LabDetails, Printer, PrintMethod
from printlab.models import LabSetting


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
