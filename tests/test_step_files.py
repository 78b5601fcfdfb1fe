"""STEP models (.step/.stp) from CAD programs: meshed by OpenCASCADE (cascadio) in a child process within
the analysis limits, analysed and drawn like any model, and kept under their own extension."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.models import AnalysisState, Job, Task
from printlab.services.files import meshes, model_analysis, step_convert
from printlab.services.files.analysis import analyse
from printlab.services.files.meshes import AnalysisFailed, load_mesh

from .conftest import MODELS
from .factories import submit_job

BOX = MODELS / "step_ap214_box_30x20x10.step"
MM_UNIT = b"( LENGTH_UNIT() NAMED_UNIT(*) SI_UNIT(.MILLI.,.METRE.) )"
#: An inch as a STEP file declares it (a conversion-based unit of 25.4 mm), as US CAD programs write.
INCH_UNIT = (
    b"( CONVERSION_BASED_UNIT('INCH',#9001) LENGTH_UNIT() NAMED_UNIT(#9002) ) ;\n"
    b"#9001 = LENGTH_MEASURE_WITH_UNIT(LENGTH_MEASURE(25.4),#9003) ;\n"
    b"#9002 = DIMENSIONAL_EXPONENTS(1.,0.,0.,0.,0.,0.,0.) ;\n"
    b"#9003 = ( LENGTH_UNIT() NAMED_UNIT(*) SI_UNIT(.MILLI.,.METRE.) )"
)


def test_the_box_is_meshed_in_millimetres_with_its_axes_kept() -> None:
    mesh = load_mesh(BOX, ".step")
    assert list(mesh.extents) == pytest.approx([30.0, 20.0, 10.0], abs=1e-4)
    assert mesh.volume == pytest.approx(6000.0, rel=1e-5)
    assert mesh.is_watertight and len(mesh.faces) == 12
    assert mesh.metadata["printlab_kind"] == "step" and mesh.metadata["file_units"] == "millimeter"


def test_a_step_file_in_inches_is_converted_to_millimetres(tmp_path: Path) -> None:
    data = BOX.read_bytes()
    assert data.count(MM_UNIT) == 1
    inches = tmp_path / "box_in_inches.stp"
    inches.write_bytes(data.replace(MM_UNIT, INCH_UNIT))
    mesh = load_mesh(inches, ".stp")
    assert list(mesh.extents) == pytest.approx([30 * 25.4, 20 * 25.4, 10 * 25.4], rel=1e-5)
    assert mesh.metadata["file_units"] == "inch"


def test_the_analysis_judges_a_step_model_like_any_other() -> None:
    result = analyse(BOX, ".step", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.kind == "step" and result.triangles == 12 and result.watertight is True
    assert result.volume_mm3 == pytest.approx(6000.0, rel=1e-5)
    assert result.fits_printer is True and result.problems == ()
    assert result.weight_range_g is not None and result.cost_range_usd is not None


def test_a_step_file_with_no_shapes_in_its_data_fails_the_analysis_with_a_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.step"
    text = BOX.read_bytes()
    start, end = text.index(b"DATA;"), text.index(b"ENDSEC;", text.index(b"DATA;"))
    broken.write_bytes(text[:start] + b"DATA;\n#1 = CARTESIAN_POINT('',(0.,0.,0.)) ;\n" + text[end:])
    with pytest.raises(AnalysisFailed, match="the STEP file holds no solid or surface we can mesh"):
        load_mesh(broken, ".step")


def test_more_triangles_than_the_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meshes, "MAX_TRIANGLES", 11)
    with pytest.raises(AnalysisFailed, match="more than 11 triangles"):
        load_mesh(BOX, ".step")


def test_meshing_that_takes_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meshes, "STEP_SECONDS", 0.01)  # not even time to start the child
    with pytest.raises(AnalysisFailed, match="took more than"):
        load_mesh(BOX, ".step")


@pytest.mark.parametrize(
    ("declared", "unit"),
    [
        (b"SI_UNIT(.MILLI.,.METRE.)", "millimeter"),
        (b"SI_UNIT ( .CENTI. , .METRE. )", "centimeter"),
        (b"CONVERSION_BASED_UNIT('INCH',#3)", "inch"),
        (b"SI_UNIT($,.METRE.)", "meter"),
        (b"SI_UNIT($,.RADIAN.)", None),
    ],
)
def test_the_declared_length_unit_is_read(declared: bytes, unit: str | None) -> None:
    assert step_convert.declared_unit(b"#1 = ( LENGTH_UNIT() NAMED_UNIT(*) " + declared + b" ) ;") == unit


# -- through a submission ------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".step", ".stp"])
def test_a_submitted_step_model_keeps_its_extension_and_is_analysed_with_a_thumbnail(
    session, storage, tmp_path, extension
):  # type: ignore[no-untyped-def]
    sent = tmp_path / f"Bracket Final{extension.upper()}"
    sent.write_bytes(BOX.read_bytes())
    job = submit_job(session, storage, sent)
    assert job.display_name and job.file_path == f"Uploaded/{job.display_name}{extension}"
    assert storage.resolve(job.file_path).read_bytes() == BOX.read_bytes()
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    analysis = session.get(Job, job.id).analysis  # type: ignore[union-attr]
    assert analysis.state == AnalysisState.DONE, analysis.error
    assert analysis.results["kind"] == "step" and analysis.results["triangles"] == 12
    picture = Image.open(io.BytesIO(analysis.thumbnail_png))
    assert picture.format == "PNG" and picture.getbbox() is not None  # something was drawn


def test_a_converter_that_dies_fails_the_analysis_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meshes.sys, "executable", "/bin/false")  # as if OpenCASCADE crashed
    with pytest.raises(AnalysisFailed, match="the STEP file's shapes couldn't be turned into triangles"):
        load_mesh(BOX, ".step")
