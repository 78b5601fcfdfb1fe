"""The approve and quote dialogs and the new staff actions through the Flask test client: what the
form offers, what the server refuses, and the plain sentences every action dialog says."""

from __future__ import annotations

import re
import shutil

import pytest
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import Event, Job, Task
from printlab.services.files import model_analysis
from printlab.services.lab import workstations
from printlab.web.jobs.actions import ACTIONS

from .conftest import MODELS, SLICED
from .factories import STAFF, make_job, make_staff
from .test_staff_pages import PASSWORD, WORKSTATION, act, field_errors, fresh, text, token
from .test_workflow import emails_of, snapshot


@pytest.fixture
def staff_client(app, session):  # type: ignore[no-untyped-def]
    """A test client signed in as a lab workstation through the real sign-in form, Alex acting."""
    make_staff(session)
    workstations.add_workstation(session, WORKSTATION, PASSWORD)
    client = app.test_client()
    response = client.post(
        "/login",
        data={"csrf_token": token(client, "/login"), "workstation": WORKSTATION, "password": PASSWORD},
    )
    assert response.status_code == 303
    return client


def analysed(session, storage, job):
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    return session.get(Job, job.id)


def offered_files(page: str) -> list[str]:
    return re.findall(r'name="authoritative_file" value="([^"]+)"', page)


def checked_file(page: str) -> str:
    found = re.search(r'name="authoritative_file" value="([^"]+)"\s*checked', page)
    assert found, "no file pre-selected"
    return found.group(1)


def test_the_approve_dialog_never_offers_an_obj_material_file(staff_client, session, storage):
    job = make_job(session, storage, model=MODELS / "box.obj")
    upload = storage.resolve(job.file_path)
    mtl = upload.with_suffix(".mtl")
    shutil.copyfile(MODELS / "box.mtl", mtl)
    page = text(staff_client.get(f"/jobs/{job.id}/act/approve"))
    assert offered_files(page) == [upload.name]
    assert checked_file(page) == upload.name
    before = snapshot(session, storage, job.id)
    response = act(
        staff_client,
        job.id,
        "approve",
        acting_as=STAFF,
        weight_g="3",
        time_hours="1",
        authoritative_file=mtl.name,
    )
    assert response.status_code == 422
    assert field_errors(response)["authoritative_file"] == (
        f"{mtl.name} can't be printed: choose the model or a slicer file."
    )
    assert snapshot(session, storage, job.id) == before


def test_approving_resin_with_a_filament_colour_and_printer_is_refused_and_nothing_is_sent(
    staff_client, session, storage
):
    job = make_job(session, storage)
    before = snapshot(session, storage, job.id)
    response = act(
        staff_client, job.id, "approve", acting_as=STAFF, weight_g="20", time_hours="2",
        material="Resin", color="True Red", printer="Prusa MK4S",
    )  # fmt: skip
    assert response.status_code == 422
    assert field_errors(response) == {
        "color": "Choose a Resin color: True Red isn't one.",
        "printer": "Choose a Resin printer: the Prusa MK4S doesn't print Resin.",
    }
    fresh(session)
    assert snapshot(session, storage, job.id) == before
    assert emails_of(session, job.id, "quote") == []


def test_the_dialog_groups_colours_and_printers_by_method(staff_client, session, storage):
    job = make_job(session, storage)
    page = text(staff_client.get(f"/jobs/{job.id}/act/approve"))
    resin = re.search(r'<optgroup label="Resin colors" data-method="Resin">(.*?)</optgroup>', page, re.S)
    assert resin and re.findall(r'<option value="([^"]+)"', resin.group(1)) == [
        "Black",
        "White",
        "Gray",
        "Clear",
    ]
    printers = re.search(r'<optgroup label="Resin printers" data-method="Resin">(.*?)</optgroup>', page, re.S)
    assert printers and re.findall(r'<option value="([^"]+)"', printers.group(1)) == ["Formlabs Form 3"]


