"""What a quote must agree with: a printable file, and a method, colour and printer that belong together."""

from __future__ import annotations

import math

from printlab.domain.catalog import Catalog

#: Models a student may send (and staff may add, e.g. a repaired mesh).
MODEL_EXTENSIONS = (".stl", ".obj", ".3mf", ".step", ".stp")
#: Slicer and project files staff save beside an upload.
SLICER_EXTENSIONS = (".gcode", ".bgcode", ".gcode.3mf", ".3mf", ".form", ".ctb", ".sl1", ".sl1s")
#: The sidecar record beside a job's files (never printed).
SIDECAR_SUFFIX = ".metadata.json"

#: Rough planning rates for a print time when no slicer file says it: an FDM printer lays down
#: about 10 g of filament an hour at everyday settings; a resin printer cures a layer at a time
#: across the whole plate, so its time follows the part's height (about 20 mm an hour).
FILAMENT_G_PER_HOUR = 10.0
RESIN_MM_PER_HOUR = 20.0


def is_printable(name: str) -> bool:
    """True for a file a printer can be given: a model or a slicer output (never an OBJ's .mtl,
    a sidecar, a picture or a note)."""
    lower = name.lower()
    if lower.endswith(SIDECAR_SUFFIX):
        return False
    return lower.endswith(MODEL_EXTENSIONS) or lower.endswith(SLICER_EXTENSIONS)


def is_slicer_file(name: str, model_name: str) -> bool:
    """True for a slicer output; the student's own model (`model_name`, even a .3mf) is not one."""
    return name != model_name and name.lower().endswith(SLICER_EXTENSIONS) and is_printable(name)


def quote_problems(catalog: Catalog, method: str, color: str, printer: str) -> dict[str, str]:
    """Field → sentence for every part of a quote the catalog doesn't allow together; {} when it fits.

    The colour must be one of the method's colours and the printer one of the method's printers,
    so a quote can never read "Resin · True Red · Prusa MK4S".
    """
    found = catalog.method(method)
    if found is None:
        return {"material": "Choose a print method the lab offers."}
    problems: dict[str, str] = {}
    if color not in found.colors:
        problems["color"] = (
            f"Choose a {found.name} color: {color} isn't one." if color else f"Choose a {found.name} color."
        )
    machine = catalog.printer(printer)
    if machine is None or machine.method != found.name:
        problems["printer"] = (
            f"Choose a {found.name} printer: the {printer} doesn't print {found.name}."
            if machine is not None
            else f"Choose a {found.name} printer the lab has."
        )
    return problems


def estimated_print_hours(method: str, grams: float | None, height_mm: float | None) -> float | None:
    """A rough print time for the approval form when no slicer file states one; None if unknown.

    Filament: grams at FILAMENT_G_PER_HOUR; resin: the part's height at RESIN_MM_PER_HOUR. At least
    half an hour (the form rounds up to the half hour anyway).
    """
    if method == "Resin":
        if height_mm is None or not math.isfinite(height_mm) or height_mm <= 0:
            return None
        hours = height_mm / RESIN_MM_PER_HOUR
    else:
        if grams is None or not math.isfinite(grams) or grams <= 0:
            return None
        hours = grams / FILAMENT_G_PER_HOUR
    return max(0.5, round(hours, 2))
