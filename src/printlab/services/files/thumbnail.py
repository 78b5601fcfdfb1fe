"""Thumbnail PNGs of a mesh, drawn on the CPU with numpy alone: no GPU, no display, no OpenGL."""

from __future__ import annotations

import io
import math
from typing import Any, Protocol

import numpy as np
from PIL import Image

#: Where the camera looks from (Z is up, as in STL/3MF and slicers): front-right, above.
VIEW_FROM = (1.0, -1.2, 0.9)
#: Light direction in view space (x right, y up, z towards the viewer): from the upper left.
LIGHT = (-0.45, 0.6, 0.75)
AMBIENT = 0.28
BASE_COLOR = (70, 130, 200)  # a neutral "printed plastic" blue, readable on light and dark cards
#: Share of the image the model's longer side fills.
FILL = 0.9
#: Sample spacing on a triangle, in pixels. Every point of a triangle is then within
#: 0.7 / √2 ≈ 0.49 px of a sample, so every pixel wholly inside a triangle holds one: no holes.
SPACING = 0.7
#: A triangle with no side longer than this is drawn from its corners and centroid alone: every
#: point of it is then within half this of one of them, so it leaves no hole either.
SMALL = 1.0
#: Upper bound on samples per image: 4 per triangle (corners + centroid) for 1,000,000 triangles.
MAX_SAMPLES = 4_000_000


def _view_basis() -> np.ndarray:
    """Rows: screen right, screen up, towards the viewer — an orthonormal, right-handed basis."""
    towards = np.array(VIEW_FROM, dtype=np.float64)
    towards /= np.linalg.norm(towards)
    right = np.cross([0.0, 0.0, 1.0], towards)
    right /= np.linalg.norm(right)
    up = np.cross(towards, right)
    return np.stack([right, up, towards])


class MeshLike(Protocol):
    """Anything with trimesh's `vertices` (n, 3) and `faces` (m, 3) arrays."""

    @property
    def vertices(self) -> Any: ...

    @property
    def faces(self) -> Any: ...


#: A mesh, a (vertices, faces) pair, or an (m, 3, 3) array of triangle corners.
MeshInput = MeshLike | tuple[np.ndarray, np.ndarray] | np.ndarray


