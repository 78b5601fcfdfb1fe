"""Forms that change a job besides the action dialogs (admin overrides, resending an email, deleting files,
notes) carry the job's version: one filled in on a page that is out of date changes nothing.

The service tests call each service as its form would; the route tests post the forms themselves.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import Event, Job, OutboxMessage
from printlab.services.errors import JobLocked, StaleJob
from printlab.services.jobs import file_deletion, job_desk, locks, resend, workflow
from printlab.services.jobs.records import job_files
from printlab.services.jobs.status_change import Expected
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor

from .factories import STAFF, actor, make_job, make_staff, quote_token

ADMIN_PC, STAFF_PC, PASSWORD = "ADMIN-PC", "LAB-PC-7", "a-long-password-1"
OTHER = "Sam Okafor"


@pytest.fixture
def admin(session) -> Actor:  # type: ignore[no-untyped-def]
    make_staff(session)
    make_staff(session, OTHER)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    return Actor(STAFF, ADMIN_PC)


def seen(job: Job) -> Expected:
    """What a page loaded now shows of the job."""
    return Expected(job.status, job.updated_at)


def state(session, storage, job_id: str):  # type: ignore[no-untyped-def]
    """Everything a refused form must leave as it was: row, lock, notes, events, emails, files."""
    session.rollback()
    session.expire_all()
    job = session.get(Job, job_id)
    events = session.scalars(select(Event.event_type).where(Event.job_id == job_id).order_by(Event.id)).all()
    emails = session.scalars(
        select(OutboxMessage.template).where(OutboxMessage.job_id == job_id).order_by(OutboxMessage.id)
    ).all()
    return (
        job.status,
        job.updated_at,
        job.confirm_token,
        job.locked_by,
        job.notes,
        list(events),
        list(emails),
        sorted(job_files(storage, job)),
    )


# -- services ----------------------------------------------------------------------------------


def test_override_after_the_student_confirmed_is_refused_and_sends_nothing(session, storage, admin):
    """The field trial's race, one step at a time: the student confirms while the admin's page is open."""
    job = make_job(session, storage, Status.PENDING)
    page = seen(job)
    workflow.confirm(session, storage, quote_token(session, job.id))
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=r"changed by the student at .* and is now Ready to Print"):
        workflow.override_status(
            session, storage, job.id, actor=admin, target="REJECTED", reason="Too big", send_email=True,
            expected=page,
        )  # fmt: skip
    assert state(session, storage, job.id) == before


@pytest.mark.parametrize("kind", ["force_confirm", "print_failed"])
def test_other_overrides_from_a_stale_page_are_refused(session, storage, admin, kind):
    status = Status.PENDING if kind == "force_confirm" else Status.PRINTING
    job = make_job(session, storage, status)
    page = seen(job)
    if kind == "force_confirm":
        workflow.resend_quote(session, storage, job.id, actor=Actor(OTHER, STAFF_PC))
    else:
        workflow.complete(session, storage, job.id, actor=Actor(OTHER, STAFF_PC))
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=f"changed by {OTHER}"):
        if kind == "force_confirm":
            workflow.force_confirm(
                session, storage, job.id, actor=admin, reason="In person", send_email=True, expected=page
            )
        else:
            workflow.print_failed(session, storage, job.id, actor=admin, reason="Warped", expected=page)
    assert state(session, storage, job.id) == before


def test_breaking_a_lock_from_a_stale_page_is_refused(session, storage, admin):
    job = make_job(session, storage)
    sam = Actor(OTHER, STAFF_PC)
    locks.take(session, job.id, actor=sam)
    page = seen(session.get(Job, job.id))
    locks.break_lock(session, storage, job.id, actor=admin, reason="Sam went home")  # another admin, first
    locks.take(session, job.id, actor=sam)  # Sam is back and working on it
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob):
        locks.break_lock(session, storage, job.id, actor=admin, reason="Sam went home", expected=page)
    assert state(session, storage, job.id) == before
    assert before[3] == OTHER


def test_resending_the_quote_from_a_stale_page_is_refused(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    page = seen(job)
    workflow.resend_quote(
        session, storage, job.id, actor=Actor(OTHER, STAFF_PC)
    )  # a colleague, a moment before
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=f"changed by {OTHER}"):
        workflow.resend_quote(session, storage, job.id, actor=actor(), expected=page)
    with pytest.raises(StaleJob):
        resend.resend(session, storage, job.id, "quote", staff=STAFF, workstation="LAB-PC-1", expected=page)
    assert state(session, storage, job.id) == before


def test_resending_the_quote_moves_the_version(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    version = job.updated_at
    resent = workflow.resend_quote(session, storage, job.id, actor=actor(), expected=seen(job))
    assert resent.updated_at > version  # a page showing the old link is out of date


def test_resending_the_quote_while_someone_else_has_the_job_open_is_refused(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    locks.take(session, job.id, actor=Actor(OTHER, STAFF_PC))
    page = seen(session.get(Job, job.id))
    before = state(session, storage, job.id)
    with pytest.raises(JobLocked, match=f"being edited by {OTHER}"):
        workflow.resend_quote(session, storage, job.id, actor=actor(), expected=page)
    with pytest.raises(JobLocked):
        resend.resend(session, storage, job.id, "quote", staff=STAFF, workstation="LAB-PC-1", expected=page)
    assert state(session, storage, job.id) == before
    # The one holding the lock may resend it, which ends their dialog like any action does.
    resent = workflow.resend_quote(session, storage, job.id, actor=Actor(OTHER, STAFF_PC), expected=page)
    assert (resent.locked_by, resent.locked_until) == (None, None)


def test_resending_another_email_from_a_stale_page_is_refused(session, storage, admin):
    job = make_job(session, storage, Status.PRINTING)
    page = seen(job)
    workflow.complete(session, storage, job.id, actor=Actor(OTHER, STAFF_PC))
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=f"changed by {OTHER}"):
        resend.resend(session, storage, job.id, "receipt", staff=STAFF, expected=page)
    assert state(session, storage, job.id) == before


def test_deleting_files_from_a_stale_page_is_refused(session, storage, admin):
    job = make_job(session, storage)
    page = seen(job)
    workflow.approve(session, storage, job.id, actor=Actor(OTHER, STAFF_PC), weight_g=10, time_hours=1)
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=f"changed by {OTHER}"):
        file_deletion.delete_job_files(
            session, storage, job.id, actor=admin, reason="Student asked", confirmed=before[-1],
            expected=page,
        )  # fmt: skip
    assert state(session, storage, job.id) == before
    assert all(storage.resolve(name).exists() for name in before[-1])


def test_deleting_files_moves_the_version(session, storage, admin):
    job = make_job(session, storage, Status.REJECTED)
    version = job.updated_at
    file_deletion.delete_job_files(
        session, storage, job.id, actor=admin, reason="Student asked", confirmed=job_files(storage, job),
        expected=seen(job),
    )  # fmt: skip
    session.expire_all()
    assert session.get(Job, job.id).updated_at > version


def test_notes_from_a_stale_page_are_refused_and_current_ones_keep_the_version(session, storage, admin):
    job = make_job(session, storage)
    page = seen(job)
    job_desk.update_notes(session, storage, job.id, "Thin walls", actor=actor(), expected=page)
    session.expire_all()
    assert session.get(Job, job.id).updated_at == job.updated_at  # notes don't make other pages stale
    workflow.approve(session, storage, job.id, actor=Actor(OTHER, STAFF_PC), weight_g=10, time_hours=1)
    before = state(session, storage, job.id)
    with pytest.raises(StaleJob, match=f"changed by {OTHER}"):
        job_desk.update_notes(
            session, storage, job.id, "Thin walls; print anyway", actor=actor(), expected=page
        )
    assert state(session, storage, job.id) == before


# -- the forms ---------------------------------------------------------------------------------


@pytest.fixture
def web(lab_env, admin):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    yield app
    app.extensions["printlab"].engine.dispose()


def signed_in(app, workstation: str = ADMIN_PC):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert client.post("/login", data={"workstation": workstation, "password": PASSWORD}).status_code == 303
    return client


def page_fields(client, url: str, form_id: str | None = None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The hidden fields a page's form sends back (the first form with a version, or the one named)."""
    page = client.get(url).get_data(as_text=True)
    start = page.index('name="expected_version"', page.index(f'id="{form_id}"') if form_id else 0)
    form = page[page.rindex("<form", 0, start) : page.index("</form>", start)]
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form)
    return {name: html.unescape(value) for name, value in found}


