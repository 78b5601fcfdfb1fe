"""Approving with a catalog-checked quote, and the staff actions that once needed an admin: cancel a job,
edit its quote, confirm it for the student. On SQLite and PostgreSQL."""

from __future__ import annotations

import shutil

import pytest

from printlab.domain.statuses import InvalidTransition, Status
from printlab.models import Job
from printlab.services.errors import JobLocked, StaleJob, ValidationError
from printlab.services.jobs import locks, workflow
from printlab.services.jobs.quote_links import ConfirmOutcome
from printlab.services.jobs.status_change import Expected
from printlab.services.lab.actors import Actor

from .conftest import MODELS, SLICED
from .factories import STAFF, WORKSTATION, actor, make_job, make_staff, quote_token
from .test_workflow import emails_of, events_of, snapshot

# -- what will be printed ----------------------------------------------------------------------


def _obj_job_with_its_mtl(session, storage):
    """A job from the real box.obj with its real material library saved beside it (as a lab does)."""
    job = make_job(session, storage, model=MODELS / "box.obj")
    upload = storage.resolve(job.file_path)
    shutil.copyfile(MODELS / "box.mtl", upload.with_suffix(".mtl"))
    return job, upload


def test_only_printable_files_are_offered_and_the_model_comes_first(session, storage):
    job, upload = _obj_job_with_its_mtl(session, storage)
    # The .mtl sorts before the .obj by name; it was pre-selected before.
    assert workflow.candidate_files(storage, job) == [upload.name]


def test_the_newest_slicer_file_is_recommended_before_the_model(session, storage):
    job, upload = _obj_job_with_its_mtl(session, storage)
    gcode = upload.with_name(f"{job.display_name}.gcode")
    shutil.copyfile(SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", gcode)
    assert workflow.candidate_files(storage, job) == [gcode.name, upload.name]


def test_a_students_3mf_is_the_model_not_a_slicer_file(session, storage):
    job = make_job(session, storage, model=MODELS / "3mf_consortium_multiple_cylinders.3mf")
    upload = storage.resolve(job.file_path)
    repaired = upload.with_name(f"{job.display_name}_repaired.stl")
    shutil.copyfile(MODELS / "stl_binary_20mm_xyz_cube.stl", repaired)
    assert workflow.candidate_files(storage, job) == [upload.name, repaired.name]


def test_approving_an_mtl_as_what_will_be_printed_is_refused_and_changes_nothing(session, storage):
    job, upload = _obj_job_with_its_mtl(session, storage)
    mtl = upload.with_suffix(".mtl").name
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(
            session, storage, job.id, actor=actor(), weight_g=5, time_hours=1, authoritative_file=mtl
        )
    assert caught.value.errors["authoritative_file"] == (
        f"{mtl} can't be printed: choose the model or a slicer file."
    )
    assert snapshot(session, storage, job.id) == before


# -- the quote against the catalog -------------------------------------------------------------


def test_resin_with_a_filament_colour_and_printer_is_refused_with_nothing_written(session, storage):
    job = make_job(session, storage)  # Filament, True Red, Prusa MK4S
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=20, time_hours=2, material="Resin")
    assert caught.value.errors == {
        "color": "Choose a Resin color: True Red isn't one.",
        "printer": "Choose a Resin printer: the Prusa MK4S doesn't print Resin.",
    }
    assert snapshot(session, storage, job.id) == before
    assert emails_of(session, job.id, "quote") == []


def test_changing_the_method_with_a_colour_and_printer_of_it_quotes_them(session, storage):
    job = make_job(session, storage)
    approved = workflow.approve(
        session, storage, job.id, actor=actor(), weight_g=20, time_hours=2,
        material="Resin", color="Clear", printer="Formlabs Form 3",
    )  # fmt: skip
    assert (approved.material, approved.color, approved.printer) == ("Resin", "Clear", "Formlabs Form 3")
    assert str(approved.cost_usd) == "4.00"  # 20 g × $0.20
    details = events_of(session, job.id)[1].details
    assert (details["material"], details["color"], details["printer"]) == (
        "Resin",
        "Clear",
        "Formlabs Form 3",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"color": "Glow in the Dark"}, None),  # a filament colour: fine for a filament job
        ({"color": "Plaid"}, "color"),
        ({"printer": "Formlabs Form 3"}, "printer"),
        ({"printer": "Toaster 3000"}, "printer"),
    ],
)
def test_every_part_of_the_quote_must_be_in_the_catalog(session, storage, change, field):
    job = make_job(session, storage)
    before = snapshot(session, storage, job.id)
    if field is None:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=5, time_hours=1, **change)
        return
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=5, time_hours=1, **change)
    assert list(caught.value.errors) == [field]
    assert snapshot(session, storage, job.id) == before


