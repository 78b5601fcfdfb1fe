"""Model analysis: the fixture manifest's facts, the pure printability rules, and the 3MF reader's corners."""

from __future__ import annotations

import builtins
import csv
import io
import itertools
import json
import math
import struct
import zipfile
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import trimesh
from hypothesis import given
from hypothesis import strategies as st

from printlab.domain import printability
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.printability import fit_problem, fits, format_mm, oversize, units_warning, weight_range_g
from printlab.services.files import analysis, meshes
from printlab.services.files.analysis import Analysis, analyse
from printlab.services.files.meshes import AnalysisFailed, load_mesh, merge_vertices, signed_volume

from .conftest import FIXTURES, MODELS

# -- the manifest's facts, for every fixture model -------------------------------------------------


def manifest_models() -> list[dict[str, str]]:
    with (FIXTURES / "MANIFEST.tsv").open(newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t"))
    return [
        r
        for r in rows
        if r["kind"] == "model" and r["format"] in ("stl-ascii", "stl-binary", "obj", "3mf", "step")
    ]


def expected_facts(row: dict[str, str]) -> tuple[int, bool, list[float], float | None]:
    """(triangles, watertight, extents in mm, volume in mm³ or None) that analysis must report."""
    name = Path(row["relative_path"]).name
    if name == "stl_binary_solid_header_trailing_byte_HalfDonut.stl":
        # The manifest records trimesh 5.2 misreading this file as ASCII (0 faces). Its "True
        # content" note gives what the 288 binary records hold; that is what a student sent.
        return 288, True, [3.00, 0.50, 3.00], 2.34
    if name == "box.obj":
        # The manifest records trimesh's default view: it keeps the UV seams, so the cube's
        # faces don't share edges and it calls the box open. Physically it is a closed 2×2×2 cube;
        # analysis merges vertices by position only, so we assert the truth: 12 triangles,
        # watertight, volume 8.0 mm³ (the student's model is printable and has a real volume).
        return 12, True, [2.0, 2.0, 2.0], 8.0
    extents = [float(v) for v in row["extents_xyz"].split(",")]
    if row["units"] == "inch":
        extents = [v * 25.4 for v in extents]  # analysis reports millimetres
    volume = None if row["volume"].startswith("n/a") else float(row["volume"])
    return int(row["triangles"]), row["watertight"] == "true", extents, volume


MANIFEST_MODELS = manifest_models()


def test_manifest_lists_every_fixture_model() -> None:
    names = {Path(r["relative_path"]).name for r in MANIFEST_MODELS}
    assert names == {
        p.name for p in MODELS.iterdir() if p.suffix.lower() in (".stl", ".obj", ".3mf", ".step", ".stp")
    }
    assert len(names) == 11


@pytest.mark.parametrize("row", MANIFEST_MODELS, ids=lambda r: Path(r["relative_path"]).name)
def test_analysis_reproduces_the_manifest(row: dict[str, str]) -> None:
    path = FIXTURES / row["relative_path"]
    triangles, watertight, extents, volume = expected_facts(row)
    result = analyse(
        path, path.suffix.lower(), catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa XL"
    )

    assert result.kind == row["format"]
    assert result.triangles == triangles
    assert result.watertight is watertight
    if row["units"] == "inch":
        # The manifest rounds to 0.01 inch; in mm the exact sizes are 127 × 63.5 × 34.925 (1.375 in).
        assert result.file_units == "inch"
        assert [e / 25.4 for e in result.extents_mm] == pytest.approx(
            [float(v) for v in row["extents_xyz"].split(",")], abs=0.01
        )
        assert result.extents_mm == pytest.approx((127.0, 63.5, 34.925), abs=1e-6)
    else:
        assert list(result.extents_mm) == pytest.approx(extents, abs=0.01)
    assert [h - lo for lo, h in zip(*result.bounds_mm, strict=True)] == pytest.approx(list(result.extents_mm))
    if volume is None:
        assert result.volume_mm3 is None
        assert result.weight_range_g is None and result.cost_range_usd is None
    else:
        assert result.volume_mm3 == pytest.approx(volume, rel=0.005)


def test_half_donut_is_read_as_binary_despite_its_solid_header_and_trailing_byte() -> None:
    mesh = load_mesh(MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl", ".stl")
    assert len(mesh.faces) == 288
    assert mesh.metadata["printlab_kind"] == "stl-binary"


def test_binary_stl_decoding_matches_trimesh_where_trimesh_gets_it_right() -> None:
    path = MODELS / "stl_binary_solid_header_rear_case.stl"
    ours = load_mesh(path, ".stl")
    theirs = trimesh.load(path, force="mesh")
    assert len(ours.vertices) == len(theirs.vertices)
    assert np.allclose(
        np.sort(ours.triangles.reshape(-1, 9), axis=0), np.sort(theirs.triangles.reshape(-1, 9), axis=0)
    )


# -- what the lab and the student are told -----------------------------------------------------------


def tray(method: str = "Filament", printer: str = "Prusa MK4S") -> Analysis:
    path = MODELS / "stl_ascii_solidworks_1002_tray_bottom.STL"
    return analyse(path, ".stl", catalog=DEFAULT_CATALOG, method=method, printer=printer)


def test_a_model_too_big_for_the_chosen_printer_names_the_ones_it_fits() -> None:
    result = tray()  # 355.6 × 3.175 × 355.6 mm
    assert result.fits_printer is False
    assert result.fits_other_printers == ("Prusa XL",)
    assert result.problems == (
        "Won't fit the Prusa MK4S: 355.6 mm wide, its limit is 250 mm. It would fit the Prusa XL.",
    )


def test_weight_and_cost_ranges_follow_volume_density_and_prices() -> None:
    result = tray(printer="Prusa XL")
    solid_g = 347865.90 / 1000 * 1.24
    assert result.weight_range_g == pytest.approx((solid_g * 0.30, solid_g * 0.60), abs=0.01)
    assert result.cost_range_usd == (Decimal("12.94"), Decimal("25.88"))  # $0.10/g
    assert result.fits_printer is True
    assert result.problems == ()


def test_resin_uses_its_density_and_rate_and_the_form_3() -> None:
    path = MODELS / "stl_binary_solid_header_rear_case.stl"  # 88 × 22.3 × 101 mm, 38.2 cm³
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Resin", printer="Formlabs Form 3")
    assert result.fits_printer is True
    assert result.fits_other_printers == ()
    assert result.weight_range_g == pytest.approx((38.22994 * 1.10 * 0.60, 38.22994 * 1.10), abs=0.01)
    assert result.cost_range_usd == (Decimal("5.05"), Decimal("8.41"))  # $0.20/g


def test_small_models_are_charged_the_minimum() -> None:
    path = MODELS / "stl_binary_20mm_xyz_cube.stl"
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.cost_range_usd == (Decimal("3.00"), Decimal("3.00"))


def test_tiny_models_get_a_units_warning() -> None:
    path = MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl"
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.units_warning == "This model is only 3 mm across — was it drawn in inches or metres?"
    assert result.problems == (result.units_warning,)


def test_an_open_mesh_has_no_volume_and_says_why() -> None:
    path = MODELS / "stl_binary_nonwatertight_teapot.stl"
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert (result.watertight, result.volume_mm3, result.weight_range_g, result.cost_range_usd) == (
        False,
        None,
        None,
        None,
    )
    assert result.problems[0].startswith("The mesh has holes (it isn't watertight)")


def test_a_closed_mesh_with_flipped_faces_has_no_volume(tmp_path: Path) -> None:
    mesh = trimesh.creation.box(extents=(10, 10, 10))
    faces = mesh.faces.copy()
    faces[0] = faces[0][::-1]
    path = write_binary_stl(tmp_path / "flipped.stl", mesh.vertices[faces])
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.watertight is True
    assert result.volume_mm3 is None
    assert "point inwards" in result.problems[0]


def test_an_inside_out_mesh_still_has_a_positive_volume(tmp_path: Path) -> None:
    mesh = trimesh.creation.box(extents=(10, 10, 10))
    path = write_binary_stl(tmp_path / "inside_out.stl", mesh.vertices[mesh.faces[:, ::-1]])
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.volume_mm3 == pytest.approx(1000.0)


def test_a_model_too_big_for_every_printer(tmp_path: Path) -> None:
    mesh = trimesh.creation.box(extents=(100, 100, 700))
    path = write_binary_stl(tmp_path / "tower.stl", mesh.triangles)
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Raise3D Pro 2 Plus")
    assert (result.fits_printer, result.fits_other_printers) == (False, ())
    assert result.problems == ("Won't fit the Raise3D Pro 2 Plus: 700 mm tall, its limit is 605 mm.",)


def test_a_cost_the_lab_cannot_record_is_reported_not_raised(tmp_path: Path) -> None:
    mesh = trimesh.creation.box(extents=(3000, 3000, 3000))  # drawn at full size: 27 m³
    path = write_binary_stl(tmp_path / "room.stl", mesh.triangles)
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa XL")
    assert result.cost_range_usd is None
    assert result.weight_range_g is not None
    assert result.units_warning is not None and "3.0 m across" in result.units_warning
    assert any(p.startswith("The estimated cost can't be quoted:") for p in result.problems)


def test_triangles_with_invalid_coordinates_are_left_out_and_reported(tmp_path: Path) -> None:
    triangles = trimesh.creation.box(extents=(10, 10, 10)).triangles.copy()
    triangles = np.concatenate([triangles, [[[np.nan, 0, 0], [1, 0, 0], [0, 1, 0]]]])
    path = write_binary_stl(tmp_path / "nan.stl", triangles)
    result = analyse(path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")
    assert result.triangles == 12
    assert result.watertight is True
    assert result.problems[0] == "1 triangle has invalid coordinates and was left out."


def test_analysis_round_trips_through_json() -> None:
    result = tray()
    data = json.loads(json.dumps(result.to_dict()))
    assert data["cost_range_usd"] == ["12.94", "25.88"]
    assert data["fits_printers"] == ["Prusa XL"]
    assert Analysis.from_dict(data) == result


@pytest.mark.parametrize(
    ("method", "printer", "reason"),
    [
        ("Laser", "Prusa MK4S", "the print method 'Laser' is not in the lab catalog"),
        ("Filament", "Bambu X1", "the printer 'Bambu X1' is not in the lab catalog"),
    ],
)
def test_unknown_method_or_printer_fails(method: str, printer: str, reason: str) -> None:
    with pytest.raises(AnalysisFailed) as caught:
        tray(method=method, printer=printer)
    assert caught.value.reason == reason


def test_a_file_that_is_not_a_model_fails_with_the_upload_message(tmp_path: Path) -> None:
    path = tmp_path / "notes.stl"
    path.write_text("not a model\n" * 10)
    with pytest.raises(AnalysisFailed) as caught:
        load_mesh(path, ".stl")
    assert caught.value.reason == "This .stl file isn't a 3D model (it looks like text)."


def test_analyse_with_thumbnail_loads_once_and_returns_both() -> None:
    path = MODELS / "stl_ascii_solidworks_1002_tray_bottom.STL"
    results, png = analysis.analyse_with_thumbnail(
        path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S"
    )
    assert results == tray().to_dict()
    assert png is not None and png.startswith(b"\x89PNG")


def test_a_thumbnail_that_cannot_be_drawn_does_not_fail_the_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object, **_kwargs: object) -> bytes:
        raise ValueError("the mesh has no triangles to draw")

    monkeypatch.setattr(analysis, "render_thumbnail", broken)
    path = MODELS / "stl_binary_20mm_xyz_cube.stl"
    results, png = analysis.analyse_with_thumbnail(
        path, ".stl", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S"
    )
    assert png is None
    assert results["triangles"] == 260


def test_a_missing_file_is_not_an_analysis_failure(tmp_path: Path) -> None:
    # A file moved by a status change mid-queue: the worker retries rather than record "failed".
    for extension in (".stl", ".3mf"):
        with pytest.raises(FileNotFoundError):
            load_mesh(tmp_path / f"gone{extension}", extension)


def test_ascii_stl_in_a_legacy_encoding_loads(tmp_path: Path) -> None:
    # "Würfel" in Latin-1 is not UTF-8: trimesh alone would need an optional charset detector.
    text = trimesh.exchange.stl.export_stl_ascii(trimesh.creation.box(extents=(10, 10, 10)))
    path = tmp_path / "wurfel.stl"
    path.write_bytes(text.replace("solid", "solid W\xfcrfel", 1).encode("latin-1"))
    mesh = load_mesh(path, ".stl")
    assert (len(mesh.faces), mesh.is_watertight) == (12, True)


def ascii_stl(triangles: np.ndarray, newline: str = "\n", fmt: str = "{:.6e}") -> str:
    lines = ["solid part"]
    for triangle in triangles:
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += ["      vertex " + " ".join(fmt.format(float(c)) for c in corner) for corner in triangle]
        lines += ["    endloop", "  endfacet"]
    return newline.join([*lines, "endsolid part", ""])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_ascii_stl_line_endings(tmp_path: Path, newline: str) -> None:
    box = trimesh.creation.box(extents=(10, 20, 30))
    path = tmp_path / "box.stl"
    path.write_text(ascii_stl(box.triangles, newline), newline="")
    mesh = load_mesh(path, ".stl")
    assert (len(mesh.faces), mesh.is_watertight) == (12, True)
    assert mesh.extents == pytest.approx((10, 20, 30))


def test_ascii_stl_read_in_small_chunks_gives_the_same_mesh(monkeypatch: pytest.MonkeyPatch) -> None:
    path = MODELS / "stl_ascii_solidworks_1002_tray_bottom.STL"
    whole = load_mesh(path, ".stl")
    monkeypatch.setattr(meshes, "_TEXT_CHUNK", 997)  # lines cut mid-number at every boundary
    pieces = load_mesh(path, ".stl")
    assert np.array_equal(whole.vertices, pieces.vertices)
    assert np.array_equal(whole.faces, pieces.faces)


def test_ascii_stl_numbers_keep_full_precision(tmp_path: Path) -> None:
    triangle = np.array([[[1.234567890123456789e-3, 0, 0], [0, 2.5e2, 0], [0, 0, -7.000000000000000001]]])
    path = tmp_path / "t.stl"
    path.write_text(ascii_stl(triangle, fmt="{!r}").upper())  # upper-case keywords, as some CAD writes
    mesh = load_mesh(path, ".stl")
    assert sorted(mesh.vertices.ravel().tolist()) == sorted(triangle.ravel().tolist())


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "vertex 1 2 three\nvertex 0 0 0\nvertex 1 1 1\n",
            "the STL file has a vertex that isn't three numbers",
        ),
        ("vertex 1 2 3\nvertex 0 0 0\n", "the STL file has a facet without exactly three vertices"),
    ],
)
def test_malformed_ascii_stl_fails(tmp_path: Path, body: str, reason: str) -> None:
    path = tmp_path / "bad.stl"
    path.write_text(f"solid x\nfacet normal 0 0 1\nouter loop\n{body}endloop\nendfacet\nendsolid x\n")
    with pytest.raises(AnalysisFailed) as caught:
        load_mesh(path, ".stl")
    assert caught.value.reason == reason


