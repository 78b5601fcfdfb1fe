"""Slicer estimates: every fixture matches MANIFEST.tsv's verified values, and bad files give None, fast."""

from __future__ import annotations

import csv
import io
import math
import random
import re
import struct
import time
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest

from printlab.services.files import slicer_files
from printlab.services.files.slicer_files import SlicerEstimate, hours, read_estimates, weight_g_estimate

from .conftest import FIXTURES, MODELS, SLICED

BGCODE = SLICED / "prusaslicer_2.9.1_coreone.bgcode"
PLA = 1.24  # g/cm³
MiB = 1024 * 1024


def manifest_rows() -> list[dict[str, str]]:
    with (FIXTURES / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        rows = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [row for row in rows if row["relative_path"].startswith("sliced/")]


ROWS = manifest_rows()

#: What MANIFEST.tsv states beyond time and grams (its filament_other and where_read columns):
#: length (mm), volume (cm³), printer model, and — where the file has no grams — the grams derived
#: with the file's own material (Cura Marlin: PLA at 1.75 mm; Griffin: PLA; ideaMaker: 1240 kg/m³,
#: 1.75 mm), computed here from the MANIFEST's figures rather than from the code under test.
EXTRA = {
    "prusaslicer_2.5.0_mk3s_mmu2s_3tools.gcode": (400.85 + 98.63, 0.96 + 0.24, "MK3SMMU2S", None),
    "prusaslicer_2.1.1_mk3s_body_stripped.gcode": (7003.4, 16.8, "MINI", None),
    "prusaslicer_2.9.1_coreone.bgcode": (1640.76, 3.95, "COREONE", None),
    "orcaslicer_2.3.0-beta2_2tools.gcode": (32105.52, 77.22, "CR-K1 Max", None),
    "bambustudio_02.04.00.70_a1mini.gcode.3mf": (80.0, None, "Bambu Lab A1 mini", None),
    "cura_5.9.1_marlin_k1max.gcode": (
        1677.14,
        None,
        "Creality K1 Max",
        1677.14 * math.pi * 0.875**2 / 1000 * PLA,
    ),
    "cura_5.3.1_griffin_ultimaker_s5.gcode": (None, 3.547, "Ultimaker S5", 3547 / 1000 * PLA),
    "ideamaker_5.1.4_unsupported_slicer.gcode": (
        1643.4,
        None,
        "RAISE3D Pro3",
        1643.4 * math.pi * 0.875**2 / 1000 * 1.24,
    ),
}
#: Material density each file's own settings give, to check length → grams against stated grams.
DENSITY = {
    "prusaslicer_2.5.0_mk3s_mmu2s_3tools.gcode": 1.24,
    "prusaslicer_2.1.1_mk3s_body_stripped.gcode": 1.27,
    "prusaslicer_2.9.1_coreone.bgcode": 1.27,
    "orcaslicer_2.3.0-beta2_2tools.gcode": 1.24,
}


def estimate(**values: object) -> SlicerEstimate:
    fields: dict[str, object] = {
        "slicer": "Test 1.0",
        "print_time_s": None,
        "filament_g": None,
        "filament_mm": None,
        "filament_cm3": None,
        "printer_model": None,
        "source": "test",
    }
    fields.update(values)
    return SlicerEstimate(**fields)  # type: ignore[arg-type]


def write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- the fixtures ----------------------------------------------------------------------------------


def test_every_sliced_fixture_has_a_manifest_row_and_an_expectation() -> None:
    files = {p.name for p in SLICED.iterdir()}
    assert files == {Path(row["relative_path"]).name for row in ROWS} == set(EXTRA)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: Path(row["relative_path"]).name)
def test_fixture_matches_the_manifest(row: dict[str, str]) -> None:
    path = FIXTURES / row["relative_path"]
    found = read_estimates(path)
    assert found is not None
    assert found.slicer == re.sub(r"\s*\(.*\)$", "", row["slicer"])
    assert found.print_time_s == int(row["print_time_s"])
    if row["filament_g"] == "none":
        assert found.filament_g is None
    else:
        assert found.filament_g == float(row["filament_g"])
    assert found.source


