"""Pure printability rules for an uploaded model: fit in a build volume, likely wrong units, weight range."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

Extents = Sequence[float]

#: Below this largest dimension a model is almost certainly in the wrong units (inches or metres
#: read as millimetres): nothing a lab prints usefully is smaller than a 5 mm bead.
TINY_MM = 5.0
#: Above this it was probably drawn at full size (architecture) or in micrometres: no lab printer
#: comes close to 2 m.
HUGE_MM = 2000.0

#: Fraction of the solid volume that ends up as material, low and high, per print method.
#: Filament (FDM) parts are printed as 2–3 perimeter walls, a few solid top/bottom layers and a
#: sparse infill (15–20 % by default). For a large, bulky part the sparse core dominates and the
#: print uses about 30 % of the solid volume; for a small or thin-walled part the walls are most of
#: it, about 60 %. Supports, brims and purge are not counted (the slicer's figure replaces this
#: estimate at approval).
#: Resin (SLA) parts are printed solid unless the student hollowed them; a hollowed part with
#: ~2 mm walls still uses around 60 % on typical sizes, a solid one 100 %.
FILL_FRACTION: dict[str, tuple[float, float]] = {"Filament": (0.30, 0.60), "Resin": (0.60, 1.00)}
#: For a method the table doesn't know, the widest of the above.
DEFAULT_FILL_FRACTION = (0.30, 1.00)

_AXIS_WORDS = ("wide", "deep", "tall")  # x, y, z as the model sits in its file

#: 3MF core specification, `unit` attribute of <model>: how many millimetres one file unit is.
UNIT_MM: dict[str, float] = {
    "micron": 0.001,
    "millimeter": 1.0,
    "centimeter": 10.0,
    "inch": 25.4,
    "foot": 304.8,
    "meter": 1000.0,
}
#: The same units as a student or technician says them.
UNIT_WORDS: dict[str, str] = {
    "micron": "micrometres",
    "millimeter": "millimetres",
    "centimeter": "centimetres",
    "inch": "inches",
    "foot": "feet",
    "meter": "metres",
}


@dataclass(frozen=True)
class Oversize:
    """The first dimension (in the model's own axes) that keeps a model out of a build volume."""

    axis: int  # 0, 1, 2 = x, y, z of the model file
    size_mm: float
    limit_mm: float


def _check_extents(extents: Extents) -> tuple[float, float, float]:
    if len(extents) != 3:
        raise ValueError(f"extents need 3 values, got {len(extents)}")
    values = (float(extents[0]), float(extents[1]), float(extents[2]))
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"extents must be finite and not negative, got {values}")
    return values


def oversize(extents: Extents, build_volume: Extents) -> Oversize | None:
    """None when the model fits the build volume turned onto some axis, else what sticks out.

    Turning a box by quarter turns maps its sides onto the printer's axes in any order, and the
    best order pairs the longest side with the longest axis, the middle with the middle, the
    shortest with the shortest (if any pairing works, the sorted one does). Raises ValueError for
    extents that are not three finite, non-negative numbers.
    """
    model = _check_extents(extents)
    limits = sorted(_check_extents(build_volume), reverse=True)
    # Model axes ordered longest first; a stable sort keeps x before y before z on ties.
    order = sorted(range(3), key=lambda axis: -model[axis])
    for rank, axis in enumerate(order):
        if model[axis] > limits[rank]:
            return Oversize(axis, model[axis], limits[rank])
    return None


def fits(extents: Extents, build_volume: Extents) -> bool:
    """True when a model of these extents fits the build volume, allowing any axis-aligned rotation.

    Raises ValueError for extents that are not three finite, non-negative numbers.
    """
    return oversize(extents, build_volume) is None


def format_mm(value: float) -> str:
    """'180', '63.5', '3.0': whole millimetres for sizes from 10 mm up, one decimal otherwise."""
    rounded = round(value, 1)
    if rounded >= 10 and rounded == int(rounded):
        return f"{int(rounded)}"
    return f"{rounded:.1f}"


def format_length(value_mm: float) -> str:
    """A length in millimetres with enough significant digits to be true, never '0.0' for a real size.

    '2,500', '355.6', '20' (one decimal from 10 mm up, a trailing '.0' dropped), '3.18' (two
    decimals from 1 mm), '0.024', '0.00049' (two significant digits below 1 mm), '0' for nothing.
    """
    value = float(value_mm)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a length must be finite and not negative, got {value_mm!r}")
    if value == 0:
        return "0"
    if value >= 10:
        places = 1
    elif value >= 1:
        places = 2
    else:  # two significant digits: 0.024 has its first at the 2nd place, so keep 3
        places = 1 - math.floor(math.log10(value))
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{rounded:,f}".partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole


