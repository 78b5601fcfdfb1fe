"""A job sent in several parts: up to ten model files (or a .zip of them) with copies, stored beside the
job's main file with a part suffix, checked one by one, quoted as one job with one minimum charge; bad
input leaves no row, event or file behind. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import re
import struct
import zipfile
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.pricing import job_cost
from printlab.models import Event, Job, JobPart, LabSetting, OutboxMessage, Task
from printlab.services.files import model_analysis
from printlab.services.files.storage import Storage
from printlab.services.jobs import workflow
from printlab.services.jobs.records import parts_of
from printlab.services.views.approval import approval_form

from .conftest import MODELS
from .factories import actor, form, make_staff
from .test_submission_bad_input import csrf_token, field_errors, storage_files

CUBE = (MODELS / "stl_binary_20mm_xyz_cube.stl").read_bytes()
CYLINDERS = (MODELS / "3mf_consortium_multiple_cylinders.3mf").read_bytes()
BOX = (MODELS / "box.obj").read_bytes()
BOX_MTL = (MODELS / "box.mtl").read_bytes()
DONUT = (MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl").read_bytes()
MB = 1024 * 1024


def send(client, files: list[tuple[bytes, str]], copies: list[str] | None = None, **fields: Any):  # type: ignore[no-untyped-def]
    """POST the form as a browser does with several files chosen: one file part each, in order."""
    data: dict[str, Any] = {"csrf_token": csrf_token(client), **form(**fields)}
    data["file"] = [
        FileStorage(io.BytesIO(content), filename=name, content_type="application/octet-stream")
        for content, name in files
    ]
    if copies is not None:
        data["copies"] = copies
    boundary, body = encode_multipart(data)
    return client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def counts(session: Session) -> dict[str, int]:
    session.rollback()
    tables = {"job": Job, "job_part": JobPart, "event": Event, "outbox": OutboxMessage, "task": Task}
    return {name: session.scalar(select(func.count()).select_from(t)) or 0 for name, t in tables.items()}


NOTHING = {"job": 0, "job_part": 0, "event": 0, "outbox": 0, "task": 0}


def assert_refused_leaving_nothing(session: Session, storage: Storage, response, message: str) -> None:  # type: ignore[no-untyped-def]
    page = response.get_data(as_text=True)
    assert response.status_code == 422, page[:2000]
    assert field_errors(page) == {"file": message}
    assert counts(session) == NOTHING
    assert storage_files(storage) == set()  # nothing in a status folder, .incoming or held


def the_job(session: Session) -> Job:
    session.rollback()
    return session.scalars(select(Job)).one()


def analysed(session: Session, storage: Storage, job: Job) -> Job:
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    return session.get(Job, job.id)  # type: ignore[return-value]


def three_parts(client):  # type: ignore[no-untyped-def]
    """Cube ×2, the cylinders ×1, the box ×3 (its .mtl beside it, left out)."""
    return send(
        client,
        [(CUBE, "cube.stl"), (CYLINDERS, "cylinders.3mf"), (BOX, "box.obj"), (BOX_MTL, "box.mtl")],
        ["2", "1", "3", "1"],
    )


# -- a job in parts ------------------------------------------------------------------------------


def test_a_three_part_job_with_copies_is_one_job_stored_by_the_naming_convention(client, session, storage):
    response = three_parts(client)
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))

    job = the_job(session)
    base = job.display_name
    assert job.original_filename == "cube.stl" and job.file_hash is not None
    assert job.file_path == f"Uploaded/{base}.stl"  # the main file keeps today's name
    assert [(p.number, p.original_filename, p.copies) for p in job.parts] == [
        (1, "cube.stl", 2),
        (2, "cylinders.3mf", 1),
        (3, "box.obj", 3),
    ]
    assert job.parts[0].file_hash == job.file_hash
    assert storage_files(storage) == {
        f"Uploaded/{base}.stl",
        f"Uploaded/{base}_p2.3mf",
        f"Uploaded/{base}_p3.obj",
        f"Uploaded/{base}.stl.metadata.json",
    }
    assert storage.resolve(f"Uploaded/{base}_p2.3mf").read_bytes() == CYLINDERS
    sidecar = json.loads(storage.resolve(job.metadata_path).read_text())  # type: ignore[arg-type]
    assert [(p["number"], p["original_filename"], p["copies"]) for p in sidecar["parts"]] == [
        (1, "cube.stl", 2),
        (2, "cylinders.3mf", 1),
        (3, "box.obj", 3),
    ]
    created = session.scalars(select(Event).where(Event.event_type == "JobCreated")).one()
    assert [(p["extension"], p["copies"]) for p in created.details["parts"]] == [
        (".stl", 2),
        (".3mf", 1),
        (".obj", 3),
    ]
    assert "cube" not in json.dumps(created.details)  # no file names (they may name the student)
    assert counts(session) == {"job": 1, "job_part": 3, "event": 1, "outbox": 1, "task": 1}


def test_each_part_is_checked_and_the_job_pays_one_minimum_charge(client, session, storage):
    assert three_parts(client).status_code == 303
    job = analysed(session, storage, the_job(session))

    assert [p.state for p in job.parts] == ["DONE", "DONE", "DONE"]
    assert all(p.thumbnail_png for p in job.parts)
    whole = job.analysis.results  # type: ignore[union-attr]
    assert (whole["kind"], whole["parts"], whole["copies"]) == ("parts", 3, 6)
    ranges = [(p.results["weight_range_g"], p.copies) for p in job.parts]
    expected = [
        str(job_cost([(span[end], copies) for span, copies in ranges], "Filament", DEFAULT_CATALOG.rates,
                     DEFAULT_CATALOG.minimum_charge))
        for end in (0, 1)
    ]  # fmt: skip
    assert whole["cost_range_usd"] == expected
    assert whole["cost_range_usd"][0] == "3.00"  # one minimum for the whole job…
    each = sum(Decimal(p.results["cost_range_usd"][0]) for p in job.parts)
    assert each == Decimal("9.00")  # …where pricing each part alone would have charged it three times
    assert whole["extents_mm"][0] == pytest.approx(62.0)  # the largest part decides what fits

    # The approve dialog lists every part, and starts from the whole job's weight.
    form_ = approval_form(storage, job, DEFAULT_CATALOG)
    assert [(p.number, p.original_filename, p.copies) for p in form_.parts] == [
        (1, "cube.stl", 2), (2, "cylinders.3mf", 1), (3, "box.obj", 3),
    ]  # fmt: skip
    low, high = whole["weight_range_g"]
    assert form_.weight_g == round((low + high) / 2, 1) and form_.weight_is_estimate


def test_one_minimum_charge_in_the_quote_and_the_email_lists_the_parts(client, session, storage):
    assert three_parts(client).status_code == 303
    job = analysed(session, storage, the_job(session))
    make_staff(session)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=25, time_hours=2)
    session.expire_all()
    job = session.get(Job, job.id)
    assert job.cost_usd == Decimal("3.00")  # 25 g of the three parts together: the minimum, once
    # Every part moved to Pending with the job.
    base = job.display_name
    assert {f for f in storage_files(storage) if not f.endswith(".json")} == {
        f"Pending/{base}.stl", f"Pending/{base}_p2.3mf", f"Pending/{base}_p3.obj",
    }  # fmt: skip
    from printlab.services.mail.render import Links, message_context, render

    quote = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "quote")).one()
    links = Links("http://lab.example", "a-secret-key-for-the-links")
    rendered = render(
        "quote",
        message_context(
            "quote", job=job, simple_id=base[-6:], catalog=DEFAULT_CATALOG, links=links, extra=quote.context
        ),
    )
    assert "cube.stl: 2 copies" in rendered.text
    assert "cylinders.3mf: 1 copy" in rendered.text
    assert "box.obj: 3 copies" in rendered.text
    assert "Price:      $3.00" in rendered.text


def test_a_zip_of_models_becomes_the_jobs_parts(client, session, storage):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("project/cube.stl", CUBE)
        z.writestr("project/donut.stl", DONUT)
        z.writestr("project/box.mtl", BOX_MTL)  # not needed: left out
        z.writestr("__MACOSX/project/._cube.stl", b"\0\5\26\7")
        z.writestr("project/", b"")
    response = send(client, [(archive.getvalue(), "project.zip"), (BOX, "box.obj")], ["2", "1"])
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    job = the_job(session)
    assert [(p.original_filename, p.copies) for p in job.parts] == [
        ("cube.stl", 2),
        ("donut.stl", 2),
        ("box.obj", 1),
    ]
    assert storage.resolve(f"Uploaded/{job.display_name}_p2.stl").read_bytes() == DONUT
    assert not list((storage.root / ".incoming").iterdir())


def test_one_file_printed_once_is_stored_as_before(client, session, storage):
    assert send(client, [(CUBE, "cube.stl")]).status_code == 303
    job = the_job(session)
    assert job.parts == []  # no part rows: its own file is its one part
    assert [(p.number, p.stored_name, p.copies) for p in parts_of(job)] == [(1, f"{job.display_name}.stl", 1)]
    sidecar = json.loads(storage.resolve(job.metadata_path).read_text())  # type: ignore[arg-type]
    assert "parts" not in sidecar


def test_one_file_with_copies_is_a_job_of_one_part(client, session, storage):
    assert send(client, [(CUBE, "cube.stl")], ["4"]).status_code == 303
    job = the_job(session)
    assert [(p.number, p.copies) for p in job.parts] == [(1, 4)]


# -- refused, leaving nothing ------------------------------------------------------------------------


def _cube(n: int) -> tuple[bytes, str]:
    """A different file each time (the same file twice would be refused as such)."""
    return f"part {n}".encode().ljust(80, b" ") + CUBE[80:], f"part{n}.stl"


def test_an_eleventh_part_is_refused(client, session, storage):
    response = send(client, [_cube(n) for n in range(11)])
    assert_refused_leaving_nothing(
        session, storage, response,
        "One job can have up to 10 model files; you chose 11. "
        "Send the others as another job, or join parts in your design program.",
    )  # fmt: skip


def test_ten_parts_are_accepted(client, session, storage):
    response = send(client, [_cube(n) for n in range(10)])
    assert response.status_code == 303, field_errors(response.get_data(as_text=True))
    assert [p.number for p in the_job(session).parts] == list(range(1, 11))


def test_a_zip_bomb_is_refused(client, session, storage):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bomb.stl", b"\0" * (20 * MB))
    response = send(client, [(archive.getvalue(), "parts.zip")])
    assert_refused_leaving_nothing(
        session,
        storage,
        response,
        "This .zip file looks like a zip bomb: 'bomb.stl' is compressed more than 100:1, which model files never are.",
    )


@pytest.mark.parametrize("name", ["../escape.stl", "/etc/cube.stl", "a/../../cube.stl", "C:/cube.stl"])
def test_a_zip_with_unsafe_names_is_refused(client, session, storage, name):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cube.stl", CUBE)
        z.writestr(zipfile.ZipInfo(name), CUBE)
    response = send(client, [(archive.getvalue(), "parts.zip")])
    assert_refused_leaving_nothing(
        session, storage, response, f"This .zip file is unsafe: it contains a file named {name!r}."
    )
    assert not (storage.root.parent / "escape.stl").exists()


def test_a_zip_holding_something_else_is_refused(client, session, storage):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("cube.stl", CUBE)
        z.writestr("notes.pdf", b"%PDF-1.4")
    response = send(client, [(archive.getvalue(), "parts.zip")])
    assert_refused_leaving_nothing(
        session, storage, response,
        "This .zip file holds notes.pdf, which isn't a model file (.stl, .obj, .3mf, .step, .stp). Put only your model files in it.",
    )  # fmt: skip


def test_a_bad_part_is_named_and_nothing_is_kept(client, session, storage):
    response = send(client, [(CUBE, "cube.stl"), (b"solid x\nnot really\n", "broken.stl")])
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(page)["file"].startswith("broken.stl: ")
    assert counts(session) == NOTHING
    assert storage_files(storage) == set()


def test_the_same_file_twice_asks_for_copies_instead(client, session, storage):
    response = send(client, [(CUBE, "cube.stl"), (CUBE, "cube copy.stl")])
    assert_refused_leaving_nothing(
        session,
        storage,
        response,
        "cube.stl and cube copy.stl are the same file. Send it once and set its copies instead.",
    )


@pytest.mark.parametrize("copies", ["0", "21", "two", "1.5"])
def test_copies_out_of_range_are_refused(client, session, storage, copies):
    response = send(client, [(CUBE, "cube.stl"), (DONUT, "donut.stl")], ["1", copies])
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(page) == {"file": "Copies of donut.stl: enter a whole number from 1 to 20."}
    assert counts(session) == NOTHING


def _limits(session: Session, per_file_mb: int, per_job_mb: int) -> None:
    session.add(LabSetting(key="upload_limit_mb", value=per_file_mb))
    session.add(LabSetting(key="job_upload_limit_mb", value=per_job_mb))
    session.commit()


def _big_stl(megabytes: float, tag: str) -> bytes:
    triangles = int(megabytes * MB) // 50
    return tag.encode().ljust(80, b" ") + struct.pack("<I", triangles) + b"\0" * (50 * triangles)


def test_a_file_over_the_file_limit_is_refused_leaving_nothing(client, session, storage):
    _limits(session, 1, 3)
    response = send(client, [(CUBE, "cube.stl"), (_big_stl(1.5, "big"), "big.stl")])
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "The file is larger than the 1 MB limit." in page and "Traceback" not in page
    assert counts(session) == NOTHING
    assert storage_files(storage) == set()


def test_a_job_over_the_job_limit_is_refused_leaving_nothing(client, session, storage):
    _limits(session, 1, 2)
    files = [(_big_stl(0.9, f"part {n}"), f"part{n}.stl") for n in range(3)]
    response = send(client, files)
    page = response.get_data(as_text=True)
    assert response.status_code == 413
    assert "Your files together are larger than the 2 MB limit for one job." in page
    assert counts(session) == NOTHING
    assert storage_files(storage) == set()


def test_a_zip_unpacking_past_the_job_limit_is_refused(client, session, storage):
    _limits(session, 1, 2)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(3):
            z.writestr(f"part{n}.stl", _big_stl(0.9, f"part {n}"))
    response = send(client, [(archive.getvalue(), "parts.zip")])
    message = field_errors(response.get_data(as_text=True))["file"]
    assert response.status_code == 422
    assert message.startswith("This .zip file ")  # a bomb ratio or the 2 MB cap, never unpacked
    assert counts(session) == NOTHING
    assert storage_files(storage) == set()


# -- duplicates per part -----------------------------------------------------------------------------


def test_a_part_already_with_the_lab_is_named(client, session, storage):
    assert three_parts(client).status_code == 303
    first = the_job(session)
    before = storage_files(storage)
    response = send(client, [(DONUT, "donut.stl"), (CYLINDERS, "again.3mf")])
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    simple = first.display_name.rsplit("_", 1)[-1]
    assert field_errors(page) == {
        "file": f"You already sent again.3mf (job {simple}, Uploaded). "
        "We'll email you about that job; there's no need to send it again."
    }
    assert counts(session) == {"job": 1, "job_part": 3, "event": 1, "outbox": 1, "task": 1}
    assert storage_files(storage) == before


def test_the_parts_and_their_copies_are_kept_for_the_retry(client, session, storage):
    failed = send(
        client,
        [(CUBE, "cube.stl"), (CYLINDERS, "cylinders.3mf")],
        ["2", "3"],
        student_email="jane.doe@example",
    )
    page = failed.get_data(as_text=True)
    assert failed.status_code == 422
    assert "Your answers and your files are kept below." in page
    tokens = re.findall(r'name="held_file" value="([A-Za-z0-9_-]{43})"', page)
    assert len(tokens) == 2
    assert re.findall(r'name="held_copies" type="number"[^>]*value="(\d+)"', page) == ["2", "3"]
    assert counts(session) == NOTHING

    data: dict[str, Any] = {
        "csrf_token": csrf_token(client),
        **form(),
        "held_file": tokens,
        "held_copies": ["2", "4"],
    }
    data["file"] = FileStorage(io.BytesIO(b""), filename="", content_type="application/octet-stream")
    boundary, body = encode_multipart(data)
    retried = client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")
    assert retried.status_code == 303, field_errors(retried.get_data(as_text=True))
    job = the_job(session)
    assert [(p.original_filename, p.copies) for p in job.parts] == [("cube.stl", 2), ("cylinders.3mf", 4)]
    assert not [name for name in storage_files(storage) if name.startswith(".held/")]
