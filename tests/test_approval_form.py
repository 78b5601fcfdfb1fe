"""The approval form's read model: printable files only, figures from a slicer file or else the model
check's estimate (said so), how grams a slicer didn't state were worked out, and the model's warnings."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import select

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.models import Job, Task
from printlab.services.files import model_analysis
from printlab.services.views.approval import approval_form

from .conftest import MODELS, SLICED
from .factories import make_job


def analysed(session, storage, job):
    """Run the real model check the worker runs for an upload."""
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    return session.get(Job, job.id)


def test_approval_is_prefilled_from_the_newest_slicer_file(session, storage):
    job = make_job(session, storage)
    upload = storage.resolve(job.file_path)
    shutil.copyfile(
        SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", upload.with_name(f"{job.display_name}.gcode")
    )
    form = approval_form(storage, analysed(session, storage, job), DEFAULT_CATALOG)
    assert form.recommended == f"{job.display_name}.gcode"
    assert (form.weight_g, form.time_hours) == (21.4, 2.16)
    assert "PrusaSlicer" in form.weight_note and not form.weight_is_estimate and not form.time_is_estimate
    assert form.derived_note is None  # the file states its grams


def test_grams_worked_out_from_metres_say_the_density_and_diameter_used(session, storage):
    job = make_job(session, storage)
    target = storage.resolve(job.file_path).with_name(f"{job.display_name}.gcode")
    shutil.copyfile(SLICED / "cura_5.9.1_marlin_k1max.gcode", target)
    form = approval_form(storage, job, DEFAULT_CATALOG)
    assert form.time_hours == round(2848 / 3600, 2)
    assert form.weight_g == pytest.approx(5.0, abs=0.1)  # 1.677 m of 1.75 mm PLA
    assert form.derived_note == (
        "The slicer file gives no weight in grams (or wrote 0.00 g), so it was worked out from its "
        "1.68 m of filament, 1.75 mm in diameter, at 1.24 g/cm³ (Filament)."
    )


def test_without_a_slicer_file_the_model_checks_estimate_fills_the_form_marked_as_such(session, storage):
    job = analysed(session, storage, make_job(session, storage))  # the 20 mm cube: 7,939 mm³
    form = approval_form(storage, job, DEFAULT_CATALOG)
    assert form.files == [storage.resolve(job.file_path).name] and not form.slicer_files
    low, high = job.analysis.results["weight_range_g"]
    assert form.weight_g == round((low + high) / 2, 1) == 4.4
    assert form.weight_is_estimate and form.weight_note.startswith("From the model check — estimate")
    assert form.time_hours == 0.5 and form.time_is_estimate  # 4.4 g at about 10 g an hour, at least ½ h
    assert form.warnings == ()


def test_a_model_drawn_in_inches_shows_its_warning_and_no_made_up_weight(session, storage):
    job = make_job(session, storage, model=MODELS / "box.obj")
    shutil.copyfile(MODELS / "box.mtl", storage.resolve(job.file_path).with_suffix(".mtl"))
    form = approval_form(storage, analysed(session, storage, job), DEFAULT_CATALOG)
    assert form.files == [storage.resolve(job.file_path).name]  # never the .mtl
    assert any("only 2 mm across" in w for w in form.warnings)
    assert form.weight_g is None and form.time_hours is None  # not watertight: no volume to go on


def test_a_resin_estimate_follows_the_parts_height(session, storage):
    job = make_job(session, storage, print_method="Resin", color="Clear", printer="Formlabs Form 3")
    form = approval_form(storage, analysed(session, storage, job), DEFAULT_CATALOG)
    assert form.time_hours == 1.0  # 20 mm tall at about 20 mm an hour
    assert "height" in form.time_note
