"""Estimated print time and filament read from slicer files, to prefill the approval form (SPEC §5)."""

from __future__ import annotations

import json
import logging
import math
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO
from xml.etree import ElementTree

log = logging.getLogger(__name__)

KiB = 1024
MiB = 1024 * KiB
#: Text G-code is read only at its start and end: slicers write their estimates in a header
#: (Cura, Bambu Studio) or a footer (PrusaSlicer, OrcaSlicer, ideaMaker); a 50 MB toolpath between
#: them is never read.
HEAD_BYTES = 200 * KiB
TAIL_BYTES = 200 * KiB
#: Longer lines are skipped unparsed (thumbnail lines are ~80 characters, config lines < 4 KB).
MAX_LINE = 4 * KiB
#: Binary G-code metadata blocks are a few KB; larger ones are treated as malformed.
MAX_BGCODE_METADATA = 1 * MiB
#: PrusaSlicer writes G-code blocks of 64 KB (uncompressed): 100,000 blocks is over 6 GB of G-code.
MAX_BGCODE_BLOCKS = 100_000
#: Zip limits: the member count is read from the end record before zipfile builds its index, and
#: every member is read through a bounded stream, so a zip bomb costs at most these many bytes.
MAX_ZIP_MEMBERS = 10_000
MAX_SLICE_INFO = 1 * MiB  # Bambu's is ~2 KB per plate
MAX_PROJECT_SETTINGS = 1 * MiB  # ~50 KB
MODEL_HEAD = 64 * KiB  # 3D/3dmodel.model's metadata comes first; its mesh is never read
MAX_PLATES = 16  # plate G-code headers read when slice_info.config lacks the values
#: Values past these are garbage, not estimates (pricing refuses more than 10,000 h too).
MAX_SECONDS = 10_000 * 3600
MAX_QUANTITY = 1e9
#: CuraEngine writes ;TIME:6666 when the front end never filled in the real time.
CURA_TIME_PLACEHOLDER = 6666

_open_binary = open  # tests swap this to count bytes read


class _Malformed(Exception):
    """The file is damaged (a checksum or size that doesn't add up): no estimates from it."""


@dataclass(frozen=True, slots=True)
class SlicerEstimate:
    """What a slicer file says about its print; any value the file doesn't state is None."""

    slicer: str  # name and version as the file writes them, e.g. "PrusaSlicer 2.5.0+linux-x64-GTK3"
    print_time_s: int | None
    filament_g: float | None
    filament_mm: float | None  # total length over all extruders
    filament_cm3: float | None  # total volume over all extruders
    printer_model: str | None
    source: str  # where in the file the values were found, for staff and logs


def read_estimates(path: Path) -> SlicerEstimate | None:
    """Read the slicer's estimates from a G-code, binary G-code (.bgcode) or 3MF file.

    The kind is told by content, not by extension. Returns None when the file is missing, not a
    slicer file, malformed (truncated, failing a checksum, a zip bomb), or states neither a print
    time nor any amount of filament. Never raises for a bad file. Reads at most 200 KB at each end
    of a text G-code file; of a binary one its block headers and metadata blocks (≤ 1 MiB each);
    of a 3MF its zip index (≤ 10,000 members) and a few members, each through a bounded stream.
    """
    try:
        if not path.is_file():  # missing, a folder, or a FIFO that would block the open
            return None
        # Unbuffered: every read is exactly as large as asked, so the bounds below are the bytes read.
        with _open_binary(path, "rb", buffering=0) as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(0)
            magic = fh.read(4)
            if magic == b"GCDE":
                return _read_bgcode(fh, size)
            if magic == b"PK\x03\x04":
                return _read_zip(fh, size)
            return _read_text_gcode(fh, size)
    except (_Malformed, zipfile.BadZipFile) as exc:
        log.info("no slicer estimates from %s: %s", path, exc)
        return None
    except Exception:  # a reader of untrusted files: any failure means "no estimates"
        log.warning("could not read slicer estimates from %s", path, exc_info=True)
        return None