def format_size(extents: Extents) -> str:
    """'0.024 × 0.018 × 0.01 mm': a model's three sizes, each as format_length() writes it."""
    return " × ".join(format_length(v) for v in _check_extents(extents)) + " mm"


def format_volume(volume_mm3: float) -> str:
    """'0.0000043 mm³', '115.1 mm³', '7.94 cm³': mm³ below one cm³, digits as format_length()."""
    volume = float(volume_mm3)
    if volume >= 1000:
        return f"{format_length(volume / 1000)} cm³"
    return f"{format_length(volume)} mm³"


@dataclass(frozen=True)
class AlternativeSize:
    """What a model would measure had its numbers been drawn in another unit."""

    unit: str  # "metres", "inches", "micrometres"
    size: str  # "24 × 18 × 10 mm"
    volume: str | None  # "4.32 cm³", None when the volume isn't known


def alternative_sizes(
    extents_mm: Extents, volume_mm3: float | None, file_units: str | None = None
) -> list[AlternativeSize]:
    """The plausible sizes of an implausibly small or large model, read in other units.

    A model under 5 mm across is offered as if its numbers were inches (×25.4) or metres (×1000),
    one over 2 m as if they were micrometres (÷1000); only readings that land between 5 mm and 2 m
    are kept. `file_units` is the unit a 3MF declared (its numbers were already converted to
    `extents_mm`), so readings start from the numbers in the file and never repeat that unit.
    Raises ValueError for invalid extents.
    """
    extents = _check_extents(extents_mm)
    largest = max(extents)
    if largest == 0 or TINY_MM <= largest <= HUGE_MM:
        return []
    declared = file_units if file_units in UNIT_MM else "millimeter"
    candidates = ("inch", "meter") if largest < TINY_MM else ("micron",)
    readings = []
    for unit in candidates:
        if unit == declared:
            continue
        factor = UNIT_MM[unit] / UNIT_MM[declared]
        if not TINY_MM <= largest * factor <= HUGE_MM:
            continue
        volume = format_volume(volume_mm3 * factor**3) if volume_mm3 is not None else None
        readings.append(AlternativeSize(UNIT_WORDS[unit], format_size([v * factor for v in extents]), volume))
    return readings


def units_note(file_units: str | None) -> str | None:
    """The unit a 3MF declared, in words: 'inches, converted to mm'; None when the file declares none."""
    if file_units is None:
        return None
    words = UNIT_WORDS.get(file_units, file_units)
    return words if file_units == "millimeter" else f"{words}, converted to mm"


def fit_problem(printer_name: str, extents: Extents, build_volume: Extents) -> str | None:
    """A sentence for the student when the model won't fit the printer, else None.

    e.g. "Won't fit the Formlabs Form 3: 180 mm tall, its limit is 175 mm." — the size is the
    model's own (wide/deep/tall as drawn), the limit the printer axis it would have to go along
    in the best orientation. Raises ValueError as oversize() does.
    """
    over = oversize(extents, build_volume)
    if over is None:
        return None
    size = format_mm(over.size_mm)
    limit = format_mm(over.limit_mm)
    if size == limit:  # 175.04 vs 175 would read "175 mm, its limit is 175 mm"
        size = f"{over.size_mm:.2f}"
    return f"Won't fit the {printer_name}: {size} mm {_AXIS_WORDS[over.axis]}, its limit is {limit} mm."


def units_warning(extents: Extents) -> str | None:
    """A sentence when the model's size suggests it was drawn in the wrong units, else None.

    Warns when the largest dimension is under 5 mm (inches or metres read as millimetres) or over
    2000 mm (drawn at full size, or in micrometres). Raises ValueError for invalid extents.
    """
    largest = max(_check_extents(extents))
    if largest < TINY_MM:
        return f"This model is only {format_length(largest)} mm across — was it drawn in inches or metres?"
    if largest > HUGE_MM:
        return (
            f"This model is {largest / 1000:.1f} m across — was it drawn at full size or in "
            "micrometres? Scale it to the size you want printed."
        )
    return None


def weight_range_g(volume_mm3: float, density_g_cm3: float, method: str) -> tuple[float, float]:
    """(low, high) grams of material a print of this solid volume is likely to use.

    volume × density × the method's fill fraction range (see FILL_FRACTION). Raises ValueError for a
    negative or non-finite volume or a density that is not positive.
    """
    volume = float(volume_mm3)
    density = float(density_g_cm3)
    if not math.isfinite(volume) or volume < 0:
        raise ValueError(f"volume must be finite and not negative, got {volume_mm3!r}")
    if not math.isfinite(density) or density <= 0:
        raise ValueError(f"density must be a positive number, got {density_g_cm3!r}")
    low, high = FILL_FRACTION.get(method, DEFAULT_FILL_FRACTION)
    solid_g = volume / 1000.0 * density  # mm³ → cm³
    return solid_g * low, solid_g * high
