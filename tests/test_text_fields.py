"""Staff and admin text fields hold to the one text rule: NUL, control and bidi characters are
refused with a message naming the field, and nothing is changed (no row, no event, no file)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printlab.domain.statuses import Status
from printlab.models import AdminLogEntry, Event, Job, LabSetting, Staff, Workstation
from printlab.services.errors import ValidationError
from printlab.services.files.storage import Storage
from printlab.services.jobs import file_deletion, job_desk, locks, workflow
from printlab.services.lab import catalog as catalog_service
from printlab.services.lab import staff as staff_service
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor
from printlab.web.job_version import version_of

from .factories import STAFF, actor, make_job, make_staff

ADMIN_PC = "ADMIN-PC"
CONTROL = "contains an invisible control character. Please type it again without it."
BIDI = "contains a hidden character that changes the direction of text. Please type it again without it."
ONE_LINE = "contains a tab or line break (this field is one line). Please type it again without it."


def _admin() -> Actor:
    return Actor(STAFF, ADMIN_PC)


def _snapshot(session: Session, storage: Storage) -> dict[str, Any]:
    """Everything a refused change must leave as it was."""
    session.rollback()
    session.expire_all()
    return {
        "jobs": [
            (j.id, j.status, j.notes, j.updated_at) for j in session.scalars(select(Job).order_by(Job.id))
        ],
        "events": session.scalar(select(func.count()).select_from(Event)),
        "admin_log": session.scalar(select(func.count()).select_from(AdminLogEntry)),
        "settings": {s.key: s.value for s in session.scalars(select(LabSetting))},
        "staff": sorted(s.name for s in session.scalars(select(Staff))),
        "workstations": sorted(w.id for w in session.scalars(select(Workstation))),
        "files": sorted(str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file()),
    }


@pytest.fixture
def lab(session, storage):  # type: ignore[no-untyped-def]
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, "a-long-password-1", is_admin=True)
    return {
        "uploaded": make_job(session, storage, Status.UPLOADED).id,
        "printing": make_job(session, storage, Status.PRINTING, student_email="p@example.edu").id,
        "completed": make_job(session, storage, Status.COMPLETED, student_email="c@example.edu").id,
    }


Call = Callable[[Session, Storage, dict[str, str], str], object]

CASES: list[tuple[str, str, str, bool, Call]] = [
    # (case, field, label, multi-line?, call with the text)
    ("reject: own reason", "other_reason", "The reason in your own words", True,
     lambda s, st, j, t: workflow.reject(s, st, j["uploaded"], actor=actor(), other_reason=t)),
    ("print failed: what went wrong", "reason", "What went wrong", True,
     lambda s, st, j, t: workflow.print_failed(s, st, j["printing"], actor=actor(), reason=t)),
    ("revert: why", "reason", "The reason", True,
     lambda s, st, j, t: workflow.revert(s, st, j["completed"], actor=actor(), reason=t)),
    ("override: reason", "reason", "The reason", True,
     lambda s, st, j, t: workflow.override_status(s, st, j["uploaded"], actor=_admin(), target="PENDING", reason=t)),
    ("force confirm: reason", "reason", "The reason", True,
     lambda s, st, j, t: workflow.force_confirm(s, st, j["uploaded"], actor=_admin(), reason=t)),
    ("pickup: payment reference", "payment_reference", "Payment reference", False,
     lambda s, st, j, t: workflow.record_pickup(s, st, j["completed"], actor=actor(), method="CARD", weighed_g=40, payment_reference=t)),
    ("pickup: picked up by", "picked_up_by", "Picked up by", False,
     lambda s, st, j, t: workflow.record_pickup(s, st, j["completed"], actor=actor(), method="CARD", weighed_g=40, picked_up_by=t)),
    ("notes", "notes", "Notes", True,
     lambda s, st, j, t: job_desk.update_notes(s, st, j["uploaded"], t, actor=actor())),
    ("break lock: reason", "reason", "The reason", True,
     lambda s, st, j, t: locks.break_lock(s, st, j["uploaded"], actor=_admin(), reason=t)),
    ("delete files: reason", "reason", "The reason", True,
     lambda s, st, j, t: file_deletion.delete_job_files(s, st, j["uploaded"], actor=_admin(), reason=t, confirmed=[])),
    ("banner", "banner", "The banner", False,
     lambda s, st, j, t: catalog_service.set_banner(s, t, by=_admin())),
    ("staff name", "name", "The name", False,
     lambda s, st, j, t: staff_service.add_staff(s, t, by=_admin())),
    ("catalog: disciplines", "disciplines", "Disciplines", True,
     lambda s, st, j, t: catalog_service.save_section(s, "disciplines", {"disciplines": f"Engineering\n{t}"}, by=_admin())),
    ("catalog: rejection reasons", "rejection_reasons", "Rejection reasons", True,
     lambda s, st, j, t: catalog_service.save_section(s, "reasons", {"rejection_reasons": t}, by=_admin())),
    ("catalog: lab name", "name", "The lab's name", False,
     lambda s, st, j, t: catalog_service.save_section(s, "lab", _lab_form(name=t), by=_admin())),
    ("catalog: pickup location", "pickup_location", "Pickup location", False,
     lambda s, st, j, t: catalog_service.save_section(s, "lab", _lab_form(pickup_location=t), by=_admin())),
    ("catalog: opening hours", "opening_hours", "Opening hours", False,
     lambda s, st, j, t: catalog_service.save_section(s, "lab", _lab_form(opening_hours=t), by=_admin())),
]  # fmt: skip


def _lab_form(**overrides: str) -> dict[str, str]:
    values = {
        "name": "Maker Lab",
        "pickup_location": "Room 101",
        "opening_hours": "Mon-Fri 9-5",
        "contact_email": "lab@example.edu",
        "time_zone": "America/Chicago",
        "hold_days": "14",
        "pickup_reminder_days": "7",
        "final_reminder_days_before_hold_ends": "2",
    }
    values.update(overrides)
    return values


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("Wall\x00s too thin", CONTROL, id="NUL"),
        pytest.param("Walls\x1b[31m too thin", CONTROL, id="escape"),
        pytest.param("Walls \u202enith oot", BIDI, id="right-to-left override"),
        pytest.param("Walls \u2066too\u2069 thin", BIDI, id="bidi isolate"),
    ],
)
@pytest.mark.parametrize(
    ("field", "label", "call"), [pytest.param(f, lb, c, id=case) for case, f, lb, _m, c in CASES]
)
def test_text_with_control_or_bidi_characters_is_refused_and_nothing_changes(
    session, storage, lab, field, label, call, text, problem
):
    before = _snapshot(session, storage)
    with pytest.raises(ValidationError) as caught:
        call(session, storage, lab, text)
    assert caught.value.errors == {field: f"{label} {problem}"}
    assert _snapshot(session, storage) == before


@pytest.mark.parametrize(
    ("field", "label", "call"),
    [pytest.param(f, lb, c, id=case) for case, f, lb, multi, c in CASES if not multi],
)
def test_one_line_fields_refuse_a_tab(session, storage, lab, field, label, call):
    before = _snapshot(session, storage)
    with pytest.raises(ValidationError) as caught:
        call(session, storage, lab, "Room\t101")
    assert caught.value.errors == {field: f"{label} {ONE_LINE}"}
    assert _snapshot(session, storage) == before


def test_a_reason_on_several_lines_is_kept_as_typed_in_nfc(session, storage, lab):
    workflow.reject(
        session, storage, lab["uploaded"], actor=actor(), other_reason="Line one\r\nCafe\u0301 line"
    )
    session.rollback()
    job = session.get(Job, lab["uploaded"])
    assert job.reject_reasons["other"] == "Line one\nCaf\u00e9 line"


def test_notes_on_several_lines_are_kept(session, storage, lab):
    job_desk.update_notes(session, storage, lab["uploaded"], "first\r\n\tsecond", actor=actor())
    session.rollback()
    assert session.get(Job, lab["uploaded"]).notes == "first\n\tsecond"


# -- through the pages ---------------------------------------------------------------------------


@pytest.fixture
def admin_client(lab_env, lab):  # type: ignore[no-untyped-def]
    from printlab import config as config_module
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    client = app.test_client()
    assert (
        client.post("/login", data={"workstation": ADMIN_PC, "password": "a-long-password-1"}).status_code
        == 303
    )
    yield client
    app.extensions["printlab"].engine.dispose()


def test_reject_dialog_shows_the_message_next_to_the_reason_and_keeps_the_job(admin_client, session, lab):
    job_id = lab["uploaded"]
    response = admin_client.post(
        f"/jobs/{job_id}/act/reject",
        data={
            "acting_as": STAFF,
            "other_reason": "Too thin \u202egnorw",
            "expected_status": "UPLOADED",
            "expected_version": version_of(session.get(Job, job_id)),
        },
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert f"The reason in your own words {BIDI}" in page
    session.rollback()
    assert session.get(Job, job_id).status == Status.UPLOADED.value
    assert session.scalar(select(func.count()).select_from(Event).where(Event.job_id == job_id)) == 1


def test_banner_with_nul_is_not_saved_and_the_admin_is_told(admin_client, session):
    response = admin_client.post("/admin/banner", data={"acting_as": STAFF, "banner": "Closed\x00 today"})
    assert response.status_code == 303
    page = html.unescape(admin_client.get("/admin").get_data(as_text=True))
    assert f"Not saved: The banner {CONTROL}" in page
    session.rollback()
    assert session.get(LabSetting, "banner") is None


def test_workstation_names_with_control_characters_are_refused_and_never_match(session, lab):
    with pytest.raises(ValidationError) as caught:
        workstations.add_workstation(session, "LAB\x00PC", "a-long-password-1", by=_admin())
    assert set(caught.value.errors) == {"id"}
    assert workstations.verify_sign_in(session, "ADMIN\x00-PC", "a-long-password-1") is None
    assert workstations.verify_sign_in(session, "\u202eCP-NIMDA", "a-long-password-1") is None