def test_obj_faces_pointing_past_the_vertices_fail(tmp_path: Path) -> None:
    path = tmp_path / "bad.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n")
    with pytest.raises(AnalysisFailed):
        load_mesh(path, ".obj")


def test_obj_materials_are_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An upload's `mtllib` could name any file on the server: loading opens the upload alone.
    (tmp_path / "box.obj").write_text((MODELS / "box.obj").read_text())
    (tmp_path / "box.mtl").write_text((MODELS / "box.mtl").read_text())
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(io, "open", spy)
    mesh = load_mesh(tmp_path / "box.obj", ".obj")
    assert len(mesh.faces) == 12
    assert set(opened) == {str(tmp_path / "box.obj")}


# -- 3MF reading ---------------------------------------------------------------------------------------

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
PRODUCTION = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
CUBE_VERTICES = [(x, y, z) for x in (0, 10) for y in (0, 10) for z in (0, 10)]


def cube_mesh_xml() -> str:
    box = trimesh.creation.box(extents=(10, 10, 10))
    box.apply_translation((5, 5, 5))
    vertices = "".join(f'<vertex x="{x:g}" y="{y:g}" z="{z:g}"/>' for x, y, z in box.vertices)
    triangles = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in box.faces)
    return f"<mesh><vertices>{vertices}</vertices><triangles>{triangles}</triangles></mesh>"