def message(response) -> str:  # type: ignore[no-untyped-def]
    if response.is_json:
        return response.get_json()["message"]
    return html.unescape(response.get_data(as_text=True))


MISSING = "doesn't say which version of the job"
UNREADABLE = "this form was filled in on can't be read"


def test_an_override_without_a_version_or_with_an_unreadable_one_is_refused(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage, Status.PENDING)
    url = f"/admin/jobs/{job.id}/override"
    fields = {"acting_as": STAFF, "kind": "change_status", "target": "REJECTED", "reason": "Too big"}
    before = state(session, storage, job.id)
    response = admin.post(url, data=fields)
    assert response.status_code == 400 and MISSING in message(response)
    response = admin.post(url, data={**fields, "expected_version": "yesterday"})
    assert response.status_code == 400 and UNREADABLE in message(response)
    assert "Traceback" not in message(response)
    assert state(session, storage, job.id) == before


def test_an_override_from_a_page_loaded_before_the_student_confirmed_is_refused(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage, Status.PENDING)
    url = f"/admin/jobs/{job.id}/override"
    hidden = page_fields(admin, url)
    assert hidden["expected_status"] == "PENDING"
    workflow.confirm(session, storage, quote_token(session, job.id))
    before = state(session, storage, job.id)
    response = admin.post(
        url,
        data={**hidden, "acting_as": STAFF, "kind": "change_status", "target": "REJECTED", "reason": "Too big",
              "send_email": "on"},
    )  # fmt: skip
    assert response.status_code == 409
    assert "changed by the student at" in message(response) and "Reload" in message(response)
    assert state(session, storage, job.id) == before  # Ready to Print, no rejection email
    # The page now shows the job as it is; sent from there, the override goes through.
    again = page_fields(admin, url)
    ok = admin.post(url, data={**again, "acting_as": STAFF, "kind": "change_status", "target": "REJECTED",
                               "reason": "Too big"})  # fmt: skip
    assert ok.status_code == 303


