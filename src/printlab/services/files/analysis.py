"""Printability analysis of an accepted model file: load the mesh, measure it, and judge it against the lab."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import trimesh

from printlab.domain import printability
from printlab.domain.catalog import Catalog
from printlab.domain.pricing import PricingError, job_cost, job_grams, quote_cost
from printlab.services.files.meshes import AnalysisFailed, load_mesh, signed_volume
from printlab.services.files.thumbnail import render_thumbnail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Analysis:
    """What the lab learns about a model at upload. Sizes are millimetres, whatever the file used."""

    kind: str  # "stl-binary", "stl-ascii", "obj", "3mf" or "step"
    triangles: int
    extents_mm: tuple[float, float, float]
    bounds_mm: tuple[tuple[float, float, float], tuple[float, float, float]]  # (min xyz, max xyz)
    #: None unless the mesh is closed and consistently wound (otherwise "volume" means nothing).
    volume_mm3: float | None
    watertight: bool
    #: The unit a 3MF declared (converted to mm above); None for STL/OBJ, which store none.
    file_units: str | None
    units_warning: str | None
    method: str
    printer: str
    fits_printer: bool
    #: The other printers of the same method the model would fit (turned as needed).
    fits_other_printers: tuple[str, ...]
    weight_range_g: tuple[float, float] | None
    cost_range_usd: tuple[Decimal, Decimal] | None
    #: One sentence per problem, written for the student.
    problems: tuple[str, ...] = field(default=())
    #: Slicer modifier meshes of a 3MF (support blockers, infill modifiers…) left out of the size,
    #: volume, weight and cost: they aren't printed.
    modifier_parts: int = 0

    @property
    def fits_printers(self) -> tuple[str, ...]:
        """Every printer of the method the model fits, the chosen one first."""
        return ((self.printer,) if self.fits_printer else ()) + self.fits_other_printers

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: lists for tuples, money as "3.00" strings (plus "fits_printers", for display)."""
        return {
            "kind": self.kind,
            "triangles": self.triangles,
            "extents_mm": list(self.extents_mm),
            "bounds_mm": [list(self.bounds_mm[0]), list(self.bounds_mm[1])],
            "volume_mm3": self.volume_mm3,
            "watertight": self.watertight,
            "file_units": self.file_units,
            "units_warning": self.units_warning,
            "method": self.method,
            "printer": self.printer,
            "fits_printer": self.fits_printer,
            "fits_other_printers": list(self.fits_other_printers),
            "fits_printers": list(self.fits_printers),
            "weight_range_g": list(self.weight_range_g) if self.weight_range_g else None,
            "cost_range_usd": [str(c) for c in self.cost_range_usd] if self.cost_range_usd else None,
            "problems": list(self.problems),
            "modifier_parts": self.modifier_parts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Analysis:
        """The inverse of to_dict() (e.g. reading a sidecar back). Raises KeyError/TypeError if malformed."""
        low, high = data["bounds_mm"]
        return cls(
            kind=data["kind"],
            triangles=int(data["triangles"]),
            extents_mm=_triple(data["extents_mm"]),
            bounds_mm=(_triple(low), _triple(high)),
            volume_mm3=data["volume_mm3"],
            watertight=bool(data["watertight"]),
            file_units=data["file_units"],
            units_warning=data["units_warning"],
            method=data["method"],
            printer=data["printer"],
            fits_printer=bool(data["fits_printer"]),
            fits_other_printers=tuple(data["fits_other_printers"]),
            weight_range_g=tuple(data["weight_range_g"]) if data["weight_range_g"] else None,  # type: ignore[arg-type]
            cost_range_usd=(
                tuple(Decimal(c) for c in data["cost_range_usd"]) if data["cost_range_usd"] else None  # type: ignore[arg-type]
            ),
            problems=tuple(data["problems"]),
            modifier_parts=int(
                data.get("modifier_parts", 0)
            ),  # absent from analyses made before it was counted
        )


def _triple(values: Iterable[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return x, y, z


# -- analysis ----------------------------------------------------------------------------------


def analyse(path: Path, extension: str, *, catalog: Catalog, method: str, printer: str) -> Analysis:
    """Load the model at `path` and analyse it for `printer` and `method` (names from `catalog`).

    Raises AnalysisFailed (unreadable model, unknown method or printer); FileNotFoundError as
    load_mesh() does.
    """
    mesh = load_mesh(path, extension)
    try:
        return analyse_mesh(mesh, catalog=catalog, method=method, printer=printer)
    finally:
        # A trimesh mesh sits in reference cycles with its caches, so dropping the name frees
        # nothing until the cycle collector runs; collect now rather than hold ~100 MB per
        # million triangles in a long-running worker.
        del mesh
        gc.collect()


def analyse_with_thumbnail(
    path: Path, extension: str, *, catalog: Catalog, method: str, printer: str, size: int = 256
) -> tuple[dict[str, Any], bytes | None]:
    """analyse() and render_thumbnail() from a single load of the model: (analysis.to_dict(), PNG).

    The PNG is None when the mesh can't be drawn; the analysis stands without it. Raises
    AnalysisFailed; FileNotFoundError as load_mesh() does.
    """
    mesh = load_mesh(path, extension)
    try:
        result = analyse_mesh(mesh, catalog=catalog, method=method, printer=printer)
        try:
            png: bytes | None = render_thumbnail(mesh, size=size)
        except (ValueError, MemoryError) as error:
            log.warning("no thumbnail for %s: %s", path.name, error)
            png = None
        return result.to_dict(), png
    finally:
        del mesh  # see analyse()
        gc.collect()


def analyse_mesh(mesh: trimesh.Trimesh, *, catalog: Catalog, method: str, printer: str) -> Analysis:
    """Analyse a mesh from load_mesh() (so a caller can render its thumbnail without loading twice).

    Raises AnalysisFailed for an empty mesh or a method or printer not in the catalog.
    """
    print_method = catalog.method(method)
    if print_method is None:
        raise AnalysisFailed(f"the print method {method!r} is not in the lab catalog")
    chosen = catalog.printer(printer)
    if chosen is None:
        raise AnalysisFailed(f"the printer {printer!r} is not in the lab catalog")
    if len(mesh.faces) == 0:
        raise AnalysisFailed("the file holds no usable triangles")

    bounds = mesh.bounds
    low, high = _triple(bounds[0]), _triple(bounds[1])
    extents = _triple(high[i] - low[i] for i in range(3))
    watertight = bool(mesh.is_watertight)
    volume: float | None = None
    problems: list[str] = []

    invalid = int(mesh.metadata.get("invalid_triangles", 0))
    if invalid:
        problems.append(
            "1 triangle has invalid coordinates and was left out."
            if invalid == 1
            else f"{invalid:,} triangles have invalid coordinates and were left out."
        )
    if not watertight:
        problems.append(
            "The mesh has holes (it isn't watertight), so its volume, weight and cost can't be "
            "estimated, and it may not slice cleanly."
        )
    elif not mesh.is_winding_consistent:
        problems.append(
            "Some faces of the mesh point inwards, so its volume, weight and cost can't be estimated."
        )
    else:
        volume = abs(signed_volume(mesh.vertices, mesh.faces))

    warning = printability.units_warning(extents)
    if warning:
        problems.append(warning)

    fits_chosen = printability.fits(extents, chosen.build_volume_mm)
    others = tuple(
        p.name
        for p in catalog.printers_for(method)
        if p.name != chosen.name and printability.fits(extents, p.build_volume_mm)
    )
    sentence = printability.fit_problem(chosen.name, extents, chosen.build_volume_mm)
    if sentence:
        if others:
            sentence += f" It would fit the {_or_list(others)}."
        problems.append(sentence)

    weight: tuple[float, float] | None = None
    cost: tuple[Decimal, Decimal] | None = None
    if volume is not None:
        grams = printability.weight_range_g(volume, print_method.density_g_cm3, method)
        weight = (round(grams[0], 2), round(grams[1], 2))
        try:
            cost = (
                quote_cost(weight[0], method, catalog.rates, catalog.minimum_charge),
                quote_cost(weight[1], method, catalog.rates, catalog.minimum_charge),
            )
        except PricingError as error:
            problems.append(f"The estimated cost can't be quoted: {error}.")

    return Analysis(
        kind=str(mesh.metadata.get("printlab_kind", "mesh")),
        triangles=len(mesh.faces),
        extents_mm=extents,
        bounds_mm=(low, high),
        volume_mm3=volume,
        watertight=watertight,
        file_units=mesh.metadata.get("file_units"),
        units_warning=warning,
        method=method,
        printer=chosen.name,
        fits_printer=fits_chosen,
        fits_other_printers=others,
        weight_range_g=weight,
        cost_range_usd=cost,
        problems=tuple(problems),
        modifier_parts=int(mesh.metadata.get("modifier_parts", 0)),
    )


def _or_list(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


# -- a job of several parts (issue 13) --------------------------------------------------------------


def combine_parts(
    parts: Sequence[tuple[str, int, Mapping[str, Any] | None, str | None]],
    *,
    catalog: Catalog,
    method: str,
    printer: str,
) -> dict[str, Any]:
    """The whole job's check from its parts' checks: (name, copies, results or None, failure reason).

    Weights are each part's times its copies, added up, and the cost is priced once from them, so
    the minimum charge applies once for the whole job. The size is the largest part's on each axis
    (what a printer must fit), and every part's problems are kept with its name. One part printed
    once is its own check, unchanged.
    """
    if len(parts) == 1 and parts[0][1] == 1 and parts[0][2] is not None:
        return dict(parts[0][2])
    done = [(name, copies, results) for name, copies, results, _error in parts if results is not None]
    problems: list[str] = []
    for name, _copies, results, error in parts:
        if results is None:
            problems.append(
                f"{name}: couldn't be checked automatically ({error or 'no result'}); staff will look at it."
            )
        else:
            problems += [f"{name}: {problem}" for problem in results.get("problems") or ()]
    extents = (
        [max(float(r["extents_mm"][axis]) for _n, _c, r in done) for axis in range(3)] if done else [0.0] * 3
    )
    complete = len(done) == len(parts)
    volumes = [r.get("volume_mm3") for _n, _c, r in done]
    volume = (
        sum(float(v) * c for v, (_n, c, _r) in zip(volumes, done, strict=True))
        if complete and all(v is not None for v in volumes)
        else None
    )
    ranges = [r.get("weight_range_g") for _n, _c, r in done]
    weight: list[float] | None = None
    cost: list[str] | None = None
    if complete and all(ranges):
        weight = [
            round(job_grams([(span[end], c) for span, (_n, c, _r) in zip(ranges, done, strict=True)]), 2)  # type: ignore[index]
            for end in (0, 1)
        ]
        try:
            cost = [
                str(job_cost([(grams, 1)], method, catalog.rates, catalog.minimum_charge)) for grams in weight
            ]
        except PricingError as error:
            problems.append(f"The estimated cost can't be quoted: {error}.")
    fits_chosen = complete and all(r.get("fits_printer") for _n, _c, r in done)
    others = [
        p.name
        for p in catalog.printers_for(method)
        if p.name != printer
        and complete
        and all(p.name in (r.get("fits_other_printers") or ()) for _n, _c, r in done)
    ]
    return {
        "kind": "parts",
        "parts": len(parts),
        "copies": sum(copies for _name, copies, _r, _e in parts),
        "triangles": sum(int(r.get("triangles") or 0) for _n, _c, r in done),
        "extents_mm": extents,
        "bounds_mm": [[0.0, 0.0, 0.0], extents],
        "volume_mm3": volume,
        "watertight": complete and all(r.get("watertight") for _n, _c, r in done),
        "file_units": None,
        "units_warning": None,
        "method": method,
        "printer": printer,
        "fits_printer": fits_chosen,
        "fits_other_printers": others,
        "fits_printers": ([printer] if fits_chosen else []) + others,
        "weight_range_g": weight,
        "cost_range_usd": cost,
        "problems": problems,
        "modifier_parts": sum(int(r.get("modifier_parts") or 0) for _n, _c, r in done),
    }