def _arrays(mesh_or_arrays: MeshInput) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (n, 3), faces (m, 3)) from a trimesh.Trimesh, a (vertices, faces) pair or (m, 3, 3) triangles."""
    if hasattr(mesh_or_arrays, "vertices") and hasattr(mesh_or_arrays, "faces"):
        return np.asarray(mesh_or_arrays.vertices), np.asarray(mesh_or_arrays.faces)
    if isinstance(mesh_or_arrays, tuple) and len(mesh_or_arrays) == 2:
        vertices, faces = (np.asarray(a) for a in mesh_or_arrays)
        return vertices, faces
    triangles = np.asarray(mesh_or_arrays)
    if triangles.ndim == 3 and triangles.shape[1:] == (3, 3):
        return triangles.reshape(-1, 3), np.arange(len(triangles) * 3).reshape(-1, 3)
    raise ValueError("expected a mesh, a (vertices, faces) pair or an (n, 3, 3) array of triangles")


def render_thumbnail(mesh_or_arrays: MeshInput, size: int = 256) -> bytes:
    """A size × size RGBA PNG of the mesh: orthographic three-quarter view, Lambert-shaded, transparent background.

    Rasterises by point sampling: each triangle gets points spaced under a pixel apart (at least
    its corners and centroid), every sample lands in a pixel, and the sample nearest the viewer
    wins (a z-buffer through np.maximum.at). Shading is two-sided (|n·l|), so open meshes and
    inside-out faces still read as surfaces. The same input gives the same bytes. Raises
    ValueError for something that isn't a mesh, has no triangles, refers to missing vertices or
    has vertices that are not finite numbers.
    """
    if not 16 <= size <= 4096:
        raise ValueError(f"thumbnail size must be 16–4096 pixels, got {size}")
    vertices, faces = _arrays(mesh_or_arrays)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError("expected vertices of shape (n, 3) and faces of shape (m, 3)")
    if len(faces) == 0:
        raise ValueError("the mesh has no triangles to draw")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError("a triangle refers to a vertex that doesn't exist")

    # Project each vertex once: x right, y up, z towards the viewer.
    view = np.asarray(vertices, dtype=np.float64) @ _view_basis().T
    used = np.zeros(len(view), dtype=bool)
    used[faces] = True
    # Unreferenced vertices must not shrink the picture (load_mesh() leaves none, so the copy
    # is usually skipped).
    referenced = view if used.all() else view[used]
    del used
    if not np.isfinite(referenced).all():
        raise ValueError("the mesh has vertices that are not finite numbers")
    low = referenced[:, :2].min(axis=0)
    high = referenced[:, :2].max(axis=0)
    del referenced
    span = float(max(high[0] - low[0], high[1] - low[1]))
    scale = FILL * size / span if span > 0 else 1.0
    centre = (low + high) / 2
    # Pixels: x to the right, y downwards, the model's bounding box centred; depth scaled alike
    # so that screen space is view space mirrored in y and uniformly scaled (for the normals).
    sx = ((view[:, 0] - centre[0]) * scale + size / 2).astype(np.float32)
    sy = (size / 2 - (view[:, 1] - centre[1]) * scale).astype(np.float32)
    sz = (view[:, 2] * scale).astype(np.float32)
    del view
    # Per triangle corner, one contiguous (m, 3) array per coordinate.
    x, y, z = sx[faces], sy[faces], sz[faces]
    del sx, sy, sz

    intensity = _shade(x, y, z)
    px, py, pz, shade = _sample(x, y, z, intensity)
    del x, y, z, intensity
    return _encode(_zbuffer(px, py, pz, shade, size), size)


def _shade(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per-triangle brightness in 0..1: ambient + diffuse × |cos| between the face normal and the light."""
    # Edges in view space (screen y points down, so it is negated back).
    ux, uy, uz = x[:, 1] - x[:, 0], y[:, 0] - y[:, 1], z[:, 1] - z[:, 0]
    vx, vy, vz = x[:, 2] - x[:, 0], y[:, 0] - y[:, 2], z[:, 2] - z[:, 0]
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    del ux, uy, uz, vx, vy, vz
    norm = math.sqrt(sum(c * c for c in LIGHT))
    lx, ly, lz = (c / norm for c in LIGHT)  # Python floats keep the arithmetic in float32
    length = np.sqrt(nx * nx + ny * ny + nz * nz)
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.abs(nx * lx + ny * ly + nz * lz) / length
    cosine = np.nan_to_num(cosine, nan=0.0, posinf=0.0, neginf=0.0)  # degenerate: ambient only
    return (AMBIENT + (1 - AMBIENT) * np.clip(cosine, 0, 1)).astype(np.float32)


def _grid(a: int, b: int) -> np.ndarray:
    """Barycentric weights ((a+1)(b+1), 3) of the points v0 + u·((1-w)·e1 + w·e2), u = i/a, w = j/b."""
    u, w = np.meshgrid(np.arange(a + 1) / a, np.arange(b + 1) / b, indexing="ij")
    u, w = u.ravel(), w.ravel()
    return np.stack([1 - u, u * (1 - w), u * w], axis=1).astype(np.float32)


def _levels(steps: np.ndarray) -> np.ndarray:
    """Each step count rounded up to the next power of √2, rounded up (1, 2, 4, 6, 8, 12, 16, 23, 32, …)."""
    if len(steps) == 0:
        return steps
    return np.maximum(steps, np.ceil(2 ** (np.ceil(np.log2(steps) * 2 - 1e-9) / 2)).astype(np.int64))