def test_break_lock_and_force_confirm_carry_the_version(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage, Status.PENDING)
    locks.take(session, job.id, actor=Actor(OTHER, STAFF_PC))
    url = f"/admin/jobs/{job.id}/override"
    hidden = page_fields(admin, url)
    ok = admin.post(url, data={**hidden, "acting_as": STAFF, "kind": "break_lock", "reason": "Gone home"})
    assert ok.status_code == 303
    # The same page again: breaking the lock moved the job on, so its force confirm is stale.
    response = admin.post(
        url, data={**hidden, "acting_as": STAFF, "kind": "force_confirm", "reason": "Agreed in person"}
    )
    assert response.status_code == 409 and f"changed by {STAFF}" in message(response)
    session.rollback()
    assert session.get(Job, job.id).status == "PENDING"


def test_file_deletion_carries_the_version(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage)
    url = f"/admin/jobs/{job.id}/delete-files"
    page = admin.get(url).get_data(as_text=True)
    hidden = page_fields(admin, url)
    names = re.findall(r'name="files" value="([^"]+)"', page)
    response = admin.post(url, data={"acting_as": STAFF, "reason": "Student asked", "files": names})
    assert response.status_code == 400 and MISSING in message(response)
    workflow.approve(session, storage, job.id, actor=Actor(OTHER, STAFF_PC), weight_g=10, time_hours=1)
    moved = job_files(storage, session.get(Job, job.id))
    before = state(session, storage, job.id)
    response = admin.post(url, data={**hidden, "acting_as": STAFF, "reason": "Student asked", "files": moved})
    assert response.status_code == 409 and f"changed by {OTHER}" in message(response)
    assert state(session, storage, job.id) == before