def model_xml(resources: str, build: str, unit: str = "millimeter", extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{extra}'
        f'<model unit="{unit}" xmlns="{CORE}" xmlns:p="{PRODUCTION}">'
        f"<resources>{resources}</resources><build>{build}</build></model>"
    ).encode()


def write_3mf(path: Path, root: bytes, **parts: bytes) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("3D/3dmodel.model", root)
        for name, data in parts.items():
            archive.writestr(name.replace("__", "/"), data)
    return path


def analyse_3mf(path: Path) -> Analysis:
    return analyse(path, ".3mf", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")


def test_3mf_build_items_are_placed_with_their_transforms(tmp_path: Path) -> None:
    cube = f'<object id="1" type="model">{cube_mesh_xml()}</object>'
    build = '<item objectid="1"/><item objectid="1" transform="1 0 0 0 1 0 0 0 1 30 0 0"/>'
    result = analyse_3mf(write_3mf(tmp_path / "two.3mf", model_xml(cube, build)))
    assert result.triangles == 24
    assert result.extents_mm == pytest.approx((40, 10, 10))
    assert result.volume_mm3 == pytest.approx(2000)


def test_3mf_components_nest_and_compose_transforms(tmp_path: Path) -> None:
    resources = (
        f'<object id="1" type="model">{cube_mesh_xml()}</object>'
        # a pair: the cube and a copy rotated 90° about z and moved 20 mm along y
        '<object id="2" type="model"><components><component objectid="1"/>'
        '<component objectid="1" transform="0 1 0 -1 0 0 0 0 1 0 20 0"/></components></object>'
    )
    build = '<item objectid="2" transform="2 0 0 0 2 0 0 0 2 0 0 5"/>'  # scaled ×2, lifted 5 mm
    result = analyse_3mf(write_3mf(tmp_path / "nested.3mf", model_xml(resources, build)))
    assert result.triangles == 24
    # cube 1 spans x 0..10, y 0..10; cube 2 spans x -10..0, y 20..30 → 20 × 30 × 10, then × 2.
    assert result.bounds_mm[0] == pytest.approx((-20, 0, 5))
    assert result.extents_mm == pytest.approx((40, 60, 20))
    assert result.volume_mm3 == pytest.approx(2 * 1000 * 8)


def test_3mf_mirrored_copies_keep_a_positive_volume(tmp_path: Path) -> None:
    cube = f'<object id="1" type="model">{cube_mesh_xml()}</object>'
    build = '<item objectid="1"/><item objectid="1" transform="-1 0 0 0 1 0 0 0 1 -5 0 0"/>'
    result = analyse_3mf(write_3mf(tmp_path / "mirror.3mf", model_xml(cube, build)))
    assert result.watertight is True
    assert result.volume_mm3 == pytest.approx(2000)


def test_3mf_components_in_other_parts_are_followed(tmp_path: Path) -> None:
    # Production extension, as Bambu Studio and PrusaSlicer write: the mesh lives in its own part.
    part = model_xml(f'<object id="7" type="model">{cube_mesh_xml()}</object>', "")
    root = model_xml(
        '<object id="1" type="model"><components>'
        '<component p:path="/3D/Objects/object_7.model" objectid="7"/></components></object>',
        '<item objectid="1"/>',
    )
    path = write_3mf(tmp_path / "parts.3mf", root, **{"3D__Objects__object_7.model": part})
    assert analyse_3mf(path).volume_mm3 == pytest.approx(1000)


@pytest.mark.parametrize(
    ("unit", "scale"), [("micron", 0.001), ("centimeter", 10), ("foot", 304.8), ("meter", 1000)]
)
def test_3mf_units_are_converted_to_millimetres(tmp_path: Path, unit: str, scale: float) -> None:
    cube = f'<object id="1" type="model">{cube_mesh_xml()}</object>'
    path = write_3mf(tmp_path / "u.3mf", model_xml(cube, '<item objectid="1"/>', unit=unit))
    result = analyse_3mf(path)
    assert result.file_units == unit
    assert result.extents_mm == pytest.approx((10 * scale,) * 3)
    assert result.volume_mm3 == pytest.approx(1000 * scale**3)


@pytest.mark.parametrize(
    ("resources", "build", "extra", "reason"),
    [
        ("", "", "", "the 3MF project has no objects on its build plate"),
        (
            '<object id="1"><mesh/></object>',
            '<item objectid="9"/>',
            "",
            "the 3MF model refers to a missing object '9'",
        ),
        (
            '<object id="1"><components><component objectid="2"/></components></object>'
            '<object id="2"><components><component objectid="1"/></components></object>',
            '<item objectid="1"/>',
            "",
            "the 3MF model's components refer to each other in a loop",
        ),
        (
            '<object id="1"><components><component p:path="/3D/missing.model" objectid="1"/></components></object>',
            '<item objectid="1"/>',
            "",
            "the 3MF model refers to a missing part '3D/missing.model'",
        ),
        (
            '<object id="1"><mesh><vertices><vertex x="0" y="0" z="0"/></vertices>'
            '<triangles><triangle v1="0" v2="1" v3="2"/></triangles></mesh></object>',
            '<item objectid="1"/>',
            "",
            "a triangle refers to a vertex that doesn't exist",
        ),
        (
            f'<object id="1">{cube_mesh_xml()}</object>',
            '<item objectid="1" transform="1 0 0"/>',
            "",
            "the 3MF model has a malformed transform",
        ),
        (
            f'<object id="1">{cube_mesh_xml()}</object>',
            '<item objectid="1"/>',
            '<!DOCTYPE model [<!ENTITY a "aaaaaaaa">]>',
            # The upload checks the analysis starts with refuse it first (the student saw this too).
            "This .3mf file declares a DTD (a <!DOCTYPE> or <!ENTITY> block), which 3MF files may not. "
            "Export it again from your design program.",
        ),
    ],
)
def test_broken_3mf_models_fail_with_a_reason(
    tmp_path: Path, resources: str, build: str, extra: str, reason: str
) -> None:
    path = write_3mf(tmp_path / "broken.3mf", model_xml(resources, build, extra=extra))
    with pytest.raises(AnalysisFailed) as caught:
        analyse_3mf(path)
    assert caught.value.reason == reason


def test_3mf_objects_with_an_empty_mesh_add_nothing(tmp_path: Path) -> None:
    # Vertices but no triangles: counted as nothing, so no unplaced rows creep into the mesh.
    resources = (
        f'<object id="1">{cube_mesh_xml()}</object>'
        '<object id="2"><mesh><vertices><vertex x="1e300" y="0" z="0"/></vertices><triangles/></mesh></object>'
    )
    path = write_3mf(tmp_path / "e.3mf", model_xml(resources, '<item objectid="2"/><item objectid="1"/>'))
    result = analyse_3mf(path)
    assert (result.triangles, result.volume_mm3) == (12, pytest.approx(1000))


def test_3mf_nesting_depth_is_limited(tmp_path: Path) -> None:
    chain = "".join(
        f'<object id="{n + 1}"><components><component objectid="{n}"/></components></object>'
        for n in range(1, 40)
    )
    resources = f'<object id="1">{cube_mesh_xml()}</object>{chain}'
    path = write_3mf(tmp_path / "deep.3mf", model_xml(resources, '<item objectid="40"/>'))
    with pytest.raises(AnalysisFailed, match="nested more than 32 deep"):
        analyse_3mf(path)
    shallow = write_3mf(tmp_path / "ok.3mf", model_xml(resources, '<item objectid="20"/>'))
    assert analyse_3mf(shallow).triangles == 12


def test_3mf_with_unparsable_xml_fails(tmp_path: Path) -> None:
    path = write_3mf(tmp_path / "bad.3mf", b'<model xmlns="x"><resources><object id="1"></model>')
    with pytest.raises(AnalysisFailed, match=r"^the 3MF model is malformed \(ExpatError"):
        analyse_3mf(path)


def test_3mf_with_an_unknown_unit_fails(tmp_path: Path) -> None:
    cube = f'<object id="1">{cube_mesh_xml()}</object>'
    path = write_3mf(tmp_path / "u.3mf", model_xml(cube, '<item objectid="1"/>', unit="furlong"))
    with pytest.raises(AnalysisFailed, match="unknown unit 'furlong'"):
        analyse_3mf(path)


def test_3mf_instancing_bombs_are_refused_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each level multiplies the copies by 10: 10⁴ cubes of 12 triangles from a few hundred bytes.
    monkeypatch.setattr(meshes, "MAX_TRIANGLES", 50_000)
    levels = "".join(
        f'<object id="{n + 1}"><components>' + f'<component objectid="{n}"/>' * 10 + "</components></object>"
        for n in range(1, 5)
    )
    resources = f'<object id="1">{cube_mesh_xml()}</object>{levels}'
    path = write_3mf(tmp_path / "bomb.3mf", model_xml(resources, '<item objectid="5"/>'))
    with pytest.raises(AnalysisFailed, match="more than 50,000 triangles once every copy is placed"):
        analyse_3mf(path)


def test_3mf_placement_bombs_of_empty_objects_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(meshes, "MAX_PLACEMENTS", 500)
    levels = "".join(
        f'<object id="{n + 1}"><components>' + f'<component objectid="{n}"/>' * 10 + "</components></object>"
        for n in range(1, 4)
    )
    resources = f'<object id="0">{cube_mesh_xml()}</object><object id="1"><mesh/></object>{levels}'
    build = '<item objectid="0"/><item objectid="4"/>'
    path = write_3mf(tmp_path / "empty.3mf", model_xml(resources, build))
    with pytest.raises(AnalysisFailed, match="places more than 500 objects"):
        analyse_3mf(path)


# -- merging and volume --------------------------------------------------------------------------------


def write_binary_stl(path: Path, triangles: np.ndarray) -> Path:
    triangles = np.asarray(triangles, dtype=np.float32)
    with path.open("wb") as file:
        file.write(b"test".ljust(80) + struct.pack("<I", len(triangles)))
        for triangle in triangles:
            file.write(struct.pack("<3f", 0, 0, 0) + triangle.tobytes() + b"\x00\x00")
    return path


@given(st.lists(st.integers(0, 30), min_size=3, max_size=300).filter(lambda v: len(v) % 3 == 0))
def test_merge_vertices_matches_an_exact_row_unique(picks: list[int]) -> None:
    # Corners drawn from a small pool so that many repeat; -0.0 and 0.0 are the same position.
    pool = np.random.default_rng(7).normal(size=(31, 3)).round(3)
    pool[0] = (-0.0, 0.0, -0.0)
    pool[1] = (0.0, -0.0, 0.0)
    corners = pool[np.array(picks)]
    faces = np.arange(len(corners)).reshape(-1, 3)
    vertices, merged = merge_vertices(corners, faces)
    assert len(vertices) == len(np.unique(corners + 0.0, axis=0))
    assert np.array_equal(vertices[merged], corners[faces])


def test_merge_vertices_survives_hash_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meshes, "_mix", lambda keys: np.zeros(len(keys), dtype=np.uint64))
    box = trimesh.creation.box(extents=(2, 2, 2))
    corners = box.triangles.reshape(-1, 3)
    vertices, faces = merge_vertices(corners, np.arange(len(corners)).reshape(-1, 3))
    assert len(vertices) == 8
    assert np.allclose(vertices[faces], box.triangles)