@pytest.mark.parametrize("name", sorted(EXTRA))
def test_fixture_lengths_volumes_printer_and_derived_grams(name: str) -> None:
    found = read_estimates(SLICED / name)
    assert found is not None
    mm, cm3, printer, derived = EXTRA[name]
    assert found.filament_mm == (pytest.approx(mm) if mm is not None else None)
    assert found.filament_cm3 == (pytest.approx(cm3) if cm3 is not None else None)
    assert found.printer_model == printer
    grams = weight_g_estimate(found, PLA)
    if derived is None:  # the file states grams: they are returned as they are
        assert grams == found.filament_g is not None
    else:
        assert found.filament_g is None
        assert grams == pytest.approx(derived, rel=0.01)


@pytest.mark.parametrize("name", sorted(DENSITY))
def test_grams_derived_from_length_agree_with_the_slicers_own(name: str) -> None:
    found = read_estimates(SLICED / name)
    assert found is not None and found.filament_g is not None
    from_length = weight_g_estimate(replace(found, filament_g=None, filament_cm3=None), DENSITY[name])
    from_volume = weight_g_estimate(replace(found, filament_g=None), DENSITY[name])
    assert from_length == pytest.approx(found.filament_g, rel=0.02)
    assert from_volume == pytest.approx(found.filament_g, rel=0.02)


def test_sources_say_where_values_were_read() -> None:
    orca = read_estimates(SLICED / "orcaslicer_2.3.0-beta2_2tools.gcode")
    assert orca is not None
    assert "footer 'estimated printing time (normal mode)'" in orca.source
    assert "footer 'total filament used [g]'" in orca.source
    bambu = read_estimates(SLICED / "bambustudio_02.04.00.70_a1mini.gcode.3mf")
    assert bambu is not None and "slice_info.config plate 1" in bambu.source
    bgcode = read_estimates(BGCODE)
    assert bgcode is not None and "print-metadata block" in bgcode.source
    idea = read_estimates(SLICED / "ideamaker_5.1.4_unsupported_slicer.gcode")
    assert idea is not None and "not a supported slicer" in idea.source


def test_models_and_non_slicer_files_give_none(tmp_path: Path) -> None:
    for model in sorted(MODELS.iterdir()):
        assert read_estimates(model) is None, model.name
    assert read_estimates(tmp_path / "missing.gcode") is None
    assert read_estimates(tmp_path) is None
    plain = write(tmp_path / "plain.gcode", "G28\nG1 X10 Y10\n; just a comment\nM84\n")
    assert read_estimates(plain) is None


# -- hours and grams ---------------------------------------------------------------------------


def test_hours() -> None:
    assert hours(estimate(print_time_s=5563)) == pytest.approx(1.545278, abs=1e-6)
    assert hours(estimate(print_time_s=3600)) == 1.0
    assert hours(estimate()) is None


def test_weight_prefers_stated_grams_then_volume_then_length() -> None:
    assert weight_g_estimate(estimate(filament_g=5.01, filament_mm=1.0, filament_cm3=1.0), PLA) == 5.01
    assert weight_g_estimate(estimate(filament_cm3=10.0, filament_mm=1.0), PLA) == 12.4
    # 1 m of 2.85 mm filament is 6.38 cm³.
    assert weight_g_estimate(estimate(filament_mm=1000.0), PLA, 2.85) == pytest.approx(7.91, abs=0.01)
    assert weight_g_estimate(estimate(), PLA) is None
    for density, diameter in ((0, 1.75), (-1, 1.75), (math.nan, 1.75), (PLA, 0)):
        with pytest.raises(ValueError):
            weight_g_estimate(estimate(filament_mm=1.0), density, diameter)


# -- text G-code edge cases --------------------------------------------------------------------

PRUSA_FOOTER = (
    "; filament used [mm] = 1000.00\n"
    "; filament used [cm3] = 2.41\n"
    "; filament used [g] = 0.00\n"
    "; total filament used [g] = 0.00\n"
    "; estimated printing time (normal mode) = 1d 2h 3m 4s\n"
    "; printer_model = \n"
    '; printer_settings_id = "My printer"\n'
)


def test_zero_grams_means_unknown_and_days_are_read(tmp_path: Path) -> None:
    # PrusaSlicer writes 0 g when the filament profile has no density.
    path = write(tmp_path / "a.gcode", "; generated by PrusaSlicer 2.7.1+win64 on x\nG1 X1\n" + PRUSA_FOOTER)
    found = read_estimates(path)
    assert found is not None
    assert (found.slicer, found.print_time_s, found.filament_g) == ("PrusaSlicer 2.7.1+win64", 93784, None)
    assert found.printer_model == "My printer"
    assert weight_g_estimate(found, PLA) == pytest.approx(2.41 * PLA, abs=0.01)