def test_notes_autosave_carries_the_version(web, session, storage):
    desk = signed_in(web, STAFF_PC)
    job = make_job(session, storage)
    url = f"/jobs/{job.id}/notes"
    json = {"Accept": "application/json"}
    hidden = page_fields(desk, f"/jobs/{job.id}", "notes-form")
    response = desk.post(url, data={"acting_as": STAFF, "notes": "Thin walls"}, headers=json)
    assert response.status_code == 400 and MISSING in message(response)
    response = desk.post(url, data={**hidden, "acting_as": STAFF, "notes": "Thin walls"}, headers=json)
    assert response.status_code == 200, message(response)
    workflow.approve(session, storage, job.id, actor=Actor(OTHER, STAFF_PC), weight_g=10, time_hours=1)
    before = state(session, storage, job.id)
    response = desk.post(url, data={**hidden, "acting_as": STAFF, "notes": "Print as is"}, headers=json)
    assert response.status_code == 409
    assert response.get_json() == {"ok": False, "message": message(response)}
    assert f"changed by {OTHER}" in message(response)
    assert state(session, storage, job.id) == before


def test_resending_from_the_job_page_carries_the_version_and_respects_the_lock(web, session, storage):
    desk = signed_in(web, STAFF_PC)
    job = make_job(session, storage, Status.PENDING)
    url = f"/jobs/{job.id}/emails/resend"
    json = {"Accept": "application/json"}
    hidden = page_fields(desk, f"/jobs/{job.id}", "resend-form")
    before = state(session, storage, job.id)
    response = desk.post(url, data={"acting_as": STAFF, "template": "quote"}, headers=json)
    assert response.status_code == 400 and MISSING in message(response)
    locks.take(session, job.id, actor=Actor(OTHER, STAFF_PC))
    response = desk.post(url, data={**hidden, "acting_as": STAFF, "template": "quote"}, headers=json)
    assert response.status_code == 409 and f"being edited by {OTHER}" in message(response)
    locks.release(session, job.id, actor=Actor(OTHER, STAFF_PC))
    workflow.resend_quote(session, storage, job.id, actor=Actor(OTHER, STAFF_PC))
    response = desk.post(url, data={**hidden, "acting_as": STAFF, "template": "quote"}, headers=json)
    assert response.status_code == 409 and f"changed by {OTHER}" in message(response)
    after = state(session, storage, job.id)
    assert after[6] == [*before[6], "quote"]  # only the colleague's resend
    fresh_page = page_fields(desk, f"/jobs/{job.id}", "resend-form")
    response = desk.post(url, data={**fresh_page, "acting_as": STAFF, "template": "quote"}, headers=json)
    assert response.status_code == 200, message(response)


def test_the_resend_quote_dialog_is_refused_while_someone_else_has_the_job_open(web, session, storage):
    desk = signed_in(web, STAFF_PC)
    job = make_job(session, storage, Status.PENDING)
    url = f"/jobs/{job.id}/act/resend_quote"
    hidden = page_fields(desk, url)
    locks.take(session, job.id, actor=Actor(OTHER, STAFF_PC))
    before = state(session, storage, job.id)
    response = desk.post(url, data={**hidden, "acting_as": STAFF})
    assert response.status_code == 409 and f"being edited by {OTHER}" in message(response)
    assert state(session, storage, job.id) == before


@pytest.mark.parametrize("version", [None, "", "not-a-time", "2026-13-45T99:00:00"])
def test_an_action_dialog_with_a_missing_or_unreadable_version_is_refused(web, session, storage, version):
    desk = signed_in(web, STAFF_PC)
    job = make_job(session, storage)
    url = f"/jobs/{job.id}/act/approve"
    hidden = page_fields(desk, url)
    if version is None:
        del hidden["expected_version"]
    else:
        hidden["expected_version"] = version
    before = state(session, storage, job.id)
    response = desk.post(url, data={**hidden, "acting_as": STAFF, "weight_g": "10", "time_hours": "1"})
    assert response.status_code == 400
    assert (UNREADABLE if version else MISSING) in message(response)
    assert state(session, storage, job.id) == before
