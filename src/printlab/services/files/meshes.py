"""Reading a model file into one mesh: binary and ASCII STL, OBJ, 3MF (components, transforms,
units) and STEP (meshed by OpenCASCADE in a child process), within limits that keep a hostile file
from exhausting the worker."""

from __future__ import annotations

import io
import logging
import math
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.parsers import expat

import numpy as np
import trimesh
from trimesh.exchange.obj import load_obj

from printlab.domain.printability import UNIT_MM
from printlab.services.files import model_files, step_convert
from printlab.services.files.model_files import ModelRejected

log = logging.getLogger(__name__)

#: More triangles than this (after 3MF copies are placed) is refused rather than risking the
#: worker's memory: ~10× what a 50 MB binary STL can hold.
MAX_TRIANGLES = 10_000_000
#: 3MF objects placed (meshes and component groups, every copy counted): bounds the placing work
#: of an archive that nests components of components of empty objects.
MAX_PLACEMENTS = 100_000
#: Coordinates beyond this (in mm: 10,000 km) can't be a model, and would overflow the merge's integers.
MAX_COORDINATE = 1e10

#: How long meshing a STEP file's surfaces may take (the child process is stopped after it).
STEP_SECONDS = 120

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
assert _STL_RECORD.itemsize == model_files.STL_RECORD

_CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_PRODUCTION_NS = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
_XML_CHUNK = 1024 * 1024
_NESTING_LIMIT = 32

#: Cura's per-model mesh types (per-object settings it writes as `cura:<key>` metadata, "True" when
#: on): meshes that shape supports, infill or other meshes and are never printed themselves.
CURA_MODIFIER_SETTINGS = frozenset({"anti_overhang_mesh", "support_mesh", "infill_mesh", "cutting_mesh"})
#: PrusaSlicer's volume types (Metadata/Slic3r_PE_model.config) other than a printed "ModelPart".
PRUSA_MODIFIER_TYPES = frozenset({"ParameterModifier", "NegativeVolume", "SupportBlocker", "SupportEnforcer"})
#: Bambu Studio's and OrcaSlicer's part subtypes (Metadata/model_settings.config) other than "normal_part".
BAMBU_MODIFIER_SUBTYPES = frozenset({"modifier_part", "negative_part", "support_blocker", "support_enforcer"})
_PRUSA_CONFIG = "metadata/slic3r_pe_model.config"
_BAMBU_CONFIG = "metadata/model_settings.config"