def test_cura_placeholder_time_falls_back_to_the_last_elapsed_time(tmp_path: Path) -> None:
    text = ";FLAVOR:Marlin\n;TIME:6666\n;Filament used: 0m\n;Generated with Cura_SteamEngine 5.0.0\n"
    text += "".join(f";TIME_ELAPSED:{t}.5\nG1 X{t}\n" for t in range(10, 1001, 10))
    found = read_estimates(write(tmp_path / "cura.gcode", text))
    assert found is not None
    assert (found.print_time_s, found.filament_mm) == (1000, None)


def test_values_in_the_footer_of_a_big_file_are_read_without_reading_the_middle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.gcode"
    with path.open("wb") as fh:
        fh.write(b"; generated by OrcaSlicer 2.3.0 on 2025-01-01\n;_GP_TOTAL_LAYER_NUMBER_PLACEHOLDER\n")
        fh.write(b"G1 X10 Y10 E0.5\n" * 1000)
        fh.seek(60 * MiB)  # a sparse 60 MB middle
        fh.write(b"\n; EXECUTABLE_BLOCK_END\n" + PRUSA_FOOTER.replace("0.00", "12.5").encode())
    read = []

    class Counting(io.FileIO):
        def read(self, size: int = -1) -> bytes:  # type: ignore[override]
            data = super().read(size)
            read.append(len(data))
            return data

    monkeypatch.setattr(slicer_files, "_open_binary", lambda p, mode, buffering: Counting(p, mode))
    found = read_estimates(path)
    assert found is not None
    assert (found.slicer, found.filament_g, found.print_time_s) == ("OrcaSlicer 2.3.0", 12.5, 93784)
    assert sum(read) <= slicer_files.HEAD_BYTES + slicer_files.TAIL_BYTES + 8 * 1024


def test_a_fake_huge_header_line_is_skipped(tmp_path: Path) -> None:
    huge = "; estimated printing time (normal mode) = " + "1h " * 2_000_000
    path = write(tmp_path / "huge.gcode", huge)  # one 6 MB line, no newline
    started = time.perf_counter()
    assert read_estimates(path) is None
    # The same line before a real footer: the footer is still read.
    path = write(tmp_path / "huge2.gcode", huge + "\n" + PRUSA_FOOTER.replace("0.00", "3.25"))
    found = read_estimates(path)
    assert found is not None and (found.print_time_s, found.filament_g) == (93784, 3.25)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "lines",
    [
        "; total filament used [g] = 1e999\n; estimated printing time (normal mode) = nan\n",
        "; total filament used [g] = -5\n; estimated printing time (normal mode) = -1h\n",
        "; total filament used [g] = lots\n; estimated printing time (normal mode) = 99999999h\n",
        ";TIME:abc\n;Filament used: 1.2mm\n",
    ],
)
def test_absurd_values_are_not_estimates(tmp_path: Path, lines: str) -> None:
    assert (
        read_estimates(write(tmp_path / "x.gcode", "; generated by PrusaSlicer 2.8 on x\n" + lines)) is None
    )


def test_empty_and_random_files_give_none(tmp_path: Path) -> None:
    rng = random.Random(1)
    assert read_estimates(write(tmp_path / "empty.gcode", b"")) is None
    assert read_estimates(write(tmp_path / "random.gcode", rng.randbytes(1 * MiB))) is None
    printable = bytes(rng.choices(b"abc;:=0123456789 \n", k=300_000))
    assert read_estimates(write(tmp_path / "noise.gcode", printable)) is None
    for name, magic in (("r.bgcode", b"GCDE"), ("r.gcode.3mf", b"PK\x03\x04")):
        assert read_estimates(write(tmp_path / name, magic + rng.randbytes(64 * 1024))) is None


# -- binary G-code edge cases ------------------------------------------------------------------