def hours(estimate: SlicerEstimate) -> float | None:
    """The print time in hours, unrounded (the form rounds up to the half hour); None if not stated."""
    if estimate.print_time_s is None:
        return None
    return estimate.print_time_s / 3600


def weight_g_estimate(
    estimate: SlicerEstimate, density_g_cm3: float, filament_diameter_mm: float = 1.75
) -> float | None:
    """Filament weight in grams: the file's own grams if it states them, else derived.

    Derivation assumes the given material density (e.g. 1.24 g/cm³ for PLA): a stated volume
    (Cura Griffin's mm³, PrusaSlicer's cm3) is multiplied by it; a stated length (Cura Marlin's
    metres, ideaMaker's mm) is first turned into a volume as a cylinder of `filament_diameter_mm`
    (1.75 mm unless the printer takes 2.85 mm). Purge and wipe-tower filament count only if the
    slicer counted them. Returns None when the file states no grams, volume or length; raises
    ValueError for a density or diameter that is not a positive number.
    """
    if not (_positive(density_g_cm3) and _positive(filament_diameter_mm)):
        raise ValueError("density and filament diameter must be positive numbers")
    if estimate.filament_g is not None:
        return estimate.filament_g
    if estimate.filament_cm3 is not None:
        return round(estimate.filament_cm3 * density_g_cm3, 2)
    if estimate.filament_mm is not None:
        area_mm2 = math.pi * (filament_diameter_mm / 2) ** 2
        return round(estimate.filament_mm * area_mm2 / 1000 * density_g_cm3, 2)
    return None


# -- numbers -----------------------------------------------------------------------------------

_DURATION = re.compile(
    r"^\s*(?:(?P<d>\d{1,4})d\s*)?(?:(?P<h>\d{1,6})h\s*)?(?:(?P<m>\d{1,6})m\s*)?"
    r"(?:(?P<s>\d{1,8}(?:\.\d{1,9})?)s)?\s*$"
)


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _duration(text: str) -> int | None:
    """Seconds from PrusaSlicer/Bambu style "1d 2h 32m 43s"; None if it isn't one."""
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    d, h, m, s = (float(match[g] or 0) for g in "dhms")
    return _seconds(((d * 24 + h) * 60 + m) * 60 + s)


def _seconds(value: float) -> int | None:
    if not math.isfinite(value) or value <= 0 or value > MAX_SECONDS:
        return None
    return round(value)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 <= value <= MAX_QUANTITY else None


def _total(text: str, unit: str = "") -> float | None:
    """The sum of a per-extruder list ("1.20, 0, 0.29", "1.2m, 0.5m"); None if any item isn't a number."""
    parts = [p.strip() for p in re.split(r"[,;]", text) if p.strip()]
    if not parts or len(parts) > 256:
        return None
    values = [_number(p[: -len(unit)] if unit and p.endswith(unit) else p) for p in parts]
    if any(v is None for v in values):
        return None
    return _amount(sum(v for v in values if v is not None))


def _amount(value: float | None) -> float | None:
    """A filament quantity, or None for zero (PrusaSlicer writes 0 g when no density is set)."""
    if value is None or not math.isfinite(value) or value <= 0 or value > MAX_QUANTITY:
        return None
    return round(value, 6)


# -- key/value lines shared by text G-code, binary G-code metadata and plate G-code ------------

#: "; key = value" (PrusaSlicer, OrcaSlicer), ";KEY:value" (Cura), "key=value" (binary G-code).
_KEY_VALUE = re.compile(r"^;?\s*(?P<key>[A-Za-z][^=:;]{0,79}?)\s*[=:](?P<value>.*)$")
#: Bambu's header packs two on one line: "; model printing time: 1m 6s; total estimated time: 9m 3s".
_BAMBU_TOTAL_TIME = re.compile(r"total estimated time:\s*(?P<value>[^;]+?)\s*$")
_SLICER_LINES = (
    re.compile(r"^;\s*generated by (?P<name>[A-Za-z]\S*) (?P<version>\S+)(?: on |\s*$)"),
    re.compile(r"^;\s*(?P<name>BambuStudio) (?P<version>\S+)\s*$"),
    re.compile(r"^;\s*Generated with (?P<name>Cura_SteamEngine) (?P<version>\S+)"),
    re.compile(r"^;\s*Sliced by (?P<name>ideaMaker) (?P<version>[^,\s]+)"),
)


