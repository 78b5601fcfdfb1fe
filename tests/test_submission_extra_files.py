"""A student who sends an OBJ's material file (.mtl), alone or with the OBJ, is told it is a material
file the lab doesn't need: refused with that sentence when it is all they sent, left out (and said
so) when the model came with it."""

from __future__ import annotations

import html
import io
import json
import re

from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.submission import choose_model_file, not_needed_message, validate_submission
from printlab.models import Job

from .conftest import MODELS
from .factories import form
from .test_submission_bad_input import (
    assert_nothing_left,
    csrf_token,
    field_errors,
    kept_answers,
    post,
    storage_files,
)

MTL = (MODELS / "box.mtl").read_bytes()
OBJ = (MODELS / "box.obj").read_bytes()
MATERIAL_MESSAGE = (
    "A .mtl file is a material file (the colours of an OBJ model): you don't need to send it. "
    "Choose your model file (.stl, .obj, .3mf, .step, .stp) instead."
)


# -- the rule ------------------------------------------------------------------------------------


def test_a_material_file_alone_is_refused_with_what_it_is() -> None:
    submission, errors = validate_submission(form(), "box.mtl", DEFAULT_CATALOG)
    assert submission is None
    assert errors == {"file": MATERIAL_MESSAGE}
    assert validate_submission(form(), "BOX.MTL", DEFAULT_CATALOG)[1] == {"file": MATERIAL_MESSAGE}


def test_other_wrong_files_keep_the_general_message() -> None:
    assert validate_submission(form(), "notes.txt", DEFAULT_CATALOG)[1] == {
        "file": "Upload a model file (.stl, .obj, .3mf, .step, .stp)."
    }
    assert not_needed_message(".txt", DEFAULT_CATALOG) is None


def test_the_model_is_chosen_from_a_model_and_its_material_file() -> None:
    assert choose_model_file(["box.obj"], DEFAULT_CATALOG) == (0, [])
    assert choose_model_file(["box.obj", "box.mtl"], DEFAULT_CATALOG) == (0, ["box.mtl"])
    assert choose_model_file(["box.mtl", "box.obj"], DEFAULT_CATALOG) == (1, ["box.mtl"])
    # Two models, or something unknown: nothing is guessed, the first file is checked as sent.
    assert choose_model_file(["a.stl", "b.stl"], DEFAULT_CATALOG) == (0, [])
    assert choose_model_file(["box.obj", "notes.txt"], DEFAULT_CATALOG) == (0, [])
    assert choose_model_file(["a.mtl", "b.mtl"], DEFAULT_CATALOG) == (0, [])


# -- through the form ----------------------------------------------------------------------------


def test_sending_only_the_material_file_says_what_it_is_and_keeps_the_answers(client, session, storage):
    fields = form()
    response = post(client, fields, (MTL, "box.mtl"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(page) == {"file": MATERIAL_MESSAGE}
    assert kept_answers(page)["student_name"] == fields["student_name"]
    assert_nothing_left(session, storage)


def test_the_form_script_knows_the_material_file_sentence(client, session):  # type: ignore[no-untyped-def]
    page = client.get("/submit").get_data(as_text=True)
    found = re.search(r'<script type="application/json" id="form-data">(.*?)</script>', page, re.S)
    assert found, "the form has no data for its script"
    assert json.loads(found.group(1))["not_needed"] == {".mtl": MATERIAL_MESSAGE}


def post_files(client, files: list[tuple[bytes, str]]):  # type: ignore[no-untyped-def]
    """The form with several files in its file field, as a browser sends a multiple choice."""
    data = {"csrf_token": csrf_token(client), **form()}
    boundary, body = encode_multipart(
        {
            **data,
            "file": [
                FileStorage(io.BytesIO(b), filename=n, content_type="application/octet-stream")
                for b, n in files
            ],
        }
    )
    return client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_a_model_sent_with_its_material_file_is_kept_and_the_material_file_left_out(client, session, storage):
    response = post_files(client, [(MTL, "box.mtl"), (OBJ, "box.obj")])
    assert response.status_code == 303, response.get_data(as_text=True)
    session.rollback()
    job = session.scalars(select(Job)).one()
    assert job.original_filename == "box.obj"
    assert storage_files(storage) == {job.file_path, job.metadata_path}  # no .mtl kept anywhere
    done = html.unescape(client.get(response.headers["Location"]).get_data(as_text=True))
    flashes = re.search(r'<div class="flashes"[^>]*>(.*?)</div>', done, re.S)
    assert flashes, "no message on the page after sending"
    assert (
        "You don't need to send box.mtl: it is a material file (the colours of an OBJ model). "
        "We kept your model, box.obj." in flashes.group(1)
    )
