"""Thumbnails: real PNGs of the right size, the model centred and filling the frame, solid, repeatable."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from printlab.services.files import thumbnail
from printlab.services.files.meshes import load_mesh
from printlab.services.files.thumbnail import render_thumbnail

from .conftest import MODELS


def decode(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    return np.asarray(image)


def opaque(png: bytes) -> np.ndarray:
    return decode(png)[:, :, 3] > 0


def assert_solid(mask: np.ndarray) -> None:
    """For a convex silhouette: every row and column is one unbroken run (no holes, no gaps)."""
    for lines in (mask, mask.T):
        for index, line in enumerate(lines):
            drawn = np.nonzero(line)[0]
            if len(drawn):
                gaps = np.nonzero(~line[drawn[0] : drawn[-1] + 1])[0]
                assert len(gaps) == 0, f"hole in line {index} at {drawn[0] + gaps[:5]}"


FIXTURES = [
    "stl_binary_20mm_xyz_cube.stl",
    "stl_binary_nonwatertight_teapot.stl",
    "obj_fandisk.obj",
    "3mf_consortium_multiple_cylinders.3mf",
    "stl_ascii_solidworks_1002_tray_bottom.STL",
]


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_thumbnails_are_centred_and_fill_the_frame(name: str) -> None:
    path = MODELS / name
    mask = opaque(render_thumbnail(load_mesh(path, path.suffix.lower()), size=200))
    assert mask.shape == (200, 200)
    rows, columns = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    height, width = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
    # The longer side spans 90 % of the frame, and the drawing is centred on both axes.
    assert max(height, width) == pytest.approx(180, abs=3)
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(99.5, abs=2)
    assert (columns[0] + columns[-1]) / 2 == pytest.approx(99.5, abs=2)
    assert 0.05 < mask.mean() < 0.9


@pytest.mark.parametrize("size", [32, 100, 256, 512])
def test_requested_size_is_respected(size: int) -> None:
    box = trimesh.creation.box(extents=(20, 20, 20))
    assert decode(render_thumbnail(box, size=size)).shape == (size, size, 4)


@pytest.mark.parametrize("size", [64, 256, 777])
def test_a_twelve_triangle_cube_is_drawn_solid(size: int) -> None:
    # Huge triangles are where point sampling would show holes: every row and column of the
    # (convex, hexagonal) silhouette must be unbroken.
    mask = opaque(render_thumbnail(trimesh.creation.box(extents=(2, 2, 2)), size=size))
    assert_solid(mask)
    assert mask.mean() > 0.4


def test_the_box_fixture_is_drawn_solid_with_three_shaded_faces() -> None:
    pixels = decode(render_thumbnail(load_mesh(MODELS / "box.obj", ".obj"), size=256))
    assert_solid(pixels[:, :, 3] > 0)
    colours, counts = np.unique(pixels[pixels[:, :, 3] > 0][:, :3], axis=0, return_counts=True)
    # Three faces are visible, each one flat colour from its own angle to the light.
    assert len(colours) == 3
    assert counts.min() > 0.15 * counts.sum()
    brightness = colours.sum(axis=1)
    assert brightness.max() - brightness.min() > 60


def test_long_thin_triangles_leave_no_holes() -> None:
    # A 10:1 plate cut into slivers that fan out from one corner.
    angles = np.linspace(0, np.pi / 2, 40)
    rim = np.column_stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)]) * 10
    vertices = np.vstack([[0, 0, 0], rim])
    faces = np.column_stack([np.zeros(39, dtype=int), np.arange(1, 40), np.arange(2, 41)])
    mask = opaque(render_thumbnail((vertices, faces), size=256))
    assert_solid(mask)


def test_background_is_transparent() -> None:
    pixels = decode(render_thumbnail(trimesh.creation.box(extents=(1, 1, 1)), size=64))
    assert (pixels[0, 0] == 0).all()
    assert set(np.unique(pixels[:, :, 3])) == {0, 255}


def test_output_is_deterministic_and_accepts_arrays_or_triangles() -> None:
    mesh = load_mesh(MODELS / "stl_binary_nonwatertight_teapot.stl", ".stl")
    first = render_thumbnail(mesh)
    assert render_thumbnail(mesh) == first
    assert render_thumbnail((np.asarray(mesh.vertices), np.asarray(mesh.faces))) == first
    assert render_thumbnail(np.asarray(mesh.triangles)) == first


def test_unreferenced_vertices_do_not_shrink_the_picture() -> None:
    box = trimesh.creation.box(extents=(2, 2, 2))
    far = np.vstack([box.vertices, [[1000, 1000, 1000]]])
    assert render_thumbnail((far, np.asarray(box.faces))) == render_thumbnail(box)


def test_nearer_surfaces_hide_farther_ones() -> None:
    # A square facing the viewer, and a small cube either behind it (hidden: the picture is the
    # square's alone) or in front of it (visible). Both orders of the triangles give the same.
    right, up, towards = thumbnail._view_basis()
    corners = np.array([-right - up, right - up, right + up, -right + up]) * 10
    plate = trimesh.Trimesh(corners, [[0, 1, 2], [0, 2, 3]], process=False)
    cube = trimesh.creation.box(extents=(2, 2, 2))
    alone = render_thumbnail(plate, size=128)
    for offset, hidden in ((-5, True), (5, False)):
        placed = cube.copy()
        placed.apply_translation(offset * towards)
        for parts in ([plate, placed], [placed, plate]):
            picture = render_thumbnail(trimesh.util.concatenate(parts), size=128)
            assert (picture == alone) is hidden


def test_zbuffer_keeps_the_nearest_sample_per_pixel() -> None:
    x = np.array([1.5, 1.2, 1.9, 0.5], dtype=np.float32)
    y = np.array([0.5, 0.7, 0.1, 0.5], dtype=np.float32)
    depth = np.array([1.0, 3.0, 2.0, -1.0], dtype=np.float32)
    shades = np.array([0.1, 0.3, 0.2, 0.9], dtype=np.float32)
    image = thumbnail._zbuffer(x, y, depth, shades, 16)
    assert image[1] == pytest.approx(0.3)  # pixel (row 0, column 1): the depth-3 sample wins
    assert image[0] == pytest.approx(0.9)
    assert np.isnan(image[2:]).all()


def test_a_degenerate_mesh_still_renders() -> None:
    point = (np.zeros((3, 3)), np.array([[0, 1, 2]]))
    mask = opaque(render_thumbnail(point, size=64))
    assert mask.sum() >= 1


def test_the_sample_budget_holds_for_huge_meshes(monkeypatch: pytest.MonkeyPatch) -> None:
    # With a tiny budget the renderer thins sub-pixel triangles and coarsens big ones, and the
    # model still fills the frame.
    monkeypatch.setattr(thumbnail, "MAX_SAMPLES", 2_000)
    counted: list[int] = []
    real_zbuffer = thumbnail._zbuffer

    def counting(x, y, depth, shades, size):  # type: ignore[no-untyped-def]
        counted.append(len(x))
        return real_zbuffer(x, y, depth, shades, size)

    monkeypatch.setattr(thumbnail, "_zbuffer", counting)
    sphere = trimesh.creation.icosphere(subdivisions=5)  # 20,480 triangles
    mask = opaque(render_thumbnail(sphere, size=256))
    cube = opaque(render_thumbnail(trimesh.creation.box(extents=(1, 1, 1)), size=256))
    assert counted[0] <= 2_000 and counted[1] <= 2_600
    assert mask.any() and cube.any()


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ((np.zeros((0, 3)), np.zeros((0, 3), dtype=int)), "no triangles"),
        ((np.array([[0, 0, 0], [1, 0, 0], [np.nan, 1, 0]]), np.array([[0, 1, 2]])), "not finite"),
        ((np.zeros((3, 3)), np.array([[0, 1, 3]])), "doesn't exist"),
        ((np.zeros((3, 2)), np.array([[0, 1, 2]])), "shape"),
        ("a teapot", "expected a mesh"),
    ],
)
def test_bad_input_raises_value_error(value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_thumbnail(value)


def test_size_limits() -> None:
    box = trimesh.creation.box()
    for size in (8, 5000):
        with pytest.raises(ValueError, match="thumbnail size"):
            render_thumbnail(box, size=size)


def test_png_for_viewing(tmp_path: Path) -> None:
    # Also a smoke test that the bytes are a file any viewer opens.
    path = tmp_path / "cube.png"
    path.write_bytes(render_thumbnail(load_mesh(MODELS / "stl_binary_20mm_xyz_cube.stl", ".stl")))
    with Image.open(path) as image:
        image.verify()