@dataclass(slots=True)
class _Found:
    """Key/value comment lines (the last one of each key wins) and the slicer's name line."""

    values: dict[str, tuple[str, str, str]]  # lower-case key -> (value, where, key as written)
    slicer: str | None = None

    def get(self, *keys: str) -> tuple[str, str, str] | None:
        """The first of `keys` (lower case) present: (key as written, value, where)."""
        for key in keys:
            if key in self.values:
                value, where, written = self.values[key]
                return written, value, where
        return None

    def matching(self, pattern: re.Pattern[str]) -> list[tuple[str, str, str]]:
        """Every key (lower case) matching `pattern`: (key as written, value, where)."""
        return [(k, v, w) for key, (v, w, k) in self.values.items() if pattern.fullmatch(key)]


def _scan(lines: Iterable[tuple[str, str]], found: _Found, comments_only: bool = True) -> None:
    """Collect key/value lines and the slicer name from (line, where) pairs."""
    for raw, where in lines:
        line = raw.strip()
        if not line or len(line) > MAX_LINE or (comments_only and line[0] != ";"):
            continue
        if found.slicer is None:
            for pattern in _SLICER_LINES:
                if match := pattern.match(line):
                    found.slicer = f"{match['name']} {match['version']}"
                    break
        if match := _KEY_VALUE.match(line):
            key = " ".join(match["key"].split())
            found.values[key.lower()] = (match["value"].strip(), where, key)
        if "total estimated time:" in line and (match := _BAMBU_TOTAL_TIME.search(line)):
            found.values["total estimated time"] = (match["value"], where, "total estimated time")


def _estimate(found: _Found, kind: str, slicer: str | None = None) -> SlicerEstimate | None:
    """Pick each value from the keys the known slicers use, most specific first."""
    notes: list[str] = []

    def note(what: str, hit: tuple[str, str, str]) -> None:
        notes.append(f"{what} from {hit[2]} '{hit[0]}'")

    name = slicer or found.slicer
    if name is None and (gen := found.get("generator.name")):  # Cura Griffin header
        version = found.get("generator.version")
        name = f"{gen[1]} {version[1]}" if version else gen[1]
    name = name or "unknown slicer"

    seconds = None
    for key, parse in (
        ("estimated printing time (normal mode)", _duration),  # PrusaSlicer, OrcaSlicer footer
        ("total estimated time", _duration),  # Bambu Studio header
        ("print.time", _cura_time),  # Cura Griffin header
        ("time", _cura_time),  # Cura Marlin header
        ("print time", _plain_seconds),  # ideaMaker footer
    ):
        if (hit := found.get(key)) and (seconds := parse(hit[1])) is not None:
            note("time", hit)
            break
    # Cura's ;TIME:6666 is a placeholder the front end never filled in: the last ;TIME_ELAPSED is the total.
    if (
        seconds is None
        and name.startswith("Cura")
        and (hit := found.get("time_elapsed"))
        and (seconds := _plain_seconds(hit[1])) is not None
    ):
        note("time", hit)

    grams = None
    for key in ("total filament used [g]", "filament used [g]", "total filament weight [g]"):
        if (hit := found.get(key)) and (grams := _total(hit[1])) is not None:
            note("weight", hit)
            break

    length = None
    if (hit := found.get("filament used [mm]", "total filament length [mm]")) and (
        length := _total(hit[1])
    ) is not None:
        note("length", hit)
    elif (hit := found.get("filament used")) and (metres := _total(hit[1], unit="m")) is not None:
        length = _amount(metres * 1000)  # Cura Marlin: ";Filament used: 1.67714m"
        note("length", hit)
    elif hits := found.matching(re.compile(r"material#\d{1,3} used")):  # ideaMaker, mm per extruder
        length = _amount(sum(_number(v) or 0.0 for _, v, _ in hits))
        note("length", hits[0])

    # Bambu Studio's "total filament volume [cm^3]" is really mm³ (75.74 mm of 1.75 mm filament is
    # "182.19 cm^3"), so it is not read.
    volume = None
    if (hit := found.get("filament used [cm3]")) and (volume := _total(hit[1])) is not None:
        note("volume", hit)
    elif hits := found.matching(re.compile(r"extruder_train\.\d{1,3}\.material\.volume_used")):
        volume = _amount(sum(_number(v) or 0.0 for _, v, _ in hits) / 1000)  # Cura Griffin: mm³
        note("volume", hits[0])

    printer = None
    if hit := found.get("printer_model", "target_machine.name", "printer type"):
        printer = hit[1].strip().strip('"').strip() or None
    if printer is None and (hit := found.get("printer_settings_id")):
        printer = hit[1].strip().strip('"').strip() or None

    if seconds is None and grams is None and length is None and volume is None:
        return None
    if name.startswith("ideaMaker"):
        notes.append("ideaMaker is not a supported slicer (SPEC §5): check these values")
    return SlicerEstimate(
        slicer=name,
        print_time_s=seconds,
        filament_g=grams,
        filament_mm=length,
        filament_cm3=volume,
        printer_model=printer,
        source=f"{kind}: " + "; ".join(notes),
    )