def test_the_message_to_the_student_goes_into_the_event_and_the_quote_email(session, storage):
    job = make_job(session, storage)
    text = "Your model was only 2 mm across;\nwe scaled it ×25.4 (it was drawn in inches)."
    workflow.approve(
        session, storage, job.id, actor=actor(), weight_g=12, time_hours=1, message=f"  {text}  "
    )
    assert events_of(session, job.id)[1].details["message"] == text
    (quote,) = emails_of(session, job.id, "quote")
    assert quote.context["message"] == text


def test_a_message_with_control_characters_is_refused(session, storage):
    job = make_job(session, storage)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=12, time_hours=1, message="a\x07b")
    assert "message" in caught.value.errors
    assert snapshot(session, storage, job.id) == before


# -- cancel ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.PENDING, Status.READYTOPRINT])
def test_cancel_rejects_with_a_reason_kills_the_link_and_emails_a_cancellation(session, storage, status):
    job = make_job(session, storage, status)
    token = quote_token(session, job.id)
    folder = job.file_path.split("/")[0]
    cancelled = workflow.cancel(
        session, storage, job.id, actor=actor(), reason=" The student asked us to stop. ",
        expected=Expected(status, job.updated_at),
    )  # fmt: skip
    assert cancelled.status == "REJECTED" and cancelled.last_updated_by == STAFF
    assert cancelled.reject_reasons == {
        "reasons": [],
        "other": "The student asked us to stop.",
        "cancelled": True,
    }
    assert cancelled.file_path.startswith(f"{folder}/")  # rejected files stay where they were
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by, last.workstation_id) == ("StaffRejected", STAFF, WORKSTATION)
    assert last.details == {
        "from": status.value, "to": "REJECTED", "cancelled": True, "reason": "The student asked us to stop."
    }  # fmt: skip
    assert len(emails_of(session, job.id, "rejected")) == 1
    assert workflow.confirm(session, storage, token).outcome in (
        ConfirmOutcome.INVALID, ConfirmOutcome.ALREADY_CONFIRMED,
    )  # fmt: skip
    session.expire_all()
    assert session.get(Job, job.id).status == "REJECTED"