def test_the_estimate_prefills_the_dialog_and_the_warnings_sit_by_the_button(staff_client, session, storage):
    cube = analysed(session, storage, make_job(session, storage))
    page = text(staff_client.get(f"/jobs/{cube.id}/act/approve"))
    assert re.search(r'id="weight_g"[^>]*value="4.4"', page)
    assert re.search(r'id="time_hours"[^>]*value="0.5"', page)
    assert "From the model check — estimate" in page and 'class="badge estimate">estimate<' in page
    assert 'id="model-warnings"' not in page

    box = analysed(
        session, storage, make_job(session, storage, model=MODELS / "box.obj", student_email="b@x.edu")
    )
    page = text(staff_client.get(f"/jobs/{box.id}/act/approve"))
    warnings = page[page.index('id="model-warnings"') : page.index('id="action-submit"')]
    assert "only 2 mm across" in warnings


def test_the_message_to_the_student_reaches_the_quote_email(staff_client, session, storage):
    job = make_job(session, storage)
    response = act(
        staff_client, job.id, "approve", acting_as=STAFF, weight_g="20", time_hours="2",
        message="We printed it at 25.4× — it was drawn in inches.",
    )  # fmt: skip
    assert response.status_code == 303, field_errors(response)
    fresh(session)
    (quote,) = emails_of(session, job.id, "quote")
    assert quote.context["message"] == "We printed it at 25.4× — it was drawn in inches."


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_every_dialog_says_what_happens_in_plain_sentences(name):
    spec = ACTIONS[name]
    sentences = [spec.consequence] + ([spec.email.format(address="jo@example.edu")] if spec.email else [])
    for sentence in sentences:
        assert sentence[0].isupper() and sentence.endswith("."), sentence
        assert "An email with" not in sentence and "will be sent" not in sentence
        assert "_" not in sentence and "  " not in sentence
    if spec.email:
        assert "jo@example.edu" in sentences[-1]


# -- the new actions through their dialogs -----------------------------------------------------


def test_cancel_job_from_its_dialog(staff_client, session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    page = text(staff_client.get(f"/jobs/{job.id}/act/cancel"))
    assert "An email goes to jane.doe@example.edu saying the job was cancelled, with your reason." in page
    assert "Don't cancel" in page
    response = act(
        staff_client, job.id, "cancel", acting_as=STAFF, reason="The student picked it up elsewhere."
    )
    assert response.status_code == 303, field_errors(response)
    fresh(session)
    assert session.get(Job, job.id).status == "REJECTED"
    assert len(emails_of(session, job.id, "rejected")) == 1


def test_edit_quote_from_its_dialog_starts_from_the_current_quote(staff_client, session, storage):
    job = make_job(session, storage, Status.PENDING)  # 42 g, 2.5 h
    page = text(staff_client.get(f"/jobs/{job.id}/act/edit_quote"))
    assert re.search(r'id="weight_g"[^>]*value="42.0"', page)
    assert checked_file(page) == job.file_path.rsplit("/", 1)[1]
    response = act(staff_client, job.id, "edit_quote", acting_as=STAFF, weight_g="50", time_hours="2.5")
    assert response.status_code == 303, field_errors(response)
    fresh(session)
    assert str(session.get(Job, job.id).cost_usd) == "5.00"
    assert len(emails_of(session, job.id, "quote")) == 2


def test_confirm_for_student_from_its_dialog(staff_client, session, storage):
    job = make_job(session, storage, Status.PENDING)
    response = act(staff_client, job.id, "confirm_for_student", acting_as=STAFF, note="Agreed at the desk.")
    assert response.status_code == 303, field_errors(response)
    fresh(session)
    assert session.get(Job, job.id).status == "READYTOPRINT"
    event = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "StudentConfirmed")
    ).one()
    assert event.details["by_staff"] == STAFF and event.triggered_by == STAFF


def test_grams_a_slicer_file_did_not_state_are_explained_in_the_dialog(staff_client, session, storage):
    job = make_job(session, storage)
    target = storage.resolve(job.file_path).with_name(f"{job.display_name}.gcode")
    shutil.copyfile(SLICED / "cura_5.9.1_marlin_k1max.gcode", target)  # metres of filament, no grams
    page = text(staff_client.get(f"/jobs/{job.id}/act/approve"))
    assert checked_file(page) == target.name and "newest slicer file" in page
    assert re.search(r'id="weight_g"[^>]*value="5.0"', page)
    assert "1.68 m of filament, 1.75 mm in diameter, at 1.24 g/cm³ (Filament)" in page
