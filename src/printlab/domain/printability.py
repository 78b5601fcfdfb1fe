"""Pure printability rules for an uploaded model: fit in a build volume, likely wrong units, weight range."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
        return f"This model is only {largest:.1f} mm across — was it drawn in inches or metres?"
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