def test_merge_vertices_drops_unused_vertices() -> None:
    vertices = np.array([[9, 9, 9], [0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    merged_vertices, faces = merge_vertices(vertices, np.array([[1, 2, 3]]))
    assert len(merged_vertices) == 3
    assert np.array_equal(merged_vertices[faces], vertices[[[1, 2, 3]]])


def test_signed_volume_of_a_far_away_cube() -> None:
    box = trimesh.creation.box(extents=(1, 1, 1))
    box.apply_translation((1e6, -1e6, 5e5))  # precision holds far from the origin
    assert signed_volume(box.vertices, box.faces) == pytest.approx(1.0, rel=1e-9)
    assert signed_volume(box.vertices, box.faces[:, ::-1]) == pytest.approx(-1.0, rel=1e-9)


# -- domain rules, with plain values ------------------------------------------------------------------

FORM_3 = (145, 145, 175)
MK4S = (250, 210, 220)


def test_fits_allows_turning_the_model_onto_any_side() -> None:
    assert fits((170, 100, 20), FORM_3)  # lying down, its 170 mm goes upright
    assert fits((20, 170, 140), FORM_3)
    assert not fits((150, 150, 10), FORM_3)  # two sides over 145: no way to turn it
    assert fits((250, 210, 220), MK4S)  # exactly the build volume
    assert not fits((250.01, 210, 220), MK4S)


def test_oversize_names_the_model_axis_and_the_limit_it_missed() -> None:
    assert oversize((40, 30, 180), FORM_3) == printability.Oversize(2, 180, 175)
    assert oversize((150, 150, 10), FORM_3) == printability.Oversize(1, 150, 145)
    assert oversize((10, 10, 10), FORM_3) is None


def test_fit_problem_sentences() -> None:
    assert fit_problem("Formlabs Form 3", (40, 30, 180), FORM_3) == (
        "Won't fit the Formlabs Form 3: 180 mm tall, its limit is 175 mm."
    )
    assert fit_problem("Formlabs Form 3", (150, 150, 10), FORM_3) == (
        "Won't fit the Formlabs Form 3: 150 mm deep, its limit is 145 mm."
    )
    assert fit_problem("Formlabs Form 3", (175.04, 10, 10), FORM_3) == (
        "Won't fit the Formlabs Form 3: 175.04 mm wide, its limit is 175 mm."
    )
    assert fit_problem("Formlabs Form 3", (100, 100, 100), FORM_3) is None


@pytest.mark.parametrize(
    ("extents", "warning"),
    [
        ((3.0, 0.5, 3.0), "This model is only 3 mm across — was it drawn in inches or metres?"),
        ((4.99, 1, 1), "This model is only 4.99 mm across — was it drawn in inches or metres?"),
        ((5.0, 1, 1), None),
        ((2000, 10, 10), None),
        (
            (10, 2500, 10),
            "This model is 2.5 m across — was it drawn at full size or in micrometres? "
            "Scale it to the size you want printed.",
        ),
        ((0, 0, 0), "This model is only 0 mm across — was it drawn in inches or metres?"),
    ],
)
def test_units_warning(extents: tuple[float, float, float], warning: str | None) -> None:
    assert units_warning(extents) == warning


@pytest.mark.parametrize(
    ("method", "expected"), [("Filament", (3.72, 7.44)), ("Resin", (7.44, 12.4)), ("Ceramic", (3.72, 12.4))]
)
def test_weight_range_per_method(method: str, expected: tuple[float, float]) -> None:
    # 10 cm³ of a 1.24 g/cm³ material is 12.4 g solid.
    assert weight_range_g(10_000, 1.24, method) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: weight_range_g(-1, 1.24, "Filament"), "volume"),
        (lambda: weight_range_g(math.nan, 1.24, "Filament"), "volume"),
        (lambda: weight_range_g(10, 0, "Filament"), "density"),
        (lambda: fits((1, 2), FORM_3), "3 values"),
        (lambda: fits((1, -2, 3), FORM_3), "finite"),
        (lambda: units_warning((math.inf, 1, 1)), "finite"),
    ],
)
def test_invalid_inputs_are_refused(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("value", "text"), [(180, "180"), (63.5, "63.5"), (3, "3.0"), (9.96, "10"), (0.04, "0.0")]
)
def test_format_mm(value: float, text: str) -> None:
    assert format_mm(value) == text


