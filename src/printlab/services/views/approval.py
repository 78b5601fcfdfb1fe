"""The approval (and quote edit) form's read model: the printable files, the weight and time to start
from — a slicer file's figures, else the model check's estimate (for a job in parts, the whole job's:
every part times its copies), each saying where it came from — the model check's warnings, and the parts."""

from __future__ import annotations

from dataclasses import dataclass, field

from printlab.domain.catalog import Catalog
from printlab.domain.quotes import estimated_print_hours, is_slicer_file
from printlab.models import AnalysisState, Job
from printlab.services.files.slicer_files import SlicerEstimate, hours, read_estimates, weight_g_estimate
from printlab.services.files.storage import Storage
from printlab.services.jobs.records import Part, job_folder, parts_of
from printlab.services.jobs.workflow import candidate_files, student_model_name

#: The filament diameter grams are worked out with when a slicer file gives only a length.
FILAMENT_DIAMETER_MM = 1.75


@dataclass
class ApprovalForm:
    """What the approval form starts with. `weight_note` and `time_note` say where each figure came
    from; `derived_note` explains grams a slicer file didn't state; `warnings` are the model check's."""

    files: list[str]
    recommended: str | None
    slicer_files: frozenset[str]
    weight_g: float | None = None
    time_hours: float | None = None
    weight_note: str | None = None
    time_note: str | None = None
    derived_note: str | None = None
    weight_is_estimate: bool = False
    time_is_estimate: bool = False
    warnings: tuple[str, ...] = ()
    #: Every part with its copies and check, for a job sent in parts (quoted together: one price,
    #: one minimum charge); empty for a job of one file printed once.
    parts: list[Part] = field(default_factory=list)


def approval_form(storage: Storage, job: Job, catalog: Catalog) -> ApprovalForm:
    """The form for approving (or re-quoting) `job`: its printable files, the newest slicer file
    first, the student's model otherwise; weight and time from that slicer file when it states them,
    else from the model check's estimate (marked as an estimate)."""
    files = candidate_files(storage, job)
    model = student_model_name(job)
    slicer = frozenset(name for name in files if is_slicer_file(name, model))
    form = ApprovalForm(
        files=files,
        recommended=files[0] if files else None,
        slicer_files=slicer,
        parts=parts_of(job) if job.parts else [],
    )
    method = catalog.method(job.material or "")
    folder = job_folder(job)
    if files and files[0] in slicer and folder is not None:
        estimate = read_estimates(storage.resolve(f"{folder}/{files[0]}"))
        if estimate is not None:
            _from_slicer(
                form, files[0], estimate, method.density_g_cm3 if method else None, job.material or ""
            )
    results = job.analysis.results if job.analysis and job.analysis.state == AnalysisState.DONE else None
    if isinstance(results, dict):
        _from_model_check(form, results, job.material or "")
        form.warnings = tuple(str(p) for p in results.get("problems") or ())
    return form


def _from_slicer(
    form: ApprovalForm, name: str, estimate: SlicerEstimate, density: float | None, method: str
) -> None:
    where = f"From {name} ({estimate.slicer}: {estimate.source})."
    time = hours(estimate)
    if time is not None:
        form.time_hours, form.time_note = round(time, 2), where
    grams = estimate.filament_g
    if grams is None and density is not None:
        grams = weight_g_estimate(estimate, density, FILAMENT_DIAMETER_MM)
        if grams is not None:
            form.derived_note = _derived(estimate, density, method)
    if grams is not None:
        form.weight_g, form.weight_note = round(grams, 1), where


def _derived(estimate: SlicerEstimate, density: float, method: str) -> str:
    """How grams were worked out from a slicer file that gives none (or wrote 0.00 g)."""
    start = "The slicer file gives no weight in grams (or wrote 0.00 g), so it was worked out from"
    if estimate.filament_cm3 is not None:
        return f"{start} its {estimate.filament_cm3:,.2f} cm³ of filament at {density:g} g/cm³ ({method})."
    metres = (estimate.filament_mm or 0) / 1000
    return (
        f"{start} its {metres:,.2f} m of filament, {FILAMENT_DIAMETER_MM:g} mm in diameter, "
        f"at {density:g} g/cm³ ({method})."
    )


def _from_model_check(form: ApprovalForm, results: dict, method: str) -> None:  # type: ignore[type-arg]
    """Fill what the slicer file didn't from the model check's estimate, marked as an estimate."""
    span = results.get("weight_range_g")
    grams: float | None = None
    if span and len(span) == 2:
        low, high = float(span[0]), float(span[1])
        grams = round((low + high) / 2, 1)
        if form.weight_g is None and grams > 0:
            form.weight_g, form.weight_is_estimate = grams, True
            form.weight_note = (
                f"From the model check — estimate: the middle of {_grams(low)} to {_grams(high)}. "
                "Slice or weigh to be sure."
            )
    if form.time_hours is None:
        extents = results.get("extents_mm") or ()
        height = float(extents[2]) if len(extents) == 3 else None
        estimate = estimated_print_hours(method, grams, height)
        if estimate is not None:
            form.time_hours, form.time_is_estimate = estimate, True
            basis = "the part's height" if method == "Resin" else "the estimated weight"
            form.time_note = f"From the model check — estimate from {basis}. Slice to be sure."


def _grams(value: float) -> str:
    return f"{value:.1f} g" if value < 100 else f"{value:,.0f} g"
