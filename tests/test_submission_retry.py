"""A failed submission keeps the student's file for the retry: held an hour, for that browser only, then swept."""

from __future__ import annotations

import io
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab import config as config_module
from printlab.clock import utcnow
from printlab.models import Job
from printlab.services.files import held_uploads
from printlab.services.files.storage import Storage, StorageError
from printlab.services.upkeep import sweeps

from .conftest import MODELS
from .factories import form

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
CUBE_BYTES = CUBE.read_bytes()
OTHER = MODELS / "stl_binary_solid_header_rear_case.stl"
TOKEN_FIELD = re.compile(r'name="held_file" value="([A-Za-z0-9_-]{43})"')


@pytest.fixture
def web(lab_env):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    yield app
    app.extensions["printlab"].engine.dispose()


def send(client, fields: dict[str, Any], file: tuple[bytes, str] | None = None, *, held: str | None = None):  # type: ignore[no-untyped-def]
    data: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if held is not None:
        data["held_file"] = held
    # A retry with a kept file sends an empty file part, as a browser does for an unchosen file input.
    content, name = file if file is not None else (b"", "")
    data["file"] = FileStorage(io.BytesIO(content), filename=name, content_type="application/octet-stream")
    boundary, body = encode_multipart(data)
    return client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def held_token(page: str) -> str:
    found = TOKEN_FIELD.search(page)
    assert found, "the form doesn't keep the file"
    return found.group(1)


def held_names(storage: Storage) -> set[str]:
    folder = storage.root / held_uploads.HOLD_FOLDER
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def jobs(session) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(Job)) or 0


# -- through the form ----------------------------------------------------------------------------


def test_file_is_kept_across_a_failed_submission_and_used_on_retry(web, session, storage):
    student = web.test_client()
    failed = send(student, form(student_email="jane.doe@example"), (CUBE_BYTES, "model.stl"))
    page = failed.get_data(as_text=True)
    assert failed.status_code == 422
    assert "Your file <strong>model.stl</strong> is kept — choose another file to replace it." in page
    assert "Your answers and your file are kept below." in page
    token = held_token(page)
    # The file input isn't required any more: the kept file stands in for it.
    assert re.search(r'<input id="file"[^>]*\brequired\b', page) is None
    # Held in the private holding area under the token's hash, never under the token itself.
    names = held_names(storage)
    assert len(names) == 2 and not any(token in name for name in names)
    assert not list((storage.root / "Uploaded").iterdir())

    retried = send(student, form(), held=token)  # no file sent this time

    assert retried.status_code == 303, retried.get_data(as_text=True)[:2000]
    job = session.scalars(select(Job)).one()
    assert job.original_filename == "model.stl"
    assert storage.resolve(job.file_path).read_bytes() == CUBE_BYTES  # type: ignore[arg-type]
    assert held_names(storage) == set()  # used, so no longer held
    assert not list((storage.root / ".incoming").iterdir())


def test_a_kept_file_survives_more_than_one_failed_retry(web, session, storage):
    student = web.test_client()
    token = held_token(
        send(student, form(student_name="J"), (CUBE_BYTES, "model.stl")).get_data(as_text=True)
    )
    again = send(student, form(class_number=""), held=token)
    assert again.status_code == 422
    assert held_token(again.get_data(as_text=True)) == token
    assert send(student, form(), held=token).status_code == 303
    assert jobs(session) == 1


def test_a_new_file_replaces_the_kept_one(web, session, storage):
    student = web.test_client()
    token = held_token(
        send(student, form(student_name="J"), (CUBE_BYTES, "model.stl")).get_data(as_text=True)
    )
    replaced = send(student, form(), (OTHER.read_bytes(), OTHER.name), held=token)
    assert replaced.status_code == 303
    job = session.scalars(select(Job)).one()
    assert job.original_filename == OTHER.name
    assert held_names(storage) == set()


def test_a_kept_file_is_for_the_browser_that_sent_it(web, session, storage):
    token = held_token(
        send(web.test_client(), form(student_name="J"), (CUBE_BYTES, "model.stl")).get_data(as_text=True)
    )
    stranger = send(web.test_client(), form(), held=token)
    page = stranger.get_data(as_text=True)
    assert stranger.status_code == 422
    assert "Your earlier file is no longer kept" in page
    assert jobs(session) == 0
    assert len(held_names(storage)) == 2  # still there for its own browser


def test_a_file_the_check_refuses_is_not_kept(web, session, storage):
    refused = send(web.test_client(), form(student_name="J"), (b"solid x\nnot really\n", "model.stl"))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and TOKEN_FIELD.search(page) is None
    assert set(re.findall(r'id="(\w+)-error"', page)) == {"student_name", "file"}
    assert held_names(storage) == set()