def bgcode_block(kind: int, payload: bytes, compression: int = 0, params: bytes = b"\0\0") -> bytes:
    stored = zlib.compress(payload) if compression == 1 else payload  # 2, 3: heatshrink, not decoded
    header = struct.pack("<HHI", kind, compression, len(payload))
    if compression:
        header += struct.pack("<I", len(stored))
    body = header + params + stored
    return body + struct.pack("<I", zlib.crc32(body))


def bgcode(*blocks: bytes) -> bytes:
    return b"GCDE" + struct.pack("<IH", 1, 1) + b"".join(blocks)


PRINT_METADATA = (
    b"filament used [mm]=100.00\nfilament used [g]=0.30\nestimated printing time (normal mode)=2m 5s\n"
)


@pytest.mark.parametrize("compression", [0, 1])
def test_a_built_bgcode_is_read(tmp_path: Path, compression: int) -> None:
    data = bgcode(
        bgcode_block(0, b"Producer=PrusaSlicer 2.8.0\n"),
        bgcode_block(3, b"printer_model=MK4S\n"),
        bgcode_block(5, b"\x89PNG" + bytes(100), params=b"\0\0\x10\0\x10\0"),
        bgcode_block(4, PRINT_METADATA, compression),
        bgcode_block(1, b"G1 X1\n", params=b"\0\0"),
    )
    found = read_estimates(write(tmp_path / "a.bgcode", data))
    assert found is not None
    assert (found.slicer, found.print_time_s, found.filament_g, found.filament_mm, found.printer_model) == (
        "PrusaSlicer 2.8.0",
        125,
        0.3,
        100.0,
        "MK4S",
    )