def _sample(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, intensity: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample points (x, y, depth) covering every triangle, and each point's brightness.

    A triangle whose sides are all under a pixel gets its corners and centroid. A larger
    one gets a grid fanned out from the corner opposite its shortest side: `a` steps along the
    two long sides and `b` across, so a long sliver costs about its area, not its length squared.
    Every grid cell has sides under the spacing, so every point is within spacing/√2 of a sample.
    """
    lengths = np.stack(
        [
            np.hypot(x[:, 2] - x[:, 1], y[:, 2] - y[:, 1]),  # the side opposite corner 0
            np.hypot(x[:, 0] - x[:, 2], y[:, 0] - y[:, 2]),  # opposite corner 1
            np.hypot(x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]),  # opposite corner 2
        ],
        axis=1,
    )
    small = lengths.max(axis=1) <= SMALL
    n_small = int(small.sum())
    # The samples for the big triangles: what the small ones leave of the budget, but at least
    # a quarter of it. A grid needs 4 points at least; with more big triangles than that allows
    # (millions of overlapping slivers), they are all drawn the small way and thinned instead.
    budget = max(MAX_SAMPLES - min(4 * n_small, MAX_SAMPLES), MAX_SAMPLES // 4)
    if 4 * (len(small) - n_small) > budget:
        small[:] = True
        n_small = len(small)
    big = np.nonzero(~small)[0]
    big_lengths = lengths[big]
    del lengths

    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    zs: list[np.ndarray] = []
    shades: list[np.ndarray] = []

    if n_small:
        if n_small == len(small):  # the usual case for big meshes: no copies
            sx, sy, sz, shade = x, y, z, intensity
        else:
            sx, sy, sz, shade = x[small], y[small], z[small], intensity[small]
        if 4 * n_small > MAX_SAMPLES:
            # Millions of triangles: a regular stride keeps the surface evenly covered.
            stride = math.ceil(4 * n_small / MAX_SAMPLES)
            sx, sy, sz, shade = sx[::stride], sy[::stride], sz[::stride], shade[::stride]
        for values, out in ((sx, xs), (sy, ys), (sz, zs)):
            out.append(values.ravel())  # corners
            out.append((values[:, 0] + values[:, 1] + values[:, 2]) / 3)  # centroids
        shades += [np.repeat(shade, 3), shade]
        del sx, sy, sz, shade

    if len(big):
        # Corner order rotated so that corner 0 faces the shortest side.
        shortest_at = big_lengths.argmin(axis=1)
        longest = big_lengths.max(axis=1)
        shortest = big_lengths[np.arange(len(big)), shortest_at]
        rotate = (shortest_at[:, None] + np.arange(3)) % 3
        bx, by, bz = (np.take_along_axis(c[big], rotate, axis=1) for c in (x, y, z))
        spacing = SPACING
        for _ in range(4):
            steps_a = _levels(np.ceil(longest / spacing).astype(np.int64))
            steps_b = _levels(np.maximum(1, np.ceil(shortest / spacing)).astype(np.int64))
            needed = int(((steps_a + 1) * (steps_b + 1)).sum())
            if needed <= budget:
                break
            # Over budget: a coarser grid on the big triangles keeps the time bounded, at the
            # risk of pinholes inside them (the count shrinks with the spacing squared).
            spacing *= math.sqrt(needed / budget)
        keys = steps_a * (int(steps_b.max()) + 1) + steps_b
        for key in np.unique(keys):
            chosen = keys == key
            a, b = int(steps_a[chosen][0]), int(steps_b[chosen][0])
            weights = _grid(a, b).T  # (3, points)
            # (triangles, points): each point a weighted sum of its triangle's corners.
            xs.append((bx[chosen] @ weights).ravel())
            ys.append((by[chosen] @ weights).ravel())
            zs.append((bz[chosen] @ weights).ravel())
            shades.append(np.repeat(intensity[big[chosen]], weights.shape[1]))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(zs), np.concatenate(shades)


def _zbuffer(x: np.ndarray, y: np.ndarray, depth: np.ndarray, shades: np.ndarray, size: int) -> np.ndarray:
    """Brightness per pixel (NaN where nothing was drawn) from the sample nearest the viewer in each pixel."""
    column = np.clip(x.astype(np.int32), 0, size - 1)  # truncation is floor: coordinates are ≥ 0
    row = np.clip(y.astype(np.int32), 0, size - 1)
    pixel = row * size + column
    del column, row
    nearest = np.full(size * size, -np.inf, dtype=np.float32)
    np.maximum.at(nearest, pixel, depth)
    # Samples tied for nearest carry the same depth; any of them may paint the pixel, and numpy
    # paints them in the same order for the same input, so the image is reproducible.
    winners = depth == nearest[pixel]
    image = np.full(size * size, np.nan, dtype=np.float32)
    image[pixel[winners]] = shades[winners]
    return image


def _encode(brightness: np.ndarray, size: int) -> bytes:
    drawn = ~np.isnan(brightness)
    rgba = np.zeros((size * size, 4), dtype=np.uint8)
    level = brightness[drawn][:, None]
    rgba[drawn, :3] = np.clip(level * np.array(BASE_COLOR, dtype=np.float32) + 25 * level, 0, 255).astype(
        np.uint8
    )
    rgba[drawn, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba.reshape(size, size, 4)).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()