def _plain_seconds(text: str) -> int | None:
    value = _number(text)
    return None if value is None else _seconds(value)


def _cura_time(text: str) -> int | None:
    seconds = _plain_seconds(text)
    return None if seconds == CURA_TIME_PLACEHOLDER else seconds


# -- text G-code -------------------------------------------------------------------------------


def _text_lines(fh: IO[bytes], size: int) -> Iterator[tuple[str, str]]:
    """Lines of the file's first and last 200 KB (the whole file if smaller), each labelled "header"
    (before the first G-code command), "footer" (after the last) or "body"."""
    if size <= HEAD_BYTES + TAIL_BYTES:
        yield from _labelled(fh.read(size).splitlines(), head=True, tail=True)
        return
    head = fh.read(HEAD_BYTES)
    head = head[: head.rfind(b"\n") + 1]  # drop the line cut at the window's end
    fh.seek(size - TAIL_BYTES)
    tail = fh.read(TAIL_BYTES)
    tail = tail[tail.find(b"\n") + 1 :]  # and the one cut at the window's start
    yield from _labelled(head.splitlines(), head=True, tail=False)
    yield from _labelled(tail.splitlines(), head=False, tail=True)


def _labelled(lines: list[bytes], head: bool, tail: bool) -> Iterator[tuple[str, str]]:
    """Decoded lines: a window at the file's start has a header, one at its end a footer."""
    commands = [i for i, line in enumerate(lines) if (text := line.strip()) and not text.startswith(b";")]
    first = commands[0] if commands else len(lines)
    last = commands[-1] if commands else -1
    for i, line in enumerate(lines):
        where = "header" if head and i < first else "footer" if tail and i > last else "body"
        yield line.decode("utf-8", "replace"), where


def _read_text_gcode(fh: IO[bytes], size: int) -> SlicerEstimate | None:
    fh.seek(0)
    if b"\x00" in fh.read(4 * KiB):  # G-code is text; this is some binary file
        return None
    fh.seek(0)
    found = _Found({})
    _scan(_text_lines(fh, size), found)
    return _estimate(found, "G-code")


# -- binary G-code (.bgcode) -------------------------------------------------------------------
# libbgcode format v1: a 10-byte file header (b"GCDE", u32 version, u16 checksum type), then
# blocks: u16 type, u16 compression, u32 uncompressed size, [u32 compressed size if compressed],
# parameters (6 bytes for thumbnails, else 2), the data, then a CRC32 if the checksum type is 1.

