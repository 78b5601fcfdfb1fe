"""Content checks on uploads: every fixture model passes, and each kind of bad file is refused in plain words."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from printlab.services.files import model_files
from printlab.services.files.model_files import ModelInfo, ModelRejected, check_model, read_member

from .conftest import MODELS

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
HALF_DONUT = MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl"
TRAY = MODELS / "stl_ascii_solidworks_1002_tray_bottom.STL"
CYLINDERS = MODELS / "3mf_consortium_multiple_cylinders.3mf"

MODEL_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02">'
    b'<resources><object id="1" type="model"><mesh><vertices>'
    b'<vertex x="0" y="0" z="0"/><vertex x="1" y="0" z="0"/><vertex x="0" y="1" z="0"/>'
    b'</vertices><triangles><triangle v1="0" v2="1" v3="2"/></triangles></mesh></object></resources>'
    b'<build><item objectid="1"/></build></model>'
)
RELS = (
    b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Target="/%s" Id="rel0" Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
    b"</Relationships>"
)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def make_3mf(path: Path, model_name: str = "3D/3dmodel.model", rels: bool = True, **extra: bytes) -> Path:
    members = {model_name: MODEL_XML}
    if rels:
        members["_rels/.rels"] = RELS % model_name.encode()
    members.update(extra)
    return make_zip(path, members)


def rejected(path: Path, extension: str, **kwargs: int) -> str:
    with pytest.raises(ModelRejected) as caught:
        check_model(path, extension, **kwargs)
    assert str(caught.value) == caught.value.message
    return caught.value.message


# -- every fixture model is accepted for what it is ----------------------------------------------

FIXTURE_KINDS = {
    "stl_ascii_solidworks_1002_tray_bottom.STL": ModelInfo("stl-ascii"),
    "stl_binary_20mm_xyz_cube.stl": ModelInfo("stl-binary", 260),
    "stl_binary_solid_header_rear_case.stl": ModelInfo("stl-binary", 18808),
    # 84 + 50·288 + 1 bytes, header "solid test.stl": binary despite both traps.
    "stl_binary_solid_header_trailing_byte_HalfDonut.stl": ModelInfo("stl-binary", 288),
    "stl_binary_nonwatertight_teapot.stl": ModelInfo("stl-binary", 894),
    "box.obj": ModelInfo("obj"),
    "obj_fandisk.obj": ModelInfo("obj"),
    "3mf_cura_4.4.1_HTV_engine_7_items.3mf": ModelInfo("3mf", model_part="3D/3dmodel.model"),
    "3mf_consortium_multiple_cylinders.3mf": ModelInfo("3mf", model_part="3D/3dmodel.model"),
    "3mf_inch_featuretype.3MF": ModelInfo("3mf", model_part="3D/3dmodel.model"),
    "step_ap214_box_30x20x10.step": ModelInfo("step"),
}


def test_every_fixture_model_has_an_expected_kind() -> None:
    on_disk = {p.name for p in MODELS.iterdir() if p.suffix.lower() in model_files.MODEL_EXTENSIONS}
    assert on_disk == set(FIXTURE_KINDS)


@pytest.mark.parametrize("name", sorted(FIXTURE_KINDS))
def test_fixture_models_are_accepted(name: str) -> None:
    path = MODELS / name
    assert check_model(path, path.suffix.lower()) == FIXTURE_KINDS[name]


@pytest.mark.parametrize("extension", [".STL", "stl", " .stl "])
def test_extension_is_normalised(extension: str) -> None:
    assert check_model(CUBE, extension).kind == "stl-binary"


def test_other_extensions_are_refused(tmp_path: Path) -> None:
    assert rejected(CUBE, ".igs") == "Only .stl, .obj, .3mf, .step and .stp files are accepted."


# -- STEP ------------------------------------------------------------------------------------------

STEP_BOX = MODELS / "step_ap214_box_30x20x10.step"


@pytest.mark.parametrize("extension", [".step", ".stp", ".STEP", ".STP"])
def test_a_step_file_is_accepted_under_either_extension(extension: str) -> None:
    assert check_model(STEP_BOX, extension) == ModelInfo("step")


def test_a_step_file_with_a_byte_order_mark_and_crlf_lines_is_accepted(tmp_path: Path) -> None:
    windows = write(tmp_path / "box.stp", b"\xef\xbb\xbf" + STEP_BOX.read_bytes().replace(b"\n", b"\r\n"))
    assert check_model(windows, ".stp").kind == "step"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"solid cube\nfacet normal 0 0 1\n", "This .step file isn't a STEP model (it looks like text)."),
        (CUBE.read_bytes(), "This .step file isn't a STEP model (it looks like another kind of file)."),
        (b"%PDF-1.7 drawing", "This .step file isn't a 3D model (it looks like a PDF document)."),
        (b'<?xml version="1.0"?><iso_10303_28>', "This .step file is STEP written as XML"),
        (b"PK\x03\x04zipped", "This .step file is a ZIP archive (a compressed STEP file?)"),
    ],
)
def test_a_file_that_isnt_step_is_refused_with_what_to_export(
    tmp_path: Path, content: bytes, message: str
) -> None:
    found = rejected(write(tmp_path / "part.step", content), ".step")
    assert found.startswith(message)
    if "isn't a STEP model" in message or "XML" in message:
        assert "STL" in found and "3MF" in found  # what to export instead


def test_a_step_file_cut_short_is_refused(tmp_path: Path) -> None:
    data = STEP_BOX.read_bytes()
    cut = write(tmp_path / "cut.step", data[: len(data) // 2])
    assert rejected(cut, ".step").startswith("This STEP file is cut short")


def test_a_step_file_without_shapes_is_refused(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.step", b"ISO-10303-21;\nHEADER;\nENDSEC;\nEND-ISO-10303-21;\n")
    assert (
        rejected(empty, ".step")
        == "This STEP file has no shapes in it. Export it again from your CAD program."
    )


# -- STL -------------------------------------------------------------------------------------------


def binary_stl(
    count: int, header: bytes = b"binary", records: int | None = None, trailing: bytes = b""
) -> bytes:
    body = np.zeros((count if records is None else records, 50), dtype=np.uint8).tobytes()
    return header.ljust(80, b" ") + struct.pack("<I", count) + body + trailing


def test_empty_file_is_refused(tmp_path: Path) -> None:
    for extension in (".stl", ".obj", ".3mf"):
        assert rejected(write(tmp_path / f"empty{extension}", b""), extension) == "This file is empty."


def test_text_renamed_stl_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.stl", b"Dear lab,\nplease print my model.\n" * 20)
    assert rejected(path, ".stl") == "This .stl file isn't a 3D model (it looks like text)."


def test_obj_renamed_stl_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "box.stl", (MODELS / "box.obj").read_bytes())
    assert "looks like an OBJ model" in rejected(path, ".stl")


def test_truncated_binary_stl_says_how_much_is_missing(tmp_path: Path) -> None:
    data = CUBE.read_bytes()
    path = write(tmp_path / "cut.stl", data[: 84 + 50 * 12 + 7])
    assert rejected(path, ".stl") == (
        "This STL file is cut short: it says it has 260 triangles but holds only 12. "
        "Export it again from your design program."
    )


def test_truncated_binary_stl_with_solid_header_is_called_binary(tmp_path: Path) -> None:
    # rear_case's header starts "solid"; cut short it must not be mistaken for a damaged ASCII STL.
    data = (MODELS / "stl_binary_solid_header_rear_case.stl").read_bytes()
    path = write(tmp_path / "cut.stl", data[:20_000])
    assert "says it has 18,808 triangles but holds only 398" in rejected(path, ".stl")


def test_binary_stl_with_no_triangles_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "zero.stl", binary_stl(0))
    assert rejected(path, ".stl") == "This STL file has no triangles in it."


def test_binary_stl_shorter_than_its_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "short.stl", b"\x01\x02\x03" * 10)
    assert rejected(path, ".stl") == "This .stl file is too short to hold a 3D model."


@pytest.mark.parametrize("trailing", [1, 2, 49])
def test_a_few_trailing_bytes_are_accepted_even_with_a_solid_header(tmp_path: Path, trailing: int) -> None:
    path = write(tmp_path / "t.stl", binary_stl(3, header=b"solid part", trailing=b"\n" * trailing))
    assert check_model(path, ".stl") == ModelInfo("stl-binary", 3)


def test_a_whole_extra_record_is_damage(tmp_path: Path) -> None:
    path = write(tmp_path / "t.stl", binary_stl(3, records=4))
    assert rejected(path, ".stl") == (
        "This STL file is damaged: it says it has 3 triangles but is 50 bytes longer than that. Export it again."
    )


def test_ascii_stl_without_endsolid_is_cut_short(tmp_path: Path) -> None:
    data = TRAY.read_bytes()
    path = write(tmp_path / "cut.stl", data[: len(data) // 2])
    assert "cut short" in rejected(path, ".stl")


def test_ascii_stl_with_no_facets_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "none.stl", b"solid nothing\nendsolid nothing\n")
    assert rejected(path, ".stl") == "This STL file has no triangles in it."


def test_ascii_stl_is_recognised_from_its_ends_alone(tmp_path: Path) -> None:
    # 20 MB whose middle is NUL bytes (a sparse file): only the first and last few KB are read.
    head = TRAY.read_bytes()[:16_000]
    path = tmp_path / "big.stl"
    with path.open("wb") as file:
        file.write(head)
        file.seek(20 * 2**20)
        file.write(b"\n  endfacet\nendsolid 1002_tray_bottom\n")
    assert check_model(path, ".stl") == ModelInfo("stl-ascii")


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"PK\x03\x04" + b"\x00" * 200, "ZIP archive"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "a PNG image"),
        (b"%PDF-1.7\n" + b"\x00" * 200, "a PDF document"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "a JPEG image"),
    ],
)
def test_other_formats_renamed_stl_are_named(tmp_path: Path, data: bytes, what: str) -> None:
    assert what in rejected(write(tmp_path / "x.stl", data), ".stl")


def test_a_3mf_renamed_stl_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "project.stl", CYLINDERS.read_bytes())
    assert "really a ZIP archive" in rejected(path, ".stl")


# -- OBJ -------------------------------------------------------------------------------------------


def test_png_renamed_obj_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "photo.obj", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    assert rejected(path, ".obj") == "This .obj file isn't a 3D model (it looks like a PNG image)."


def test_binary_stl_renamed_obj_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "cube.obj", CUBE.read_bytes())
    assert "looks like an STL model" in rejected(path, ".obj")


def test_ascii_stl_renamed_obj_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "tray.obj", TRAY.read_bytes())
    assert "looks like an STL model" in rejected(path, ".obj")


def test_random_binary_named_obj_is_refused(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    assert rejected(write(tmp_path / "x.obj", data), ".obj") == (
        "This .obj file isn't a 3D model (it isn't a text file)."
    )


def test_text_renamed_obj_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "essay.obj", b"My final project is a vase.\n" * 10)
    assert rejected(path, ".obj") == "This .obj file isn't a 3D model (it looks like text)."


def test_obj_without_faces_is_a_point_cloud(tmp_path: Path) -> None:
    path = write(tmp_path / "points.obj", b"# points\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n")
    assert "has points but no faces" in rejected(path, ".obj")


def test_obj_with_too_few_vertices_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "two.obj", b"v 0 0 0\nv 1 0 0\nf 1 2 1\n")
    assert rejected(path, ".obj") == "This OBJ file has too few vertices to make a 3D model."


def test_obj_with_binary_data_later_is_refused(tmp_path: Path) -> None:
    # Past the first 8 KB that the type sniffing looks at.
    path = write(tmp_path / "x.obj", b"v 0 0 0\n" * 2000 + b"\x00" * 100 + b"\nf 1 2 3\n")
    assert rejected(path, ".obj") == "This .obj file is damaged: it contains binary data."


def test_obj_faces_after_megabytes_of_vertices_are_found(tmp_path: Path) -> None:
    # Exporters write every vertex first: the face is found past several 1 MiB read chunks, and
    # a vertex line split across a chunk boundary doesn't confuse the count.
    vertices = b"".join(b"v %d.125 %d.5 -%d\n" % (i, i, i) for i in range(250_000))
    path = write(tmp_path / "big.obj", b"# big\r\n" + vertices + b"f 1 2 3\r\n")
    assert path.stat().st_size > 3 * 2**20
    assert check_model(path, ".obj") == ModelInfo("obj")


def test_obj_with_crlf_and_indented_lines_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "tri.obj", b"o tri\r\n  v 0 0 0\r\n\tv 1 0 0\r\nv 0 1 0\r\nf 1/1 2/2 3/3\r\n")
    assert check_model(path, ".obj") == ModelInfo("obj")


def test_obj_that_is_one_huge_line_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    path = write(tmp_path / "line.obj", b"# " + b"x" * (9 * 2**20))
    assert rejected(path, ".obj") == "This .obj file isn't a 3D model (it looks like text)."


# -- 3MF -------------------------------------------------------------------------------------------


def test_minimal_3mf_is_accepted(tmp_path: Path) -> None:
    assert check_model(make_3mf(tmp_path / "m.3mf"), ".3mf") == ModelInfo(
        "3mf", model_part="3D/3dmodel.model"
    )


def test_model_part_is_found_through_the_package_relationship(tmp_path: Path) -> None:
    path = make_3mf(tmp_path / "m.3mf", model_name="3D/Part_A.model", **{"3D/other.model": b"<model/>"})
    assert check_model(path, ".3mf").model_part == "3D/Part_A.model"


def test_model_part_name_is_case_insensitive_without_relationships(tmp_path: Path) -> None:
    path = make_3mf(tmp_path / "m.3mf", model_name="3d/3DModel.MODEL", rels=False)
    assert check_model(path, ".3mf").model_part == "3d/3DModel.MODEL"


def test_zip_without_a_model_part_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "photos.3mf", {"readme.txt": b"hello", "Metadata/thumbnail.png": b"x"})
    assert rejected(path, ".3mf") == "This .3mf file is damaged or isn't a 3MF project."


def test_model_part_that_is_not_xml_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "m.3mf", {"3D/3dmodel.model": b"\x00\x01 not xml at all"})
    assert rejected(path, ".3mf") == "This .3mf file is damaged or isn't a 3MF project."


def test_zip_bomb_is_refused(tmp_path: Path) -> None:
    # 20 MiB of zeros deflate to ~20 KB: about 1000:1.
    path = make_3mf(tmp_path / "bomb.3mf", **{"Metadata/padding.bin": bytes(20 * 2**20)})
    assert path.stat().st_size < 100_000
    message = rejected(path, ".3mf")
    assert message.startswith("This .3mf file looks like a zip bomb: 'Metadata/padding.bin'")


def test_small_highly_compressible_members_are_not_called_bombs(tmp_path: Path) -> None:
    path = make_3mf(tmp_path / "ok.3mf", **{"Metadata/blank.config": b"\n" * 60_000})
    assert check_model(path, ".3mf").kind == "3mf"


def test_total_uncompressed_size_is_capped(tmp_path: Path) -> None:
    noise = np.random.default_rng(2).integers(0, 256, 3 * 2**20, dtype=np.uint8).tobytes()
    path = make_3mf(tmp_path / "big.3mf", **{"Metadata/noise.bin": noise})
    assert check_model(path, ".3mf").kind == "3mf"  # fine under the default 256 MiB
    message = rejected(path, ".3mf", max_uncompressed_bytes=2 * 2**20)
    assert message.startswith("This .3mf file unpacks to more than 2 MB;")


def test_default_cap_is_256_mb(tmp_path: Path) -> None:
    # A member declaring 300 MiB is refused from the directory alone, before anything is inflated.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("3D/3dmodel.model", MODEL_XML)
    data = bytearray(buffer.getvalue())
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 300 * 2**20)  # uncompressed size in the directory
    message = rejected(write(tmp_path / "lying.3mf", bytes(data)), ".3mf")
    assert message.startswith("This .3mf file unpacks to more than 256 MB;")


@pytest.mark.parametrize("name", ["../evil.model", "3D/../../evil", "/etc/passwd", "C:/evil", "..\\evil.txt"])
def test_path_tricks_are_refused(tmp_path: Path, name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile itself doesn't object to writing these names
        path = make_3mf(tmp_path / "trick.3mf", **{name: b"gotcha"})
    message = rejected(path, ".3mf")
    assert message.startswith("This .3mf file is unsafe: it contains a file named")
    assert not (tmp_path.parent / "evil.model").exists()


def test_duplicate_member_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.3mf"
    with zipfile.ZipFile(path, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name" is exactly what is being made
        archive.writestr("3D/3dmodel.model", MODEL_XML)
        archive.writestr("3d/3DMODEL.model", b"<model/>")
    assert rejected(path, ".3mf") == "This .3mf file is damaged or isn't a 3MF project."


def test_password_protected_members_are_refused(tmp_path: Path) -> None:
    data = bytearray(make_3mf(tmp_path / "m.3mf").read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:  # set "encrypted" in every central-directory entry
        struct.pack_into("<H", data, at + 8, struct.unpack_from("<H", data, at + 8)[0] | 1)
        at = data.find(b"PK\x01\x02", at + 4)
    path = write(tmp_path / "locked.3mf", bytes(data))
    assert "password-protected" in rejected(path, ".3mf")


def test_too_many_members_are_refused_before_zipfile_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_files, "MAX_ZIP_MEMBERS", 5)
    path = make_3mf(tmp_path / "many.3mf", **{f"Metadata/{i}.txt": b"x" for i in range(10)})
    assert rejected(path, ".3mf") == "This .3mf file holds 12 files; a 3MF project never needs that many."


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"solid x\nfacet normal 0 0 1\n",
            "This .3mf file looks like an STL model. Rename it to .stl and upload it again.",
        ),
        (
            b"\x89PNG\r\n\x1a\n" + b"\x00" * 100,
            "This .3mf file isn't a 3D model (it looks like a PNG image).",
        ),
        (b"just some words\n", "This .3mf file isn't a 3D model (it looks like text)."),
        (b"\x00\x01\x02\x03" * 50, "This .3mf file is damaged or isn't a 3MF project."),
        (b"PK\x03\x04" + b"\x00" * 100, "This .3mf file is damaged or isn't a 3MF project."),
    ],
)
def test_non_zips_named_3mf_are_refused(tmp_path: Path, data: bytes, message: str) -> None:
    assert rejected(write(tmp_path / "x.3mf", data), ".3mf") == message


def test_binary_stl_named_3mf_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "cube.3mf", CUBE.read_bytes())
    assert "looks like an STL model" in rejected(path, ".3mf")


def test_read_member_stops_at_the_declared_size(tmp_path: Path) -> None:
    # A member whose headers claim 100 bytes but whose data inflates to 1 MiB: zipfile stops at
    # the claim and the CRC check fails, so the lie can't fill memory.
    path = make_zip(tmp_path / "lie.zip", {"a.bin": bytes(2**20)})
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        struct.pack_into("<I", data, data.find(signature) + offset, 100)
    write(path, bytes(data))
    with zipfile.ZipFile(path) as archive, pytest.raises(zipfile.BadZipFile):
        read_member(archive, "a.bin", 10 * 2**20)


def test_read_member_refuses_members_over_its_limit(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"a.bin": bytes(5000)})
    with zipfile.ZipFile(path) as archive:
        assert read_member(archive, "a.bin", 5000) == bytes(5000)
        with pytest.raises(ModelRejected):
            read_member(archive, "a.bin", 4999)


@pytest.mark.parametrize(
    ("name", "unsafe"),
    [
        ("3D/3dmodel.model", False),
        ("Metadata/..thumbnail.png", False),
        ("", True),
        ("a\x00b", True),
        ("/abs", True),
        ("\\abs", True),
        ("d:relative", True),
        ("a/../b", True),
        ("a\\..\\b", True),
    ],
)
def test_unsafe_member_names(name: str, unsafe: bool) -> None:
    assert model_files.unsafe_member_name(name) is unsafe
