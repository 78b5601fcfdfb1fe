"""Turning a STEP file's surfaces into triangles, in a child process of its own (`python -m` this module).

OpenCASCADE (through `cascadio`) is native code: a hostile or enormous STEP file could crash it or
fill the memory. Run apart, it can at worst end its own process, which `meshes.py` reports as a
failed analysis; the child also caps its own memory and refuses more triangles than the lab analyses.
It writes the mesh (in millimetres) and the file's declared length unit to an .npz file.
"""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

#: Memory the child may use (address space): far more than a 50 MB STEP file needs.
MEMORY_BYTES = 3 * 1024**3
#: Exit codes the parent turns into reasons.
TOO_MANY_TRIANGLES = 3
NO_SHAPES = 4
#: How finely curved surfaces are cut into triangles: at most 0.05 mm from the true surface (a
#: printer's layer is 0.1–0.3 mm) and 0.35 rad (20°) between neighbouring triangles.
LINEAR_TOLERANCE_MM = 0.05
ANGULAR_TOLERANCE = 0.35

#: A STEP file's length unit, as its DATA section declares it (the mesh is in millimetres whatever it is).
_UNITS = (
    (re.compile(rb"SI_UNIT\s*\(\s*\.MILLI\.\s*,\s*\.METRE\.\s*\)", re.I), "millimeter"),
    (re.compile(rb"SI_UNIT\s*\(\s*\.CENTI\.\s*,\s*\.METRE\.\s*\)", re.I), "centimeter"),
    (re.compile(rb"SI_UNIT\s*\(\s*\.MICRO\.\s*,\s*\.METRE\.\s*\)", re.I), "micron"),
    (re.compile(rb"CONVERSION_BASED_UNIT\s*\(\s*'INCH'", re.I), "inch"),
    (re.compile(rb"CONVERSION_BASED_UNIT\s*\(\s*'FOOT'", re.I), "foot"),
    (re.compile(rb"SI_UNIT\s*\(\s*\$\s*,\s*\.METRE\.\s*\)", re.I), "meter"),
)


def declared_unit(data: bytes) -> str | None:
    """The length unit the file declares first, in the words of `domain.printability.UNIT_MM`."""
    found = [(match.start(), unit) for pattern, unit in _UNITS if (match := pattern.search(data))]
    return min(found)[1] if found else None


def convert(source: Path, target: Path, max_triangles: int) -> int:
    """Mesh `source` into `target` (.npz: vertices in mm, faces, unit); the process's exit code."""
    import cascadio
    import numpy as np
    import trimesh

    data = source.read_bytes()
    glb = cascadio.load(
        data,
        file_type="step",
        tol_linear=LINEAR_TOLERANCE_MM / 1000,  # cascadio's GLB is in metres
        tol_angular=ANGULAR_TOLERANCE,
        use_parallel=False,  # one thread: the memory cap stays meaningful
    )
    if not glb:
        return NO_SHAPES
    scene = trimesh.load(trimesh.util.wrap_as_stream(glb), file_type="glb", force="scene", process=False)
    del glb
    meshes = []
    for node in scene.graph.nodes_geometry:
        matrix, geometry_name = scene.graph[node]
        geometry = scene.geometry.get(geometry_name)
        if isinstance(geometry, trimesh.Trimesh):
            meshes.append((geometry, matrix))
    count = sum(len(mesh.faces) for mesh, _ in meshes)
    if count == 0:
        return NO_SHAPES
    if count > max_triangles:
        return TOO_MANY_TRIANGLES
    vertices, faces, offset = [], [], 0
    for mesh, matrix in meshes:
        placed = trimesh.transform_points(np.asarray(mesh.vertices, dtype=np.float64), matrix)
        vertices.append(placed * 1000.0)  # metres → millimetres
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
        offset += len(placed)
    np.savez(
        target,
        vertices=np.concatenate(vertices),
        faces=np.concatenate(faces),
        unit=np.array(declared_unit(data) or ""),
    )
    return 0


def main(argv: list[str]) -> int:
    source, target, max_triangles = Path(argv[0]), Path(argv[1]), int(argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    return convert(source, target, max_triangles)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