#: The blocks read: the producer, the printer's summary (PrusaSlicer 2.7+ repeats the estimates there
#: for the printer's screen) and the print metadata. Slicer settings (2) hold no estimates.
_BLOCK_NAMES = {0: "file-metadata", 3: "printer-metadata", 4: "print-metadata"}
_BGCODE_GCODE, _BGCODE_THUMBNAIL, _BGCODE_LAST_TYPE = 1, 5, 5
_COMPRESSION_NAMES = {0: "none", 1: "deflate", 2: "heatshrink 11,4", 3: "heatshrink 12,4"}


def _read_bgcode(fh: IO[bytes], size: int) -> SlicerEstimate | None:
    fh.seek(0)
    header = fh.read(10)
    if len(header) < 10:
        return None
    _magic, version, checksum_type = struct.unpack("<4sIH", header)
    if version != 1 or checksum_type not in (0, 1):
        return None
    crc_size = 4 * checksum_type
    found = _Found({})
    notes: list[str] = []
    at = 10
    # Every block header is walked (a few thousand 12-byte reads for a 50 MB file) so that a
    # truncated or corrupt file is refused rather than prefilling the form from a broken print.
    for _ in range(MAX_BGCODE_BLOCKS):
        if at == size:
            break
        fh.seek(at)
        block_header = fh.read(12)
        if len(block_header) < 8:
            return None
        kind, compression, raw_size = struct.unpack_from("<HHI", block_header)
        if kind > _BGCODE_LAST_TYPE or compression not in _COMPRESSION_NAMES:
            return None  # not a block: a corrupt or foreign file
        header_size = 12 if compression else 8
        if len(block_header) < header_size:
            return None
        stored = struct.unpack_from("<I", block_header, 8)[0] if compression else raw_size
        params = 6 if kind == _BGCODE_THUMBNAIL else 2
        end = at + header_size + params + stored + crc_size
        if end > size:
            return None  # truncated
        if kind in _BLOCK_NAMES:
            fh.seek(at + header_size)
            text = _bgcode_block(
                fh, block_header[:header_size], compression, raw_size, params, stored, crc_size
            )
            if text is None:
                notes.append(
                    f"{_BLOCK_NAMES[kind]} block unreadable ({_COMPRESSION_NAMES[compression]} compression)"
                )
            else:
                where = f"{_BLOCK_NAMES[kind]} block"
                _scan(((line, where) for line in text.splitlines()), found, comments_only=False)
        at = end
    else:
        return None  # more blocks than any real file has
    producer = found.get("producer")
    estimate = _estimate(found, "binary G-code", slicer=producer[1] if producer else None)
    if estimate is None:
        return None
    if notes:
        return replace(estimate, source=f"{estimate.source}; " + "; ".join(notes))
    return estimate


def _bgcode_block(
    fh: IO[bytes],
    block_header: bytes,
    compression: int,
    raw_size: int,
    params: int,
    stored: int,
    crc_size: int,
) -> str | None:
    """A metadata block's text; None if it is heatshrink-compressed. Raises _Malformed for a block
    that is too big, fails its CRC or doesn't inflate to its stated size."""
    if stored > MAX_BGCODE_METADATA or raw_size > MAX_BGCODE_METADATA:
        raise _Malformed("oversized metadata block")
    body = fh.read(params + stored + crc_size)
    if len(body) != params + stored + crc_size:
        raise _Malformed("short metadata block")
    if crc_size:
        (crc,) = struct.unpack_from("<I", body, params + stored)
        if zlib.crc32(block_header + body[: params + stored]) != crc:
            raise _Malformed("metadata block fails its CRC")
    data = body[params : params + stored]
    if compression == 1:
        data = zlib.decompressobj().decompress(data, raw_size + 1)
    elif compression != 0:
        # PrusaSlicer deflates metadata and keeps heatshrink for G-code blocks, which are never
        # read here; no heatshrink decoder is carried for metadata that no known slicer writes.
        return None
    if len(data) != raw_size:
        raise _Malformed("metadata block inflates to the wrong size")
    return data.decode("utf-8", "replace")