def test_truncated_bgcode_gives_none(tmp_path: Path) -> None:
    data = BGCODE.read_bytes()
    print_block = 221_493  # where the fixture's print-metadata block starts
    for cut in (4, 9, 12, 90, print_block + 5, print_block + 200, len(data) // 2, len(data) - 1):
        assert read_estimates(write(tmp_path / f"cut{cut}.bgcode", data[:cut])) is None, cut


def test_bgcode_with_a_bad_crc_or_heatshrink_metadata_gives_none(tmp_path: Path) -> None:
    data = bytearray(BGCODE.read_bytes())
    data[221_493 + 20] ^= 0xFF  # inside the print-metadata block's deflated data
    assert read_estimates(write(tmp_path / "crc.bgcode", bytes(data))) is None
    heatshrink = bgcode_block(4, b"(not really heatshrink)", compression=3)
    built = bgcode(bgcode_block(0, b"Producer=PrusaSlicer 2.8.0\n"), heatshrink)
    assert read_estimates(write(tmp_path / "hs.bgcode", built)) is None
    # PrusaSlicer 2.7+ repeats the estimates in the (uncompressed) printer-metadata block for the
    # printer's screen: with the print-metadata block unreadable, those are used and the gap noted.
    printer = bgcode_block(3, b"printer_model=MK4S\nfilament used [g]=0.40\n")
    built = bgcode(bgcode_block(0, b"Producer=PrusaSlicer 2.8.0\n"), printer, heatshrink)
    found = read_estimates(write(tmp_path / "hs2.bgcode", built))
    assert found is not None and found.filament_g == 0.4
    assert "print-metadata block unreadable (heatshrink 12,4 compression)" in found.source


def test_bgcode_with_absurd_blocks_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = struct.pack("<HHI", 4, 0, 0xFFFFFFF0) + b"\0\0" + bytes(16)
    assert read_estimates(write(tmp_path / "huge.bgcode", bgcode(huge))) is None
    bad_type = bgcode(struct.pack("<HHI", 99, 0, 0) + bytes(6))
    assert read_estimates(write(tmp_path / "type.bgcode", bad_type)) is None
    monkeypatch.setattr(slicer_files, "MAX_BGCODE_BLOCKS", 5)
    many = bgcode(*[bgcode_block(3, b"x=1\n")] * 6, bgcode_block(4, PRINT_METADATA))
    assert read_estimates(write(tmp_path / "many.bgcode", many)) is None


# -- 3MF edge cases ----------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def slice_info(*plates: tuple[int, str, str]) -> bytes:
    body = "".join(
        f'<plate><metadata key="index" value="{i}"/><metadata key="prediction" value="{s}"/>'
        f'<metadata key="weight" value="{g}"/><filament id="1" used_m="1.5" used_g="{g}"/></plate>'
        for i, s, g in plates
    )
    return f'<?xml version="1.0"?><config>{body}</config>'.encode()


MODEL = b'<model><metadata name="Application">OrcaSlicer-2.2.0</metadata></model>'


def test_3mf_plates_are_summed_and_unsliced_plates_skipped(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "p.3mf",
        {
            "3D/3dmodel.model": MODEL,
            "Metadata/slice_info.config": slice_info((1, "600", "10.5"), (2, "0", "0"), (3, "300", "2.25")),
        },
    )
    found = read_estimates(path)
    assert found is not None
    assert (found.slicer, found.print_time_s, found.filament_g, found.filament_mm) == (
        "OrcaSlicer 2.2.0",
        900,
        12.75,
        3000.0,
    )
    assert "plates 1 + 3" in found.source


def test_3mf_without_slice_info_values_falls_back_to_the_plate_gcode_header(tmp_path: Path) -> None:
    header = (
        "; HEADER_BLOCK_START\n; BambuStudio 01.09.00.00\n"
        "; model printing time: 1h 2m; total estimated time: 1h 10m 5s\n"
        "; total filament length [mm] : 1234.50\n; total filament volume [cm^3] : 2969.2\n"
        "; total filament weight [g] : 3.68\n; HEADER_BLOCK_END\n; printer_model = Bambu Lab P1S\n"
    )
    path = make_zip(
        tmp_path / "b.gcode.3mf",
        {
            "Metadata/slice_info.config": slice_info(),
            "Metadata/plate_1.gcode": header.encode() + b"G1 X1\n" * 50_000,
        },
    )
    found = read_estimates(path)
    assert found is not None
    assert (found.slicer, found.print_time_s, found.filament_g, found.filament_mm) == (
        "BambuStudio 01.09.00.00",
        4205,
        3.68,
        1234.5,
    )
    assert found.filament_cm3 is None  # Bambu's "[cm^3]" figure is mm³
    assert found.printer_model == "Bambu Lab P1S"


def test_3mf_slice_info_with_a_dtd_is_refused(tmp_path: Path) -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE config [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<config><plate><metadata key="prediction" value="&b;"/></plate></config>'
    )
    assert read_estimates(make_zip(tmp_path / "e.3mf", {"Metadata/slice_info.config": evil})) is None


def raw_zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A zip written byte by byte: (name, deflated data, declared size) per member, CRCs left 0."""
    out, central = bytearray(), bytearray()
    for name, data, size in members:
        offset, encoded = len(out), name.encode()
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(data), size, len(encoded), 0)
        out += encoded + data
        central += struct.pack(
            "<4s6H3L5H2L",
            b"PK\x01\x02",
            20,
            20,
            0,
            8,
            0,
            0,
            0,
            len(data),
            size,
            len(encoded),
            0,
            0,
            0,
            0,
            0,
            offset,
        )
        central += encoded
    count = len(members)
    out += central + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(out), 0)
    return write(path, bytes(out))


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zeros, about 1 KB per MiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    return chunk * mib + packer.flush()


def test_zip_bombs_are_not_inflated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = deflated_zeros(1024)  # 1 GiB of zeros in ~1 MB
    inflated = []
    real_read = zipfile.ZipExtFile.read

    def counting_read(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = real_read(self, n)
        inflated.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counting_read)
    honest = raw_zip(
        tmp_path / "bomb.gcode.3mf",
        [("Metadata/slice_info.config", bomb, 1024 * MiB), ("Metadata/plate_1.gcode", bomb, 1024 * MiB)],
    )
    assert read_estimates(honest) is None
    lying = raw_zip(tmp_path / "liar.gcode.3mf", [("Metadata/slice_info.config", bomb, 100)])
    assert read_estimates(lying) is None
    assert sum(inflated) <= slicer_files.HEAD_BYTES + 100


def test_zip_with_too_many_members_is_not_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(slicer_files, "MAX_ZIP_MEMBERS", 10)
    members = {f"junk/{i}": b"" for i in range(11)}
    members["Metadata/slice_info.config"] = slice_info((1, "60", "1.0"))
    assert read_estimates(make_zip(tmp_path / "many.3mf", members)) is None
    monkeypatch.setattr(slicer_files, "MAX_ZIP_MEMBERS", 12)
    assert read_estimates(tmp_path / "many.3mf") is not None