sizes = st.floats(min_value=0, max_value=1000, allow_nan=False)
triples = st.tuples(sizes, sizes, sizes)


@given(triples, triples)
def test_fits_is_the_same_however_the_model_or_printer_is_turned(model: tuple, volume: tuple) -> None:
    answers = {fits(m, v) for m in itertools.permutations(model) for v in itertools.permutations(volume)}
    assert len(answers) == 1
    assert (oversize(model, volume) is None) == fits(model, volume)


@given(triples, triples)
def test_fits_means_some_rotation_fits_axis_by_axis(model: tuple, volume: tuple) -> None:
    brute = any(all(m <= v for m, v in zip(p, volume, strict=True)) for p in itertools.permutations(model))
    assert fits(model, volume) is brute


@given(triples, st.floats(min_value=0, max_value=1))
def test_a_model_always_fits_its_own_box_and_anything_smaller(volume: tuple, shrink: float) -> None:
    assert fits(volume, volume)
    assert fits(tuple(v * shrink for v in volume), volume)


@given(
    st.floats(min_value=0, max_value=1e9),
    st.floats(min_value=0.1, max_value=20),
    st.sampled_from(["Filament", "Resin"]),
)
def test_weight_range_is_ordered_and_proportional(volume: float, density: float, method: str) -> None:
    low, high = weight_range_g(volume, density, method)
    assert 0 <= low <= high <= volume / 1000 * density * (1 + 1e-12)
    double_low, double_high = weight_range_g(volume * 2, density, method)
    assert double_low == pytest.approx(2 * low) and double_high == pytest.approx(2 * high)