def test_cancel_needs_a_reason_and_a_cancellable_status(session, storage):
    job = make_job(session, storage, Status.PENDING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.cancel(session, storage, job.id, actor=actor(), reason="  ")
    assert caught.value.errors == {"reason": "Give a reason for the student."}
    assert snapshot(session, storage, job.id) == before
    printing = make_job(session, storage, Status.PRINTING, student_email="other@example.edu")
    with pytest.raises(InvalidTransition, match="Can't cancel a job that is Printing"):
        workflow.cancel(session, storage, printing.id, actor=actor(), reason="Changed my mind")


def test_cancel_honours_locks_and_versions_like_every_action(session, storage):
    make_staff(session, "Sam Okafor")
    job = make_job(session, storage, Status.PENDING)
    seen = Expected(Status.PENDING, job.updated_at)
    locks.take(session, job.id, actor=Actor("Sam Okafor", "LAB-PC-2"))
    before = snapshot(session, storage, job.id)
    with pytest.raises(JobLocked):
        workflow.cancel(session, storage, job.id, actor=actor(), reason="No longer needed")
    locks.release(session, job.id, actor=Actor("Sam Okafor", "LAB-PC-2"))
    workflow.resend_quote(session, storage, job.id, actor=Actor("Sam Okafor", "LAB-PC-2"))
    with pytest.raises(StaleJob, match="Sam Okafor"):
        workflow.cancel(session, storage, job.id, actor=actor(), reason="No longer needed", expected=seen)
    after = snapshot(session, storage, job.id)
    assert after[0] == before[0] == "PENDING"


# -- edit quote --------------------------------------------------------------------------------


def test_editing_a_pending_quote_replaces_the_link_and_emails_the_new_price(session, storage):
    job = make_job(session, storage, Status.PENDING)
    old_token = quote_token(session, job.id)
    edited = workflow.edit_quote(
        session, storage, job.id, actor=actor(), weight_g=60, time_hours=3, message="Heavier than we thought.",
        expected=Expected(Status.PENDING, job.updated_at),
    )  # fmt: skip
    assert edited.status == "PENDING" and str(edited.cost_usd) == "6.00"
    quotes = emails_of(session, job.id, "quote")
    assert len(quotes) == 2 and quotes[-1].context["edited"] is True  # the email says it is a new quote
    new_token = quote_token(session, job.id)
    assert new_token != old_token
    assert workflow.confirm(session, storage, old_token).outcome == ConfirmOutcome.INVALID
    last = events_of(session, job.id)[-1]
    assert last.event_type == "StaffApproved" and last.triggered_by == STAFF
    assert last.details["edited"] is True and last.details["cost_usd"] == "6.00"
    assert last.details["previous"]["cost_usd"] == "4.20"
    assert last.details["message"] == "Heavier than we thought."
    assert workflow.confirm(session, storage, new_token).outcome == ConfirmOutcome.CONFIRMED


def test_editing_a_confirmed_quote_sends_the_job_back_to_pending_for_a_new_confirmation(session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    assert job.student_confirmed
    edited = workflow.edit_quote(
        session, storage, job.id, actor=actor(), weight_g=30, time_hours=2,
        material="Resin", color="Gray", printer="Formlabs Form 3",
    )  # fmt: skip
    assert edited.status == "PENDING" and not edited.student_confirmed
    assert edited.file_path.startswith("Pending/") and storage.resolve(edited.file_path).is_file()
    assert storage.read_sidecar(edited.metadata_path)["status"] == "PENDING"
    assert events_of(session, job.id)[-1].details["previous"]["student_confirmed"] is True
    assert (
        workflow.confirm(session, storage, quote_token(session, job.id)).outcome == ConfirmOutcome.CONFIRMED
    )


def test_an_edited_quote_is_checked_against_the_catalog_too(session, storage):
    job = make_job(session, storage, Status.PENDING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.edit_quote(
            session, storage, job.id, actor=actor(), weight_g=30, time_hours=2, material="Resin"
        )
    assert set(caught.value.errors) == {"color", "printer"}
    assert snapshot(session, storage, job.id) == before


def test_edit_quote_is_refused_once_printing(session, storage):
    job = make_job(session, storage, Status.PRINTING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(InvalidTransition):
        workflow.edit_quote(session, storage, job.id, actor=actor(), weight_g=30, time_hours=2)
    assert snapshot(session, storage, job.id) == before


# -- confirm for the student -------------------------------------------------------------------


def test_confirm_for_student_is_recorded_as_done_by_staff(session, storage):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)
    confirmed = workflow.confirm_for_student(
        session, storage, job.id, actor=actor(), note="Agreed at the front desk.",
        expected=Expected(Status.PENDING, job.updated_at),
    )  # fmt: skip
    assert confirmed.status == "READYTOPRINT" and confirmed.student_confirmed
    assert confirmed.file_path.startswith("ReadyToPrint/")
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by) == ("StudentConfirmed", STAFF)
    assert last.details == {
        "from": "PENDING", "to": "READYTOPRINT", "by_staff": STAFF, "note": "Agreed at the front desk."
    }  # fmt: skip
    assert len(emails_of(session, job.id, "confirmed")) == 1
    # The student's own link now says it is already confirmed, and moves nothing.
    assert workflow.confirm(session, storage, token).outcome == ConfirmOutcome.ALREADY_CONFIRMED


def test_confirm_for_student_needs_active_staff_and_a_pending_job(session, storage):
    job = make_job(session, storage, Status.PENDING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.confirm_for_student(session, storage, job.id, actor=Actor(None, WORKSTATION))
    assert "acting_as" in caught.value.errors
    assert snapshot(session, storage, job.id) == before
    uploaded = make_job(session, storage, student_email="other@example.edu")
    with pytest.raises(InvalidTransition):
        workflow.confirm_for_student(session, storage, uploaded.id, actor=actor())