def test_a_duplicate_file_is_not_kept(web, session, storage):
    student = web.test_client()
    assert send(student, form(), (CUBE_BYTES, "model.stl")).status_code == 303
    token = held_token(
        send(student, form(student_name="J"), (CUBE_BYTES, "model.stl")).get_data(as_text=True)
    )
    duplicate = send(student, form(), held=token)
    assert duplicate.status_code == 422 and "You already sent this file" in duplicate.get_data(as_text=True)
    assert held_names(storage) == set()


@pytest.mark.parametrize(
    "token",
    [
        "../../Uploaded/JaneDoe_Filament_TrueRed_abcdef.stl",
        "../../../../../../etc/passwd",
        "/etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "a" * 40 + "/..",
        "a" * 42 + "\x00",
    ],
)
def test_a_path_in_place_of_the_token_is_refused(web, session, storage, token):
    # A real held file of this browser beside it must not be reachable by any path trick either.
    student = web.test_client()
    send(student, form(student_name="J"), (CUBE_BYTES, "model.stl"))
    target = storage.root / "Uploaded" / "JaneDoe_Filament_TrueRed_abcdef.stl"
    target.write_bytes(CUBE_BYTES)
    before = {p: p.stat().st_mtime_ns for p in storage.root.rglob("*") if p.is_file()}

    answer = send(student, form(), held=token)

    assert answer.status_code == 422
    assert "Your earlier file is no longer kept" in answer.get_data(as_text=True)
    assert jobs(session) == 0
    assert {p: p.stat().st_mtime_ns for p in storage.root.rglob("*") if p.is_file()} == before


# -- the service ---------------------------------------------------------------------------------


def _received(storage: Storage, content: bytes = CUBE_BYTES):  # type: ignore[no-untyped-def]
    return storage.receive(io.BytesIO(content), 50 * 1024 * 1024)


def test_held_file_is_found_by_its_token_for_its_browser_within_the_hour(storage):
    now = utcnow()
    received = _received(storage)
    held = held_uploads.hold(storage, received, "model.stl", "browser-a", now=now)
    received.discard()  # the request's own temporary file goes; the held one stays

    found = held_uploads.find(storage, held.token, "browser-a", now=now + timedelta(minutes=59))
    assert found is not None and found.original_filename == "model.stl"
    assert held_uploads.file_of(storage, found).read_bytes() == CUBE_BYTES
    assert held_uploads.find(storage, held.token, "browser-b", now=now) is None
    assert held_uploads.find(storage, held.token, "browser-a", now=now + timedelta(minutes=61)) is None
    # What the record stores: hashes only, neither the token nor the browser's id.
    stored = b"".join(p.read_bytes() for p in (storage.root / ".held").iterdir())
    assert held.token.encode() not in stored and b"browser-a" not in stored


def test_held_files_expire_and_are_swept(storage, session):
    now = utcnow()
    old = held_uploads.hold(storage, _received(storage), "old.stl", "b", now=now - timedelta(minutes=61))
    young = held_uploads.hold(
        storage, _received(storage, b"young"), "young.stl", "b", now=now - timedelta(minutes=5)
    )
    (storage.root / ".held" / "notes.txt").write_text("someone's file")  # not ours: left alone
    (storage.root / ".held" / ("f" * 64 + ".upload")).symlink_to(storage.root / "Uploaded")

    report = sweeps.run_sweeps(session, storage, now=now)

    assert report.held_removed == 1 and not report.errors
    assert held_uploads.find(storage, old.token, "b", now=now) is None
    assert held_uploads.find(storage, young.token, "b", now=now) is not None
    assert len([n for n in held_names(storage) if n.endswith((".upload", ".json"))]) == 3  # young + the link
    assert (storage.root / ".held" / "notes.txt").exists()
    assert (storage.root / "Uploaded").is_dir()  # the link was not followed

    later = now + timedelta(hours=1, minutes=1)
    assert held_uploads.sweep(storage, now=later) == 1
    assert held_uploads.find(storage, young.token, "b", now=now) is None


def test_a_holding_area_that_is_a_link_is_never_used(storage, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (storage.root / ".held").symlink_to(outside)
    with pytest.raises(StorageError):
        held_uploads.hold(storage, _received(storage), "model.stl", "b")
    assert list(outside.iterdir()) == []
    assert held_uploads.find(storage, "a" * 43, "b") is None
    assert held_uploads.sweep(storage, now=utcnow() + timedelta(days=1)) == 0
    assert os.path.islink(storage.root / ".held")