class AnalysisFailed(Exception):
    """The model couldn't be analysed; `reason` is short and safe to show ("analysis failed: <reason>")."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# -- loading -----------------------------------------------------------------------------------


def load_mesh(path: Path, extension: str) -> trimesh.Trimesh:
    """The model as one triangle mesh in millimetres, vertices merged by position.

    Binary STL is decoded straight from its 50-byte records; ASCII STL is streamed line by line;
    OBJ goes through trimesh's parser (without materials: an upload's `mtllib` must not make us
    open other files); STEP is meshed by OpenCASCADE in a child process with a time and memory
    cap (`step_convert.py`); 3MF is read
    from the zip with bounded reads and its build items placed with their transforms and the file's
    unit, leaving out the slicer modifier meshes that aren't printed. `mesh.metadata` gets
    "printlab_kind", "file_units", "modifier_parts" (how many were left out) and
    "invalid_triangles" (triangles dropped for NaN/infinite coordinates). The mesh sits in reference cycles (trimesh's caches):
    a long-running caller should gc.collect() once done with it. Raises AnalysisFailed, or
    FileNotFoundError when the file isn't there (e.g. moved by a status change: worth a retry).
    """
    try:
        info = model_files.check_model(path, extension)
    except ModelRejected as error:
        raise AnalysisFailed(error.message) from None
    except FileNotFoundError:
        raise  # moved or deleted meanwhile (a status change): the caller may retry
    except OSError as error:
        raise AnalysisFailed(f"the file can't be read ({error.strerror or error})") from None

    file_units: str | None = None
    modifiers = 0
    if info.kind == "stl-binary":
        assert info.triangles is not None
        vertices, faces = _read_binary_stl(path, info.triangles)
    elif info.kind == "stl-ascii":
        vertices, faces = _read_ascii_stl(path)
    elif info.kind == "obj":
        vertices, faces = _read_obj(path)
    elif info.kind == "step":
        vertices, faces, file_units = _read_step(path)
    else:
        assert info.model_part is not None
        vertices, faces, file_units, modifiers = _read_3mf(path, info.model_part)
    mesh = _build_mesh(vertices, faces, info.kind, file_units)
    mesh.metadata["modifier_parts"] = modifiers
    return mesh


def _build_mesh(
    vertices: np.ndarray, faces: np.ndarray, kind: str, file_units: str | None
) -> trimesh.Trimesh:
    if len(faces) == 0:
        raise AnalysisFailed("the file holds no triangles")
    if len(faces) > MAX_TRIANGLES:
        raise AnalysisFailed(
            f"the model has {len(faces):,} triangles, more than the {MAX_TRIANGLES:,} we analyse"
        )
    if faces.shape[1] != 3:
        faces = _triangulate(faces)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise AnalysisFailed("a triangle refers to a vertex that doesn't exist")
    finite = np.isfinite(vertices).all(axis=1)
    invalid = 0
    if not finite.all():
        keep = finite[faces].all(axis=1)
        invalid = int(len(faces) - keep.sum())
        faces = faces[keep]
        vertices = np.where(finite[:, None], vertices, 0.0)  # now unreferenced; dropped by the merge
        if len(faces) == 0:
            raise AnalysisFailed("the file holds no triangles with valid coordinates")
    del finite
    if max(vertices.max(), -vertices.min()) > MAX_COORDINATE:
        raise AnalysisFailed("the model's coordinates are impossibly large")
    vertices, faces = merge_vertices(vertices, faces)
    # process=False: the merge above is the only processing wanted (trimesh's own merge does the
    # same by a slower route; nothing else may change what the student sent).
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    mesh.metadata.update({"printlab_kind": kind, "file_units": file_units, "invalid_triangles": invalid})
    return mesh


def _triangulate(faces: np.ndarray) -> np.ndarray:
    """Polygons with k corners (all the same k) as triangle fans."""
    corners = faces.shape[1]
    if corners < 3:
        raise AnalysisFailed("the file's faces have fewer than 3 corners")
    return np.concatenate([faces[:, [0, i, i + 1]] for i in range(1, corners - 1)])


def merge_vertices(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices that share a position (to 1e-8 mm, trimesh's merge tolerance) made one, unused ones dropped.

    STL and 3MF writers repeat a vertex for every triangle that uses it; edges only connect (and a
    mesh can only be watertight) once they are shared. Positions are rounded to integers of 1e-8
    mm, hashed to 64 bits and sorted: one O(n log n) sort of plain integers, several times faster
    than a row-wise unique. Hash collisions are detected and fall back to the exact row-wise way.
    """
    scaled = vertices * 1e8
    np.round(scaled, out=scaled)
    keys = scaled.astype(np.int64)
    del scaled
    hashed = _mix(keys)
    order = np.argsort(hashed)
    ordered = hashed[order]
    del hashed
    starts = np.empty(len(order), dtype=bool)
    starts[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    del ordered
    # Within a run of equal hashes every key must be equal too (checked a column at a time to
    # keep the temporaries small); otherwise two positions collided.
    collided = False
    for column in range(3):
        sorted_column = keys[order, column]
        collided = collided or bool((sorted_column[1:] != sorted_column[:-1])[~starts[1:]].any())
        del sorted_column
    if collided:  # vanishingly rare, but then be exact
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        unique_vertices, inverse = vertices[first], inverse.reshape(-1)
    else:
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = np.cumsum(starts) - 1
        unique_vertices = vertices[order[starts]]
    del keys, order, starts
    faces = inverse[faces]
    used = np.zeros(len(unique_vertices), dtype=bool)
    used[faces] = True
    if not used.all():
        remap = np.cumsum(used) - 1
        faces = remap[faces]
        unique_vertices = unique_vertices[used]
    return unique_vertices, faces


def _mix(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of three int64s: splitmix-style multiply/xor-shift rounds, one per
    column, so that structured inputs (mirror images, ±) don't cancel out. Arithmetic wraps."""
    bits = keys.view(np.uint64)
    hashed = bits[:, 0] * np.uint64(0x9E3779B97F4A7C15)
    for column in (1, 2):
        hashed ^= hashed >> np.uint64(31)
        hashed += bits[:, column]
        hashed *= np.uint64(0xBF58476D1CE4E5B9)
    hashed ^= hashed >> np.uint64(30)
    hashed *= np.uint64(0x94D049BB133111EB)
    hashed ^= hashed >> np.uint64(31)
    return hashed


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Σ a·(b×c)/6 over the triangles (divergence theorem), about the bounding-box centre for precision.

    Positive for a closed mesh whose faces wind counter-clockwise seen from outside.
    """
    centre = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    total = 0.0
    chunk = 1 << 18  # bounded temporaries: ~6 MB per array
    for start in range(0, len(faces), chunk):
        f = faces[start : start + chunk]
        a, b, c = (vertices[f[:, i]] - centre for i in range(3))
        total += float(
            (
                a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1])
                + a[:, 1] * (b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2])
                + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
            ).sum()
        )
    return total / 6


def _read_binary_stl(path: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    if count > MAX_TRIANGLES:
        raise AnalysisFailed(f"the model has {count:,} triangles, more than the {MAX_TRIANGLES:,} we analyse")
    with path.open("rb") as file:
        file.seek(model_files.STL_PREFIX)
        records = np.fromfile(file, dtype=_STL_RECORD, count=count)
    if len(records) != count:
        raise AnalysisFailed("the STL file is cut short")
    # One float64 copy of the corners; the records (normals, attributes) are dropped at once.
    vertices = records["vertices"].astype(np.float64).reshape(-1, 3)
    del records
    faces = np.arange(3 * count, dtype=np.int64).reshape(-1, 3)
    return vertices, faces


_ASCII_VERTEX = re.compile(rb"^[ \t]*vertex[ \t]+(\S+[ \t]+\S+[ \t]+\S+)", re.MULTILINE | re.IGNORECASE)
_TEXT_CHUNK = 8 * 1024 * 1024


def _read_ascii_stl(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every `vertex x y z` line, streamed in chunks; three make a triangle.

    trimesh's ASCII reader holds the whole text twice plus a Python string per vertex (about 12×
    the file in memory); this keeps one chunk's worth of text at a time.
    """
    batches: list[np.ndarray] = []
    carry = b""
    with path.open("rb") as file:
        while True:
            chunk = file.read(_TEXT_CHUNK)
            block = carry + chunk
            # Whole lines only; the unfinished last one waits for the next chunk (unless the file
            # has ended, or has gone megabytes without a line break).
            cut = max(block.rfind(b"\n"), block.rfind(b"\r")) + 1
            if not chunk or (cut == 0 and len(block) > 4 * _TEXT_CHUNK):
                cut = len(block)
            # Old Mac exporters end lines with \r alone: make every line break a \n for `^`.
            found = _ASCII_VERTEX.findall(block[:cut].replace(b"\r", b"\n"))
            carry = block[cut:]
            if found:
                try:
                    numbers = np.array(list(map(float, b" ".join(found).split())), dtype=np.float64)
                except ValueError:
                    raise AnalysisFailed("the STL file has a vertex that isn't three numbers") from None
                batches.append(numbers.reshape(-1, 3))
            if not chunk:
                break
    vertices = np.concatenate(batches) if batches else np.zeros((0, 3))
    if len(vertices) % 3:
        raise AnalysisFailed("the STL file has a facet without exactly three vertices")
    return vertices, np.arange(len(vertices), dtype=np.int64).reshape(-1, 3)


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    # Decoded here rather than by trimesh, which falls back to an optional charset detector for
    # anything not UTF-8; coordinates are ASCII whatever the encoding of names and comments.
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        loaded = load_obj(io.StringIO(text), resolver=None, skip_materials=True, group_material=False)
    except Exception as error:  # trimesh's parser raises anything on malformed input
        raise AnalysisFailed(f"the OBJ file can't be read as a mesh ({type(error).__name__})") from None
    del text
    parts = loaded["geometry"].values() if "geometry" in loaded else [loaded]
    return _concatenate([(p["vertices"], p["faces"]) for p in parts if "faces" in p])


def _read_step(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """(vertices in mm, faces, the file's declared length unit) from a child process that meshes the
    STEP file's surfaces; AnalysisFailed with the reason when it can't, or not in time."""
    with tempfile.TemporaryDirectory(prefix="printlab-step-") as folder:
        target = Path(folder) / "mesh.npz"
        command = [sys.executable, "-m", "printlab.services.files.step_convert", str(path), str(target)]
        try:
            done = subprocess.run(
                [*command, str(MAX_TRIANGLES)], capture_output=True, timeout=STEP_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            raise AnalysisFailed(
                f"turning the STEP file into triangles took more than {STEP_SECONDS} s"
            ) from None
        if done.returncode == step_convert.TOO_MANY_TRIANGLES:
            raise AnalysisFailed(f"the model has more than {MAX_TRIANGLES:,} triangles once meshed")
        if done.returncode == step_convert.NO_SHAPES:
            raise AnalysisFailed("the STEP file holds no solid or surface we can mesh")
        if done.returncode != 0 or not target.is_file():
            log.warning(
                "meshing a STEP file failed (exit %s): %s",
                done.returncode,
                done.stderr.decode("utf-8", "replace")[-500:],
            )
            raise AnalysisFailed("the STEP file's shapes couldn't be turned into triangles")
        with np.load(target, allow_pickle=False) as mesh:
            vertices, faces, unit = mesh["vertices"], mesh["faces"], str(mesh["unit"])
    return vertices, faces, unit or None


def _concatenate(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    if len(parts) == 1:
        vertices, faces = parts[0]
        return np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64)
    offsets = np.cumsum([0] + [len(v) for v, _ in parts[:-1]])
    vertices = np.concatenate([np.asarray(v, dtype=np.float64) for v, _ in parts])
    faces = np.concatenate(
        [np.asarray(f, dtype=np.int64) + o for (_, f), o in zip(parts, offsets, strict=True)]
    )
    return vertices, faces


# -- 3MF ---------------------------------------------------------------------------------------


def _refuse_dtd(*_args: object) -> None:
    raise AnalysisFailed("the 3MF model declares a DTD, which 3MF files may not")


def _xml_parser(start: Any, end: Any, *, namespaces: bool) -> Any:
    """An expat parser for one part of a 3MF archive, calling `start` and `end` for each element.

    3MF (like all OPC parts) forbids DTDs; refusing them rules out entity expansion.
    """
    parser = expat.ParserCreate(namespace_separator=" ") if namespaces else expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    return parser


def _feed(parser: Any, stream: Any) -> None:
    """Parse `stream` a chunk at a time, so a large part never sits in memory whole."""
    while chunk := stream.read(_XML_CHUNK):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


@dataclass
class _Object:
    vertices: np.ndarray | None = None
    triangles: np.ndarray | None = None
    #: (part holding the object, object id, 4×4 transform), the part being None for "this part"
    components: list[tuple[str | None, str, np.ndarray]] = field(default_factory=list)
    #: Cura marked it as one of its mesh types (CURA_MODIFIER_SETTINGS) that aren't printed.
    modifier: bool = False


@dataclass
class _Part:
    unit: str = "millimeter"
    objects: dict[str, _Object] = field(default_factory=dict)
    build: list[tuple[str | None, str, np.ndarray]] = field(default_factory=list)
    #: Objects left out as slicer modifiers (their meshes are dropped as they are read).
    modifiers: int = 0


class _PartParser:
    """Streams one 3MF model part through expat, keeping only numbers in numpy arrays."""

    _BATCH = 3 * 65536

    def __init__(self) -> None:
        self.part = _Part()
        self._object: _Object | None = None
        self._object_id = ""
        self._floats: list[float] = []
        self._ints: list[int] = []
        self._float_batches: list[np.ndarray] = []
        self._int_batches: list[np.ndarray] = []
        self._in_build = False
        self._setting: str | None = None  # the Cura setting whose <metadata> text is being read
        self._setting_text: list[str] = []
        self._parser: Any = None

    def parse(self, stream: io.BufferedIOBase | Any) -> _Part:
        self._parser = _xml_parser(self._start, self._end, namespaces=True)
        _feed(self._parser, stream)
        return self.part

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace != _CORE_NS:
            return
        if local == "vertex" and self._object is not None:
            floats = self._floats
            floats.append(float(attrs["x"]))
            floats.append(float(attrs["y"]))
            floats.append(float(attrs["z"]))
            if len(floats) >= self._BATCH:
                self._float_batches.append(np.array(floats, dtype=np.float64))
                floats.clear()
        elif local == "triangle" and self._object is not None:
            ints = self._ints
            ints.append(int(attrs["v1"]))
            ints.append(int(attrs["v2"]))
            ints.append(int(attrs["v3"]))
            if len(ints) >= self._BATCH:
                self._int_batches.append(np.array(ints, dtype=np.int64))
                ints.clear()
        elif local == "object":
            self._object = _Object()
            self._object_id = attrs["id"]
        elif local == "component" and self._object is not None:
            self._object.components.append(
                (attrs.get(f"{_PRODUCTION_NS} path"), attrs["objectid"], _transform(attrs.get("transform")))
            )
        elif local == "build":
            self._in_build = True
        elif local == "item" and self._in_build:
            self.part.build.append(
                (attrs.get(f"{_PRODUCTION_NS} path"), attrs["objectid"], _transform(attrs.get("transform")))
            )
        elif local == "model":
            self.part.unit = attrs.get("unit", "millimeter")
        elif local == "metadata" and self._object is not None:
            key = attrs.get("name", "").rpartition(":")[2]
            if attrs.get("name", "").startswith("cura:") and key in CURA_MODIFIER_SETTINGS:
                # Text is only collected here: a handler for every run of whitespace between
                # the millions of vertices would cost more than the mesh itself.
                self._setting, self._setting_text = key, []
                self._parser.CharacterDataHandler = self._setting_text.append

    def _end(self, name: str) -> None:
        namespace, _, local = name.rpartition(" ")
        if namespace != _CORE_NS:
            return
        if local == "vertices" and self._object is not None:
            self._object.vertices = _flush(self._float_batches, self._floats, np.float64).reshape(-1, 3)
        elif local == "triangles" and self._object is not None:
            self._object.triangles = _flush(self._int_batches, self._ints, np.int64).reshape(-1, 3)
        elif local == "object" and self._object is not None:
            if self._object.modifier:  # kept (build items and components may refer to it), but empty
                self._object = _Object(modifier=True)
                self.part.modifiers += 1
            self.part.objects[self._object_id] = self._object
            self._object = None
        elif local == "build":
            self._in_build = False
        elif local == "metadata" and self._setting is not None:
            self._parser.CharacterDataHandler = None
            if self._object is not None and "".join(self._setting_text).strip().lower() == "true":
                self._object.modifier = True
            self._setting = None


def _flush(batches: list[np.ndarray], pending: list[Any], dtype: type) -> np.ndarray:
    batches.append(np.array(pending, dtype=dtype))
    pending.clear()
    joined = np.concatenate(batches) if len(batches) > 1 else batches[0]
    batches.clear()
    if len(joined) % 3:
        raise AnalysisFailed("the 3MF model is malformed")
    return joined


def _transform(text: str | None) -> np.ndarray:
    """3MF's 12-number row-major 3×4 transform (points are row vectors) as a 4×4 column-vector matrix."""
    matrix = np.eye(4)
    if text:
        values = [float(v) for v in text.split()]
        if len(values) != 12 or not all(math.isfinite(v) for v in values):
            raise AnalysisFailed("the 3MF model has a malformed transform")
        matrix[:3, :3] = np.array(values[:9]).reshape(3, 3).T
        matrix[:3, 3] = values[9:]
    return matrix


def _read_3mf(path: Path, model_part: str) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(vertices in mm, faces, the declared unit, slicer modifier parts left out)."""
    try:
        with model_files.open_3mf(path) as archive:
            names = {name.lower(): name for name in archive.namelist()}
            parts: dict[str, _Part] = {}

            def part(name: str) -> _Part:
                member = names.get(name.lstrip("/").lower())
                if member is None:
                    raise AnalysisFailed(f"the 3MF model refers to a missing part {name[:60]!r}")
                if member not in parts:
                    with archive.open(member) as stream:
                        parts[member] = _PartParser().parse(stream)
                return parts[member]

            root = part(model_part)
            unit = root.unit
            if unit not in UNIT_MM:
                raise AnalysisFailed(f"the 3MF model uses an unknown unit {unit[:20]!r}")
            left_out = _leave_out_slicer_modifiers(archive, names, root)
            placed = _place(root, part, model_part)
            left_out += sum(p.modifiers for p in parts.values())
    except ModelRejected as error:
        raise AnalysisFailed(error.message) from None
    except (KeyError, ValueError, expat.ExpatError) as error:
        raise AnalysisFailed(
            f"the 3MF model is malformed ({type(error).__name__}: {str(error)[:80]})"
        ) from None
    except FileNotFoundError:
        raise
    except model_files.ZIP_ERRORS:
        raise AnalysisFailed("the 3MF file is damaged") from None
    vertices, faces = placed
    if UNIT_MM[unit] != 1.0:
        vertices *= UNIT_MM[unit]
    return vertices, faces, unit, left_out


class _ConfigParser:
    """Reads the modifier marks of PrusaSlicer's Slic3r_PE_model.config and Bambu Studio's /
    OrcaSlicer's model_settings.config (the same <config><object id> outline, different insides)."""

    def __init__(self) -> None:
        self.object_id: str | None = None
        #: PrusaSlicer: object id → inclusive triangle ranges of its modifier volumes.
        self.ranges: dict[str, list[tuple[int, int]]] = {}
        #: Bambu / Orca: object id → ids of the component objects that are modifier parts.
        self.parts: dict[str, set[str]] = {}
        self._volume: tuple[int, int] | None = None
        self._volume_is_modifier = False

    def parse(self, stream: Any) -> None:
        _feed(_xml_parser(self._start, self._end, namespaces=False), stream)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "object":
            self.object_id = attrs.get("id")
        elif name == "volume" and self.object_id is not None:
            try:
                self._volume = (int(attrs["firstid"]), int(attrs["lastid"]))
            except (KeyError, ValueError):  # a volume we can't place is left as printed
                self._volume = None
            self._volume_is_modifier = False
        elif name == "metadata" and self._volume is not None:
            key, value = attrs.get("key"), attrs.get("value", "")
            if (key == "volume_type" and value in PRUSA_MODIFIER_TYPES) or (
                key == "modifier" and value == "1"
            ):
                self._volume_is_modifier = True
        elif (
            name == "part" and self.object_id is not None and attrs.get("subtype") in BAMBU_MODIFIER_SUBTYPES
        ):
            self.parts.setdefault(self.object_id, set()).add(attrs.get("id", ""))

    def _end(self, name: str) -> None:
        if name == "object":
            self.object_id = None
        elif name == "volume" and self._volume is not None:
            if self._volume_is_modifier and self.object_id is not None:
                self.ranges.setdefault(self.object_id, []).append(self._volume)
            self._volume = None


def _leave_out_slicer_modifiers(archive: Any, names: dict[str, str], root: _Part) -> int:
    """Drop the modifier volumes PrusaSlicer, Bambu Studio and OrcaSlicer mark in their configs from
    the root part's objects (before anything is counted or placed); returns how many were dropped."""
    config = _ConfigParser()
    for folded in (_PRUSA_CONFIG, _BAMBU_CONFIG):
        if folded in names:
            try:
                with archive.open(names[folded]) as stream:
                    config.parse(stream)
            except expat.ExpatError:  # a damaged config: the model is still measured, modifiers and all
                log.warning("unreadable slicer config %s in a 3MF", folded)
    left_out = 0
    for object_id, ranges in config.ranges.items():
        obj = root.objects.get(object_id)
        if obj is None or obj.triangles is None:
            continue
        count = len(obj.triangles)
        valid = [(first, last) for first, last in ranges if 0 <= first <= last < count]
        if not valid:
            continue
        # Marks at each range's start and end, summed along: linear however many ranges overlap.
        edges = np.zeros(count + 1, dtype=np.int64)
        np.add.at(edges, [first for first, _ in valid], 1)
        np.add.at(edges, [last + 1 for _, last in valid], -1)
        obj.triangles = obj.triangles[np.cumsum(edges[:count]) == 0]
        left_out += len(valid)
    for object_id, part_ids in config.parts.items():
        obj = root.objects.get(object_id)
        if obj is None:
            continue
        before = obj.components
        obj.components = [c for c in before if c[1] not in part_ids]
        left_out += len({c[1] for c in before} - {c[1] for c in obj.components})
    return left_out


def _check_size(faces: int, placements: int) -> None:
    if faces > MAX_TRIANGLES:
        raise AnalysisFailed(f"the model has more than {MAX_TRIANGLES:,} triangles once every copy is placed")
    if placements > MAX_PLACEMENTS:
        raise AnalysisFailed(f"the 3MF model places more than {MAX_PLACEMENTS:,} objects")


def _place(root: _Part, part: Any, root_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Every build item's meshes, with component and item transforms applied, in one pair of arrays.

    Counts first (memoised per object) so an archive that instances a mesh millions of times is
    refused before anything is allocated; nesting loops and depth are refused too.
    """
    # (vertices, faces, placements) per object, placements counting every object reached, so
    # that deep chains of empty components can't make the placing loop run forever either.
    counts: dict[tuple[str, str], tuple[int, int, int]] = {}

    def resolve(part_name: str | None, object_id: str, current: str) -> tuple[str, _Object]:
        name = (part_name or current).lstrip("/")
        obj = part(name).objects.get(object_id)
        if obj is None:
            raise AnalysisFailed(f"the 3MF model refers to a missing object {object_id[:20]!r}")
        return name, obj

    def count(
        name: str, object_id: str, obj: _Object, stack: tuple[tuple[str, str], ...]
    ) -> tuple[int, int, int]:
        key = (name.lower(), object_id)
        if key in counts:
            return counts[key]
        if key in stack:
            raise AnalysisFailed("the 3MF model's components refer to each other in a loop")
        if len(stack) > _NESTING_LIMIT:
            raise AnalysisFailed(f"the 3MF model's components are nested more than {_NESTING_LIMIT} deep")
        total = (len(obj.vertices), len(obj.triangles), 1) if _has_mesh(obj) else (0, 0, 1)  # type: ignore[arg-type]
        for child_part, child_id, _ in obj.components:
            child_name, child = resolve(child_part, child_id, name)
            child_total = count(child_name, child_id, child, (*stack, key))
            total = (total[0] + child_total[0], total[1] + child_total[1], total[2] + child_total[2])
            _check_size(total[1], total[2])
        counts[key] = total
        return total

    total_vertices = total_faces = placements = 0
    items = []
    for item_part, object_id, matrix in root.build:
        name, obj = resolve(item_part, object_id, root_name)
        v, f, n = count(name, object_id, obj, ())
        total_vertices, total_faces, placements = total_vertices + v, total_faces + f, placements + n
        _check_size(total_faces, placements)
        items.append((name, obj, matrix))
    if total_faces == 0:
        raise AnalysisFailed("the 3MF project has no objects on its build plate")

    vertices = np.empty((total_vertices, 3), dtype=np.float64)
    faces = np.empty((total_faces, 3), dtype=np.int64)
    at_v = at_f = 0

    def emit(name: str, obj: _Object, matrix: np.ndarray) -> None:
        nonlocal at_v, at_f
        if _has_mesh(obj):
            assert obj.vertices is not None and obj.triangles is not None
            n_v, n_f = len(obj.vertices), len(obj.triangles)
            tri = obj.triangles
            if tri.min() < 0 or tri.max() >= n_v:
                raise AnalysisFailed("a triangle refers to a vertex that doesn't exist")
            np.matmul(obj.vertices, matrix[:3, :3].T, out=vertices[at_v : at_v + n_v])
            vertices[at_v : at_v + n_v] += matrix[:3, 3]
            # A mirroring transform turns the surface inside out; reversing the corner order
            # keeps the normals pointing outwards so volumes still add up.
            faces[at_f : at_f + n_f] = (tri[:, ::-1] if np.linalg.det(matrix[:3, :3]) < 0 else tri) + at_v
            at_v, at_f = at_v + n_v, at_f + n_f
        for child_part, child_id, child_matrix in obj.components:
            child_name, child = resolve(child_part, child_id, name)
            emit(child_name, child, matrix @ child_matrix)

    for name, obj, matrix in items:
        emit(name, obj, matrix)
    assert (at_v, at_f) == (total_vertices, total_faces)  # counted and placed alike: no unset rows
    return vertices, faces


def _has_mesh(obj: _Object) -> bool:
    """An object with triangles of its own (a mesh with none adds nothing, not even vertices)."""
    return obj.vertices is not None and obj.triangles is not None and len(obj.triangles) > 0