# -- 3MF (Bambu Studio / OrcaSlicer .gcode.3mf and sliced projects) ----------------------------

_PLATE_GCODE = re.compile(r"metadata/plate_(\d{1,4})\.gcode")
_APPLICATION = re.compile(rb'<metadata\s+name="Application"\s*>\s*([^<\s][^<]{0,99}?)\s*</metadata>')


def _zip_member_count(fh: IO[bytes], size: int) -> int | None:
    """Entries in the zip's central directory per its end record (zip64 too); None if unreadable."""
    window = min(size, 22 + 65535 + 20)
    fh.seek(size - window)
    tail = fh.read(window)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    count = struct.unpack_from("<H", tail, at + 10)[0]
    if count != 0xFFFF:
        return count
    if at < 20 or tail[at - 20 : at - 16] != b"PK\x06\x07":
        return None
    (record_at,) = struct.unpack_from("<Q", tail, at - 12)
    if record_at + 56 > size:
        return None
    fh.seek(record_at)
    record = fh.read(56)
    if record[:4] != b"PK\x06\x06":
        return None
    return struct.unpack_from("<Q", record, 32)[0]


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, whole: bool = True) -> bytes | None:
    """At most `limit` bytes of a member; with `whole`, None if the member is any longer."""
    if whole and info.file_size > limit:
        return None
    with archive.open(info) as stream:
        data = stream.read(limit + 1 if whole else limit)
    if whole and len(data) > limit:
        return None  # its declared size lied
    return data


def _xml(data: bytes) -> ElementTree.Element | None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return None  # slicers write none; refusing them rules out entity expansion
    try:
        return ElementTree.fromstring(data)  # noqa: S314 - no DTD (checked above), bounded size
    except ElementTree.ParseError:
        return None


def _read_zip(fh: IO[bytes], size: int) -> SlicerEstimate | None:
    count = _zip_member_count(fh, size)
    if count is None or count > MAX_ZIP_MEMBERS:
        return None
    fh.seek(0)
    with zipfile.ZipFile(fh) as archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            members.setdefault(info.filename.lower(), info)
        return _read_3mf(archive, members)


