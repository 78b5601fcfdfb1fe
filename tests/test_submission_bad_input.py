"""Bad input on /submit, table-driven: each case shows the student a message and leaves no row, event or file."""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab.domain.statuses import Status
from printlab.models import Event, Job, LabSetting, OutboxMessage, Task
from printlab.services.files.storage import Storage
from printlab.services.jobs import workflow

from .conftest import MODELS
from .factories import actor, form, make_staff

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
HOSTILE = "<script>alert('pwned')</script><b>bold</b>"


# -- helpers -----------------------------------------------------------------------------------


class _FormReader(HTMLParser):
    """What the re-rendered form would send now: text values, checked boxes, selected options."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._option_text: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and name and name != "csrf_token":
            kind = a.get("type") or "text"
            if kind in ("radio", "checkbox"):
                if "checked" in a:
                    self.values[name] = a.get("value") or "on"
            elif kind != "file":
                self.values[name] = a.get("value") or ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            if "value" in a:
                self.values[self._select] = a["value"] or ""
            else:
                self._option_text = self._select  # the option's text is its value

    def handle_data(self, data: str) -> None:
        if self._option_text:
            self.values[self._option_text] = data.strip()
            self._option_text = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def kept_answers(page: str) -> dict[str, str]:
    reader = _FormReader()
    reader.feed(page)
    return reader.values


def field_errors(page: str) -> dict[str, str]:
    """The messages shown next to fields, by field name."""
    return {
        name: html.unescape(text)
        for name, text in re.findall(r'<p class="field-error" id="([\w]+)-error">([^<]*)</p>', page)
    }


def summary_links(page: str) -> dict[str, str]:
    """The error summary at the top: each message links to its field."""
    return {
        name: html.unescape(text) for name, text in re.findall(r'<li><a href="#(\w+)">([^<]*)</a></li>', page)
    }


def csrf_token(client) -> str:  # type: ignore[no-untyped-def]
    page = client.get("/submit").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form has no CSRF token"
    return found.group(1)


def post(client, fields: dict[str, Any], file: tuple[bytes, str] | None, *, token: bool = True):  # type: ignore[no-untyped-def]
    """POST the form as a browser would: multipart, the file part named as given, byte for byte."""
    data: dict[str, Any] = {"csrf_token": csrf_token(client)} if token else {}
    data.update({k: v for k, v in fields.items() if v is not None})
    if file is not None:
        data["file"] = FileStorage(
            io.BytesIO(file[0]), filename=file[1], content_type="application/octet-stream"
        )
    # Encoded in memory: the test client's own temporary file would stay open when the app refuses
    # a large body without reading it.
    boundary, body = encode_multipart(data)
    return client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def storage_files(storage: Storage) -> set[str]:
    """Every file under the storage root, status folders and .incoming alike."""
    return {str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()}


def rows(session: Session) -> dict[str, int]:
    session.rollback()  # read what the app committed, not this session's snapshot
    tables = {"job": Job, "event": Event, "outbox": OutboxMessage, "task": Task}
    return {
        name: session.scalar(select(func.count()).select_from(model)) or 0 for name, model in tables.items()
    }


def assert_only_the_file_is_kept(session: Session, storage: Storage, page: str) -> None:
    """No row, and the upload held for the retry (in the holding area, nowhere else), named on the page."""
    assert rows(session) == {"job": 0, "event": 0, "outbox": 0, "task": 0}
    held = {name for name in storage_files(storage) if name.startswith(".held/")}
    assert storage_files(storage) == held and len(held) == 2, storage_files(storage)
    assert "Your answers and your file are kept below." in page
    assert re.search(r'name="held_file" value="[A-Za-z0-9_-]{43}"', page)


def assert_nothing_left(session: Session, storage: Storage) -> None:
    """No job, event, email or task row, and no file in any status folder or in .incoming."""
    assert rows(session) == {"job": 0, "event": 0, "outbox": 0, "task": 0}
    assert storage_files(storage) == set()


class _Attributes(HTMLParser):
    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.found: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found is None and dict(attrs).get("id") == self.element_id:
            self.found = dict(attrs)


def attributes_of(page: str, element_id: str) -> dict[str, str | None]:
    reader = _Attributes(element_id)
    reader.feed(page)
    assert reader.found is not None, f"no element with id {element_id!r}"
    return reader.found


CUBE_BYTES = CUBE.read_bytes()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


MODEL_XML = b'<?xml version="1.0"?><model unit="millimeter" xmlns="http://schemas.microsoft.com/3dmanufacturing/core/2015/02"><resources/><build/></model>'


def _zip_bomb() -> bytes:
    # 4 MB of zeros deflate to ~4 KB: a ratio of ~1000:1 (a real bomb repeats this to gigabytes).
    return _zip({"[Content_Types].xml": b"<Types/>", "3D/3dmodel.model": b"\0" * (4 * 1024 * 1024)})


def _traversal_3mf() -> bytes:
    return _zip({"3D/3dmodel.model": MODEL_XML, "../../evil.sh": b"rm -rf /\n"})


DTD_MESSAGE = (
    "This .3mf file declares a DTD (a <!DOCTYPE> or <!ENTITY> block), which 3MF files may not. "
    "Export it again from your design program."
)


def _3mf_with_dtd(where: str) -> bytes:
    dtd = b'<!DOCTYPE model [<!ENTITY lol "lol">]>'
    rels = (
        b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Target="/3D/3dmodel.model" Id="rel0" '
        b'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
    )
    model = MODEL_XML
    if where == "model":
        model = MODEL_XML.replace(b"?>", b"?>" + dtd, 1)
    elif where == "relationships":
        rels = rels.replace(b"?>", b"?>" + dtd.replace(b"model", b"Relationships"), 1)
    return _zip({"[Content_Types].xml": b"<Types/>", "_rels/.rels": rels, "3D/3dmodel.model": model})


def _truncated_stl() -> bytes:
    return CUBE_BYTES[:5000]


# -- every field -------------------------------------------------------------------------------

FIELD_CASES = [
    ("name missing", {"student_name": None}, "student_name", "Enter your full name (2 to 100 characters)."),
    ("name blank", {"student_name": "   "}, "student_name", "Enter your full name (2 to 100 characters)."),
    ("name too short", {"student_name": "J"}, "student_name", "Enter your full name (2 to 100 characters)."),
    (
        "name too long",
        {"student_name": "J" * 101},
        "student_name",
        "Enter your full name (2 to 100 characters).",
    ),
    (
        "name with a control character",
        {"student_name": "Jane\x07Doe"},
        "student_name",
        "Your name contains an invisible control character. Please type it again without it.",
    ),
    (
        "name with NUL",
        {"student_name": "Jane\x00Doe"},
        "student_name",
        "Your name contains an invisible control character. Please type it again without it.",
    ),
    (
        "name with a right-to-left override",
        {"student_name": "Jane \u202eeoD"},
        "student_name",
        "Your name contains a hidden character that changes the direction of text. Please type it again without it.",
    ),
    (
        "name with a bidi isolate",
        {"student_name": "Jane \u2067Doe\u2069"},
        "student_name",
        "Your name contains a hidden character that changes the direction of text. Please type it again without it.",
    ),
    (
        "name with a tab",
        {"student_name": "Jane\tDoe"},
        "student_name",
        "Your name contains a tab or line break (this field is one line). Please type it again without it.",
    ),
    (
        "email with NUL",
        {"student_email": "jane\x00@example.edu"},
        "student_email",
        "Your email address contains an invisible control character. Please type it again without it.",
    ),
    (
        "email with a right-to-left override",
        {"student_email": "jane\u202e@example.edu"},
        "student_email",
        "Your email address contains a hidden character that changes the direction of text. Please type it again without it.",
    ),
    ("email missing", {"student_email": None}, "student_email", "Enter your email address."),
    (
        "email invalid",
        {"student_email": "jane.doe"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email with two @",
        {"student_email": "jane@@example.edu"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email too long",
        {"student_email": "j" * 90 + "@example.edu"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email starting with a dot",
        {"student_email": ".a@b.com"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email ending its name with a dot",
        {"student_email": "a.@b.com"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email with two dots in a row",
        {"student_email": "a..b@example.edu"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email without a dot in the domain",
        {"student_email": "jane@example"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email with a space",
        {"student_email": "jane doe@example.edu"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    (
        "email with a dot after @",
        {"student_email": "jane@.example.edu"},
        "student_email",
        "Enter a valid email address, like name@university.edu.",
    ),
    ("discipline missing", {"discipline": None}, "discipline", "Choose your discipline from the list."),
    (
        "discipline with NUL",
        {"discipline": "Engi\x00neering"},
        "discipline",
        "Discipline contains an invisible control character. Please type it again without it.",
    ),
    (
        "discipline not offered",
        {"discipline": "Astrology"},
        "discipline",
        "Choose your discipline from the list.",
    ),
    ("class missing", {"class_number": None}, "class_number", "Enter your class number, or N/A."),
    (
        "class too long",
        {"class_number": "C" * 51},
        "class_number",
        "Class number can be at most 50 characters.",
    ),
    (
        "class with NUL",
        {"class_number": "ME\x002110"},
        "class_number",
        "Class number contains an invisible control character. Please type it again without it.",
    ),
    (
        "class with an escape",
        {"class_number": "ME\x1b[2J2110"},
        "class_number",
        "Class number contains an invisible control character. Please type it again without it.",
    ),
    (
        "class with a right-to-left override",
        {"class_number": "ME \u202e0112"},
        "class_number",
        "Class number contains a hidden character that changes the direction of text. Please type it again without it.",
    ),
    (
        "class with a line break",
        {"class_number": "ME\n2110"},
        "class_number",
        "Class number contains a tab or line break (this field is one line). Please type it again without it.",
    ),
    ("method missing", {"print_method": None}, "print_method", "Choose a print method."),
    ("method not offered", {"print_method": "Laser"}, "print_method", "Choose a print method."),
    ("colour missing", {"color": None}, "color", "Choose a color available for Filament."),
    (
        "colour of the other method",
        {"color": "Black"},  # a resin colour with filament
        "color",
        "Choose a color available for Filament.",
    ),
    (
        "resin colour kept with filament after switching",
        {"print_method": "Resin", "color": "True Red", "printer": "Formlabs Form 3"},
        "color",
        "Choose a color available for Resin.",
    ),
    ("printer missing", {"printer": None}, "printer", "Choose a Filament printer."),
    ("printer of the other method", {"printer": "Formlabs Form 3"}, "printer", "Choose a Filament printer."),
    ("printer not in the lab", {"printer": "MakerBot"}, "printer", "Choose a Filament printer."),
    (
        "minimum charge unticked",
        {"acknowledged_minimum_charge": None},
        "acknowledged_minimum_charge",
        "Tick the box to accept the minimum charge.",
    ),
    (
        "minimum charge with a made-up value",
        {"acknowledged_minimum_charge": "maybe"},
        "acknowledged_minimum_charge",
        "Tick the box to accept the minimum charge.",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"), [pytest.param(o, f, m, id=case) for case, o, f, m in FIELD_CASES]
)
def test_bad_field_is_refused_next_to_it_and_other_answers_are_kept(
    client, session, storage, overrides, field, message
):
    fields = form(**overrides)
    response = post(client, fields, (CUBE_BYTES, "cube.stl"))
    page = response.get_data(as_text=True)

    assert response.status_code == 422
    assert field_errors(page) == {field: message}
    # The summary at the top links to the field, and the field says it is invalid.
    assert summary_links(page) == {field: message}
    marked = attributes_of(page, field)
    assert f"{field}-error" in (marked.get("aria-describedby") or "").split()
    if field != "print_method":  # a fieldset of radios carries the description, not aria-invalid
        assert marked.get("aria-invalid") == "true"
    kept = kept_answers(page)
    for name, value in fields.items():
        if name == field or value is None:
            continue
        if name in ("color", "printer") and field == "print_method":
            continue  # a colour or printer can't be kept for a method that isn't chosen
        assert kept.get(name) == value, (name, kept)
    assert "Traceback" not in page
    assert_only_the_file_is_kept(session, storage, page)


def test_several_bad_fields_each_get_their_own_message(client, session, storage):
    response = post(
        client,
        form(student_name="", student_email="nope", class_number="", acknowledged_minimum_charge=None),
        None,
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert set(field_errors(page)) == {
        "student_name",
        "student_email",
        "class_number",
        "acknowledged_minimum_charge",
        "file",
    }
    assert "Please fix 5 things" in page
    # The list at the top follows the form, top to bottom (the file comes before the tick box).
    assert list(summary_links(page)) == [
        "student_name",
        "student_email",
        "class_number",
        "file",
        "acknowledged_minimum_charge",
    ]
    assert kept_answers(page)["discipline"] == "Engineering"
    assert_nothing_left(session, storage)


# -- every file case ---------------------------------------------------------------------------

FILE_CASES = [
    ("no file", None, "Choose your model file."),
    ("file part without a name", (CUBE_BYTES, ""), "Choose your model file."),
    ("empty file", (b"", "cube.stl"), "This file is empty. Choose your model file again."),
    (
        "text renamed .stl",
        (b"These are my notes, not a model.\n" * 40, "notes.stl"),
        "This .stl file isn't a 3D model (it looks like text).",
    ),
    (
        "PNG renamed .stl",
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 500, "photo.stl"),
        "This .stl file isn't a 3D model (it looks like a PNG image).",
    ),
    (
        "truncated binary STL",
        (_truncated_stl(), "cube.stl"),
        "This STL file is cut short: it says it has 260 triangles but holds only 98. "
        "Export it again from your design program.",
    ),
    ("zip bomb .3mf", (_zip_bomb(), "bomb.3mf"), "looks like a zip bomb"),
    (
        ".3mf with a ../ member",
        (_traversal_3mf(), "project.3mf"),
        "This .3mf file is unsafe: it contains a file named '../../evil.sh'.",
    ),
    ("not a zip renamed .3mf", (b"\x01\x02junk" * 100, "project.3mf"), "This .3mf file is damaged"),
    ("wrong extension", (CUBE_BYTES, "cube.txt"), "Upload a model file (.stl, .obj, .3mf, .step, .stp)."),
    ("no extension", (CUBE_BYTES, "cube"), "Upload a model file (.stl, .obj, .3mf, .step, .stp)."),
    (
        "double extension hiding an exe",
        (CUBE_BYTES, "cube.stl.exe"),
        "Upload a model file (.stl, .obj, .3mf, .step, .stp).",
    ),
    ("3MF model with a DTD", (_3mf_with_dtd("model"), "dtd.3mf"), DTD_MESSAGE),
    ("3MF relationships with a DTD", (_3mf_with_dtd("relationships"), "dtd.3mf"), DTD_MESSAGE),
    (
        "NUL in the file name",
        (CUBE_BYTES, "cube\x00.stl"),
        "Your file's name contains an invisible control character. Rename the file and choose it again.",
    ),
    (
        "escape in the file name",
        (CUBE_BYTES, "cube\x1b.stl"),
        "Your file's name contains an invisible control character. Rename the file and choose it again.",
    ),
    (
        "right-to-left override in the file name",
        (CUBE_BYTES, "cube\u202eltS.exe.stl"),
        "Your file's name contains a hidden character that changes the direction of text. "
        "Rename the file and choose it again.",
    ),
    (
        "bidi isolate in the file name",
        (CUBE_BYTES, "cube\u2066.stl"),
        "Your file's name contains a hidden character that changes the direction of text. "
        "Rename the file and choose it again.",
    ),
    (
        ".obj without faces",
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "points.obj"),
        "This OBJ file has points but no faces",
    ),
]


@pytest.mark.parametrize(("file", "message"), [pytest.param(f, m, id=case) for case, f, m in FILE_CASES])
def test_bad_file_is_refused_with_a_message_and_leaves_nothing(client, session, storage, file, message):
    fields = form()
    response = post(client, fields, file)
    page = response.get_data(as_text=True)

    assert response.status_code == 422
    errors = field_errors(page)
    assert set(errors) == {"file"}
    assert message in errors["file"], errors["file"]
    kept = kept_answers(page)
    for name, value in fields.items():
        assert kept.get(name) == value, (name, kept)
    assert "Traceback" not in page
    assert_nothing_left(session, storage)


@pytest.mark.parametrize(
    ("sent", "kept_as"),
    [
        pytest.param("../../x.stl", "x.stl", id="parent folders"),
        pytest.param("/etc/x.stl", "x.stl", id="absolute path"),
        # Browsers send backslashes raw, and the multipart parser reads "\\x" as an escaped "x"…
        pytest.param("C:\\x\\y.stl", "C:xy.stl", id="windows path"),
        pytest.param("..\\..\\evil.stl", "....evil.stl", id="windows parent folders"),
        # …so a client that escapes them is what brings the backslashes to PrintLab's own check.
        pytest.param("C:\\\\x\\\\y.stl", "y.stl", id="escaped windows path"),
        pytest.param("..\\\\..\\\\evil.stl", "evil.stl", id="escaped windows parent folders"),
        pytest.param("a" * 296 + ".stl", "a" * 252 + ".stl", id="300 characters"),
    ],
)
def test_file_name_with_path_parts_or_300_characters_is_made_safe(
    client, session, storage, tmp_path, sent, kept_as
):
    response = post(client, form(), (CUBE_BYTES, sent))

    assert response.status_code == 303, response.get_data(as_text=True)
    session.rollback()
    job = session.scalars(select(Job)).one()
    assert job.original_filename == kept_as
    assert len(job.original_filename) <= 256
    assert not {"/", "\\"} & set(job.original_filename)
    # The stored files are named after the job, in Uploaded/, and nothing was written elsewhere.
    assert storage_files(storage) == {job.file_path, job.metadata_path}
    assert job.file_path.startswith("Uploaded/JaneDoe_Filament_TrueRed_")
    assert job.file_path.endswith(".stl")
    assert not (tmp_path / "x.stl").exists() and not (tmp_path.parent / "x.stl").exists()
    done = client.get(response.headers["Location"]).get_data(as_text=True)
    assert html.escape(kept_as) in done


# -- good files still go through ---------------------------------------------------------------

FIXTURE_MODELS = sorted(p.name for p in MODELS.iterdir() if p.suffix.lower() in (".stl", ".obj", ".3mf"))


@pytest.mark.parametrize("name", FIXTURE_MODELS)
def test_every_fixture_model_goes_through_the_form(client, session, storage, name):
    # The guard against over-eager refusals: real exports of every type and size in the fixtures.
    response = post(client, form(), ((MODELS / name).read_bytes(), name))

    assert response.status_code == 303, (
        response.status_code,
        re.findall(r"<h1>(.*?)</h1>", response.get_data(as_text=True)),
    )
    session.rollback()
    job = session.scalars(select(Job)).one()
    assert job.original_filename == name
    assert storage.resolve(job.file_path).read_bytes() == (MODELS / name).read_bytes()
    assert storage_files(storage) == {job.file_path, job.metadata_path}  # nothing left in .incoming


# -- script and HTML in every text field -------------------------------------------------------

TEXT_FIELDS = [
    "student_name",
    "student_email",
    "class_number",
    "discipline",
    "print_method",
    "color",
    "printer",
]


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_script_in_a_field_is_shown_escaped(client, session, storage, field):
    # The unticked box makes sure the form comes back, with whatever was typed in the field.
    response = post(
        client, form(**{field: HOSTILE, "acknowledged_minimum_charge": None}), (CUBE_BYTES, "cube.stl")
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 422
    assert "<script>alert" not in page
    assert "<b>bold</b>" not in page
    if field in ("student_name", "student_email", "class_number"):
        assert kept_answers(page)[field] == HOSTILE  # kept, as text
        assert "&lt;script&gt;" in page
    assert_only_the_file_is_kept(session, storage, page)


def test_script_in_accepted_answers_and_file_name_is_escaped_on_the_students_pages(client, session, storage):
    name = "<img src=x onerror=alert(1)>.stl"
    response = post(
        client, form(student_name="Jane <b>Doe</b>", class_number="<script>x()</script>"), (CUBE_BYTES, name)
    )
    assert response.status_code == 303
    for url in (
        response.headers["Location"],
        response.headers["Location"].replace("/submit/done/", "/status/"),
    ):
        page = client.get(url).get_data(as_text=True)
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;.stl" in page
        assert "<script>x()" not in page
    session.rollback()
    job = session.scalars(select(Job)).one()
    assert job.student_name == "Jane <b>Doe</b>"  # stored as typed, escaped where shown
    # Punctuation is dropped from stored names: no markup reaches the file system.
    assert job.display_name.startswith("Jane")
    assert not set("<>/=()") & set(job.display_name)


# -- the size limit ----------------------------------------------------------------------------


def _set_upload_limit(session: Session, megabytes: int) -> None:
    session.add(LabSetting(key="upload_limit_mb", value=megabytes))
    session.commit()


@pytest.mark.parametrize(
    "size_mb",
    [
        pytest.param(1.5, id="refused while streaming"),
        pytest.param(3, id="refused from the announced length"),
    ],
)
def test_over_limit_upload_gets_a_friendly_page_and_leaves_nothing(client, session, storage, size_mb):
    _set_upload_limit(session, 1)
    # A valid binary STL header so only the size can be the problem.
    triangles = int(size_mb * 1024 * 1024) // 50
    blob = b"\0" * 80 + struct.pack("<I", triangles) + b"\0" * (50 * triangles)
    response = post(client, form(), (blob, "big.stl"))
    page = response.get_data(as_text=True)

    assert response.status_code == 413
    assert "<h1>File too large</h1>" in page
    assert (
        "The file is larger than the 1 MB limit. Make the model smaller or ask the lab staff for help."
        in page
    )
    assert "Traceback" not in page
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert storage_files(storage) == set()


def test_form_says_the_lab_limit(client, session):
    _set_upload_limit(session, 7)
    page = client.get("/submit").get_data(as_text=True)
    assert "up to 7 MB" in page
    assert '"limit_bytes": 7340032' in page


def test_upload_just_under_the_limit_is_accepted(client, session, storage):
    _set_upload_limit(session, 1)
    triangles = (1024 * 1024 - 84 - 4096) // 50
    blob = (
        b"binary stl".ljust(80, b" ")
        + struct.pack("<I", triangles)
        + (struct.pack("<12fH", *([0.0] * 3 + [0, 0, 0, 1, 0, 0, 0, 1, 0]), 0) * triangles)
    )
    response = post(client, form(), (blob, "big.stl"))
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))


# -- the duplicate rule ------------------------------------------------------------------------


def _the_job(session: Session) -> Job:
    session.rollback()
    return session.scalars(select(Job).order_by(Job.created_at)).first()  # type: ignore[return-value]


@pytest.mark.parametrize("email", ["jane.doe@example.edu", "Jane.Doe@Example.EDU"])
def test_same_file_from_same_email_while_uploaded_names_the_existing_job(client, session, storage, email):
    first = post(client, form(), (CUBE_BYTES, "cube.stl"))
    assert first.status_code == 303
    job = _the_job(session)
    simple = job.display_name.rsplit("_", 1)[-1]
    files_before = storage_files(storage)
    counts_before = rows(session)

    again = post(client, form(student_email=email), (CUBE_BYTES, "renamed.stl"))
    page = again.get_data(as_text=True)

    assert again.status_code == 422
    assert field_errors(page) == {
        "file": f"You already sent this file (job {simple}, Uploaded). "
        "We'll email you about that job; there's no need to send it again."
    }
    assert rows(session) == counts_before
    assert storage_files(storage) == files_before


def test_same_file_while_pending_is_refused_and_names_the_status(client, session, storage):
    assert post(client, form(), (CUBE_BYTES, "cube.stl")).status_code == 303
    job = _the_job(session)
    make_staff(session)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=20, time_hours=1)
    files_before = storage_files(storage)
    counts_before = rows(session)

    again = post(client, form(), (CUBE_BYTES, "cube.stl"))

    assert again.status_code == 422
    assert "(job " in field_errors(again.get_data(as_text=True))["file"]
    assert ", Pending)" in field_errors(again.get_data(as_text=True))["file"]
    assert rows(session) == counts_before
    assert storage_files(storage) == files_before


def test_same_file_from_another_email_is_a_new_job(client, session):
    assert post(client, form(), (CUBE_BYTES, "cube.stl")).status_code == 303
    assert post(client, form(student_email="sam@example.edu"), (CUBE_BYTES, "cube.stl")).status_code == 303
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Job)) == 2


def test_same_file_after_rejection_is_accepted(client, session, storage):
    assert post(client, form(), (CUBE_BYTES, "cube.stl")).status_code == 303
    job = _the_job(session)
    make_staff(session)
    workflow.reject(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])

    again = post(client, form(), (CUBE_BYTES, "cube.stl"))

    assert again.status_code == 303
    session.rollback()
    statuses = sorted(j.status for j in session.scalars(select(Job)))
    assert statuses == [Status.REJECTED.value, Status.UPLOADED.value]


# -- the rate limit ----------------------------------------------------------------------------


def test_eleventh_successful_submission_in_an_hour_is_refused_and_failures_do_not_count(
    client, session, storage
):
    # Failed attempts first: if they counted, the tenth success below would already be refused.
    for _ in range(4):
        assert post(client, form(student_email="bad"), (CUBE_BYTES, "cube.stl")).status_code == 422
    for number in range(10):
        response = post(client, form(student_email=f"student{number}@example.edu"), (CUBE_BYTES, "c.stl"))
        assert response.status_code == 303, (number, field_errors(response.get_data(as_text=True)))
        if number == 4:  # failures between successes don't count either
            assert post(client, form(student_name=""), (CUBE_BYTES, "cube.stl")).status_code == 422
    files_before = {name for name in storage_files(storage) if not name.startswith(".held/")}

    # Ten from this browser: the eleventh (a new address) is refused, and the form comes back.
    refused = post(client, form(student_email="eleven@example.edu"), (CUBE_BYTES, "cube.stl"))
    page = refused.get_data(as_text=True)

    assert refused.status_code == 429
    assert "You can send again after" in page
    assert kept_answers(page)["student_email"] == "eleven@example.edu"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Job)) == 10
    assert session.scalar(select(Job).where(Job.student_email == "eleven@example.edu")) is None
    assert {name for name in storage_files(storage) if not name.startswith(".held/")} == files_before


def test_csrf_token_is_required(client, session, storage):
    response = post(client, form(), (CUBE_BYTES, "cube.stl"), token=False)
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert_nothing_left(session, storage)


def test_a_3mf_without_a_dtd_built_the_same_way_is_accepted(client, session, storage):
    # The guard for the DTD cases above: the same package, minus the DTD, goes through.
    response = post(client, form(), (_3mf_with_dtd("nowhere"), "plain.3mf"))
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))


@pytest.mark.parametrize(
    "email",
    ["first.last+tag@sub.example.ac.uk", "o'brien@example.edu", "x_y-z@mail-server.example.com", "a@b.co"],
)
def test_real_email_addresses_are_accepted(client, session, storage, email):
    response = post(client, form(student_email=email), (CUBE_BYTES, "cube.stl"))
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    session.rollback()
    assert session.scalars(select(Job)).one().student_email == email.lower()


def test_answers_and_file_name_are_stored_in_one_unicode_form(client, session, storage):
    """NFC: an accent typed as a separate mark is stored like the accented letter, so searches find it."""
    decomposed = "Jose\u0301 Nu\u0301n\u0303ez"
    response = post(
        client, form(student_name=decomposed, class_number="Dise\u0301no 1"), (CUBE_BYTES, "pie\u0301ce.stl")
    )
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    session.rollback()
    job = session.scalars(select(Job)).one()
    assert job.student_name == "Jos\u00e9 N\u00fa\u00f1ez"
    assert job.class_number == "Dis\u00e9no 1"
    assert job.original_filename == "pi\u00e9ce.stl"