def _read_3mf(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> SlicerEstimate | None:
    estimate = _slice_info(archive, members)
    plates = sorted(
        (int(m[1]), info) for name, info in members.items() if (m := _PLATE_GCODE.fullmatch(name))
    )[:MAX_PLATES]
    if plates and (estimate is None or estimate.print_time_s is None or estimate.filament_g is None):
        from_gcode = _plate_gcode(archive, plates)
        if from_gcode is not None and estimate is None:
            estimate = from_gcode
        elif from_gcode is not None and estimate is not None:
            estimate = _merge(estimate, from_gcode)
    if estimate is None:
        return None
    slicer = _application(archive, members) or estimate.slicer
    printer = estimate.printer_model or _project_printer(archive, members)
    return replace(estimate, slicer=slicer, printer_model=printer)


def _slice_info(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> SlicerEstimate | None:
    """Totals over the sliced plates of Metadata/slice_info.config; None if it has none."""
    info = members.get("metadata/slice_info.config")
    data = _member(archive, info, MAX_SLICE_INFO) if info else None
    root = _xml(data) if data else None
    if root is None:
        return None
    client = next(
        (h.get("value") for h in root.iter("header_item") if h.get("key") == "X-BBL-Client-Version"), None
    )
    seconds = grams = metres = 0.0
    has_time = has_grams = has_metres = False
    sliced: list[str] = []
    for plate in root.iter("plate"):
        meta = {m.get("key"): m.get("value") or "" for m in plate.iter("metadata")}
        plate_seconds = _number(meta.get("prediction", ""))
        plate_grams = _number(meta.get("weight", ""))
        if not plate_seconds and not plate_grams:
            continue  # a plate that was never sliced
        sliced.append(meta.get("index") or "?")
        if plate_seconds:
            seconds += plate_seconds
            has_time = True
        if plate_grams:
            grams += plate_grams
            has_grams = True
        for filament in plate.iter("filament"):
            if (used := _number(filament.get("used_m") or "")) is not None:
                metres += used
                has_metres = True
    if not sliced:
        return None
    label = ("plate " if len(sliced) == 1 else "plates ") + " + ".join(sliced)
    read = [
        what
        for what, present in (
            ("time from 'prediction'", has_time),
            ("weight from 'weight'", has_grams),
            ("length from filament 'used_m'", has_metres),
        )
        if present
    ]
    return SlicerEstimate(
        slicer=f"BBL client {client}" if client else "unknown slicer",
        print_time_s=_seconds(seconds) if has_time else None,
        filament_g=_amount(grams) if has_grams else None,
        filament_mm=_amount(metres * 1000) if has_metres else None,
        filament_cm3=None,
        printer_model=None,
        source=f"3MF Metadata/slice_info.config {label}: " + ", ".join(read),
    )


def _plate_gcode(
    archive: zipfile.ZipFile, plates: list[tuple[int, zipfile.ZipInfo]]
) -> SlicerEstimate | None:
    """Totals from the headers of the Metadata/plate_N.gcode members (first 200 KB of each)."""
    estimates = []
    for number, info in plates:
        head = _member(archive, info, HEAD_BYTES, whole=False) or b""
        if len(head) == HEAD_BYTES:
            head = head[: head.rfind(b"\n") + 1]
        found = _Found({})
        where = f"Metadata/plate_{number}.gcode header"
        _scan(((line, where) for line in head.decode("utf-8", "replace").splitlines()), found)
        if (estimate := _estimate(found, "3MF plate G-code")) is not None:
            estimates.append(estimate)
    if not estimates:
        return None
    first = estimates[0]
    return SlicerEstimate(
        slicer=first.slicer,
        print_time_s=_seconds(_sum_or_none(e.print_time_s for e in estimates) or 0),
        filament_g=_sum_or_none(e.filament_g for e in estimates),
        filament_mm=_sum_or_none(e.filament_mm for e in estimates),
        filament_cm3=_sum_or_none(e.filament_cm3 for e in estimates),
        printer_model=first.printer_model,
        source="; ".join(e.source for e in estimates),
    )


def _sum_or_none(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _merge(primary: SlicerEstimate, fallback: SlicerEstimate) -> SlicerEstimate:
    """`primary`'s values, with the ones it lacks taken from `fallback`."""
    return SlicerEstimate(
        slicer=primary.slicer if not primary.slicer.startswith(("BBL", "unknown")) else fallback.slicer,
        print_time_s=primary.print_time_s if primary.print_time_s is not None else fallback.print_time_s,
        filament_g=primary.filament_g if primary.filament_g is not None else fallback.filament_g,
        filament_mm=primary.filament_mm if primary.filament_mm is not None else fallback.filament_mm,
        filament_cm3=primary.filament_cm3 if primary.filament_cm3 is not None else fallback.filament_cm3,
        printer_model=primary.printer_model or fallback.printer_model,
        source=f"{primary.source}; missing values from {fallback.source}",
    )


def _application(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> str | None:
    """ "BambuStudio 02.04.00.70" from 3D/3dmodel.model's Application metadata (its first 64 KB)."""
    info = members.get("3d/3dmodel.model")
    head = _member(archive, info, MODEL_HEAD, whole=False) if info else None
    match = _APPLICATION.search(head or b"")
    if not match:
        return None
    name, _, version = match[1].decode("utf-8", "replace").partition("-")
    return f"{name} {version}" if version else name


def _project_printer(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> str | None:
    """printer_model from Metadata/project_settings.config (JSON) if it is there."""
    info = members.get("metadata/project_settings.config")
    data = _member(archive, info, MAX_PROJECT_SETTINGS) if info else None
    if not data:
        return None
    try:
        settings = json.loads(data)
    except ValueError:
        return None
    model = settings.get("printer_model") if isinstance(settings, dict) else None
    return model.strip() or None if isinstance(model, str) else None
