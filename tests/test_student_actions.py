"""The student's own moves and "needs changes", on both databases: every transition, every refusal."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from printlab.domain.reports import choose_period
from printlab.domain.statuses import Status
from printlab.models import (
    AnalysisState,
    ChangeOutcome,
    Event,
    Job,
    JobAnalysis,
    JobChangeRequest,
    JobResubmission,
    LabSetting,
    OutboxMessage,
    Task,
)
from printlab.services.errors import JobLocked, NotAllowed, StaleJob, ValidationError
from printlab.services.files import storage as storage_module
from printlab.services.files.storage import Storage
from printlab.services.jobs import locks, student_actions, workflow
from printlab.services.jobs.change_requests import LinkState, find_link
from printlab.services.jobs.quote_links import ConfirmOutcome
from printlab.services.jobs.status_change import Expected
from printlab.services.lab.actors import Student
from printlab.services.upkeep import sweeps
from printlab.services.views.dashboard import JobQuery, list_jobs
from printlab.services.views.reports import Filters, build_report

from .conftest import MODELS
from .factories import STAFF, actor, make_job, make_staff, quote_token, submit_job

CUBE, OTHER_MODEL = "stl_binary_20mm_xyz_cube.stl", "box.obj"
SECOND_STL = "stl_binary_solid_header_trailing_byte_HalfDonut.stl"


def page_of(job: Job) -> Expected:
    """What the student's status page showed: the job's status and version."""
    return Expected(status=job.status, updated_at=job.updated_at)


def events_of(session, job_id: str) -> list[Event]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id)))


def emails_of(session, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        session.scalars(
            select(OutboxMessage.template).where(OutboxMessage.job_id == job_id).order_by(OutboxMessage.id)
        )
    )


def stored(storage: Storage) -> list[str]:
    """Every file under the storage root (temporary uploads included)."""
    return sorted(storage.relative(p) for p in storage.root.rglob("*") if p.is_file())


def snapshot(session, storage: Storage, job_id: str):  # type: ignore[no-untyped-def]
    session.expire_all()
    job = session.get(Job, job_id)
    return (
        job.status, job.updated_at, job.file_path, job.file_hash, job.original_filename,
        len(events_of(session, job_id)), emails_of(session, job_id), stored(storage),
        session.scalar(select(func.count()).select_from(JobChangeRequest)),
    )  # fmt: skip


def receive(storage: Storage, model: str) -> storage_module.ReceivedFile:
    path = Path(model) if Path(model).is_absolute() else MODELS / model
    with open(path, "rb") as handle:
        return storage.receive(handle, 50 * 1024 * 1024)


def reply_token(session, job_id: str) -> str:  # type: ignore[no-untyped-def]
    message = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.job_id == job_id, OutboxMessage.template == "changes_needed")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None and message.context
    return message.context["token"]


def waiting_job(session, storage: Storage, **form):  # type: ignore[no-untyped-def]
    job = make_job(session, storage, Status.UPLOADED, **form)
    student_actions.request_changes(
        session, storage, job.id, actor=actor(), reasons=["Walls too thin"], other_reason="Thicken the base"
    )
    return job


# -- cancel my request ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.UPLOADED, Status.PENDING])
def test_a_student_cancels_their_request_from_the_status_page(session, storage, status):
    job = make_job(session, storage, status)
    files_before = stored(storage)

    student_actions.cancel_by_student(
        session, storage, job.id, student=Student.by_status_link(job.id), expected=page_of(job)
    )

    session.expire_all()
    row = session.get(Job, job.id)
    assert row.status == Status.REJECTED.value
    assert row.confirm_token is None
    assert row.reject_reasons["reasons"] == ["Cancelled by the student"]
    assert row.last_updated_by == ("Alex Rivera" if status == Status.PENDING else None)  # staff's, untouched
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by, last.workstation_id) == ("StudentCancelled", None, None)
    assert last.details["by"] == "student" and last.details["via"] == "status_link"
    assert last.details["reason"] == "Cancelled by the student"
    assert emails_of(session, job.id)[-1] == "withdrawn"
    assert stored(storage) == files_before  # the files stay where they were until archived


def test_cancelling_a_job_already_queued_for_printing_is_refused_and_changes_nothing(session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    before = snapshot(session, storage, job.id)

    with pytest.raises(student_actions.NotPossibleNow) as refused:
        student_actions.cancel_by_student(
            session, storage, job.id, student=Student.by_status_link(job.id), expected=page_of(job)
        )

    assert "“Queued for printing”, so it can't be cancelled" in str(refused.value)
    assert snapshot(session, storage, job.id) == before


def test_a_stale_status_page_cannot_cancel_a_job_staff_approved_meanwhile(session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    seen = page_of(job)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=30, time_hours=1)
    before = snapshot(session, storage, job.id)

    with pytest.raises(StaleJob) as stale:
        student_actions.cancel_by_student(
            session, storage, job.id, student=Student.by_status_link(job.id), expected=seen
        )

    assert "changed by Alex Rivera" in str(stale.value) and "Pending" in str(stale.value)
    assert snapshot(session, storage, job.id) == before


def test_a_link_to_another_job_cannot_cancel_this_one(session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    other = make_job(session, storage, Status.UPLOADED, student_email="someone.else@example.edu")
    before = snapshot(session, storage, job.id)

    with pytest.raises(NotAllowed):
        student_actions.cancel_by_student(
            session, storage, job.id, student=Student.by_status_link(other.id), expected=page_of(job)
        )
    assert snapshot(session, storage, job.id) == before


def test_a_signed_in_student_may_cancel_only_jobs_sent_from_their_address(session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    with pytest.raises(NotAllowed):
        student_actions.cancel_by_student(
            session,
            storage,
            job.id,
            student=Student.by_session("not.jane@example.edu"),
            expected=page_of(job),
        )
    student_actions.cancel_by_student(
        session, storage, job.id, student=Student.by_session("Jane.Doe@example.edu"), expected=page_of(job)
    )
    assert events_of(session, job.id)[-1].details["via"] == "session"


def test_a_staff_members_open_dialog_holds_off_the_students_cancel(session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    locks.take(session, job.id, actor=actor())
    session.expire_all()
    job = session.get(Job, job.id)
    with pytest.raises(JobLocked):
        student_actions.cancel_by_student(
            session, storage, job.id, student=Student.by_status_link(job.id), expected=page_of(job)
        )
    assert session.get(Job, job.id).status == Status.UPLOADED.value


# -- decline the quote ---------------------------------------------------------------------------


def test_declining_the_quote_rejects_the_job_with_the_students_reason(session, storage):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)

    result = student_actions.decline_quote(session, storage, token, reason="Too expensive for me")

    assert result.declined
    session.expire_all()
    row = session.get(Job, job.id)
    assert row.status == Status.REJECTED.value and row.confirm_token is None
    assert row.reject_reasons["reasons"] == ["Quote declined by the student"]
    assert row.reject_reasons["other"] == "Too expensive for me"
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by) == ("QuoteDeclined", None)
    assert last.details["student_reason"] == "Too expensive for me" and last.details["via"] == "quote_link"
    assert emails_of(session, job.id)[-1] == "withdrawn"
    # The link is spent: declining or confirming again does nothing.
    again = student_actions.decline_quote(session, storage, token)
    assert not again.declined and again.state == ConfirmOutcome.INVALID
    assert workflow.confirm(session, storage, token).outcome == ConfirmOutcome.INVALID


def test_a_decline_reason_with_hidden_characters_is_refused_and_nothing_changes(session, storage):
    job = make_job(session, storage, Status.PENDING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as refused:
        student_actions.decline_quote(session, storage, quote_token(session, job.id), reason="cheap\u202eer")
    assert "reason" in refused.value.errors
    assert snapshot(session, storage, job.id) == before


def test_a_confirmed_quote_can_no_longer_be_declined(session, storage):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)
    workflow.confirm(session, storage, token)
    before = snapshot(session, storage, job.id)
    result = student_actions.decline_quote(session, storage, token)
    assert not result.declined and result.state == ConfirmOutcome.ALREADY_CONFIRMED
    assert snapshot(session, storage, job.id) == before


def test_a_declined_quote_shows_on_the_dashboard_at_once(session, storage):
    from printlab.domain.catalog import DEFAULT_CATALOG

    job = make_job(session, storage, Status.PENDING)
    before = list_jobs(session, JobQuery(status=Status.PENDING), DEFAULT_CATALOG)
    student_actions.decline_quote(session, storage, quote_token(session, job.id))
    after = list_jobs(session, JobQuery(status=Status.REJECTED), DEFAULT_CATALOG)
    assert after.version > before.version  # a refresh poll sees a new page
    assert [c.id for c in after.cards] == [job.id]


# -- needs changes -------------------------------------------------------------------------------


def test_needs_changes_keeps_the_job_uploaded_and_waiting_for_the_student(session, storage):
    from printlab.domain.catalog import DEFAULT_CATALOG

    job = make_job(session, storage, Status.UPLOADED)
    other = make_job(session, storage, Status.UPLOADED, student_email="other@example.edu")
    version = list_jobs(session, JobQuery(), DEFAULT_CATALOG).version
    now = datetime(2026, 5, 4, 15, 0)

    student_actions.request_changes(
        session, storage, job.id, actor=actor(), reasons=["Walls too thin"], other_reason="Make the base 2 mm",
        expected=page_of(job), now=now,
    )  # fmt: skip

    session.expire_all()
    assert session.get(Job, job.id).status == Status.UPLOADED.value
    request = session.scalars(select(JobChangeRequest)).one()
    assert (request.requested_by, request.expires_at, request.closed_at) == (
        STAFF,
        now + timedelta(days=14),
        None,
    )
    token = reply_token(session, job.id)
    assert request.token_hash != token and len(token) >= 43  # only the hash is stored
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by) == ("ChangesRequested", STAFF)
    assert last.details["reasons"] == ["Walls too thin"] and last.details["other"] == "Make the base 2 mm"
    page = list_jobs(session, JobQuery(waiting=True), DEFAULT_CATALOG)
    assert [c.id for c in page.cards] == [job.id] and page.waiting_count == 1 and page.version > version
    every = {c.id: c.waiting_for_student for c in list_jobs(session, JobQuery(), DEFAULT_CATALOG).cards}
    assert every == {job.id: True, other.id: False}


def test_needs_changes_needs_a_reason_and_is_asked_once(session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    with pytest.raises(ValidationError):
        student_actions.request_changes(session, storage, job.id, actor=actor(), reasons=[], other_reason=" ")
    with pytest.raises(ValidationError):
        student_actions.request_changes(session, storage, job.id, actor=actor(), reasons=["Not in the list"])
    student_actions.request_changes(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as twice:
        student_actions.request_changes(session, storage, job.id, actor=actor(), other_reason="And more")
    assert "already waiting" in str(twice.value)
    assert snapshot(session, storage, job.id) == before


def test_the_students_corrected_file_replaces_the_old_one_which_is_kept_as_v1(session, storage):
    job = waiting_job(session, storage)
    token = reply_token(session, job.id)
    old_path = storage.resolve(job.file_path)
    old_bytes = old_path.read_bytes()
    base = job.display_name
    received = receive(storage, SECOND_STL)

    student_actions.replace_file(session, storage, token, received, "cube_fixed.stl")

    session.expire_all()
    row = session.get(Job, job.id)
    assert row.status == Status.UPLOADED.value
    assert row.file_path == f"Uploaded/{base}.stl"  # the job's own name holds the new file
    assert storage.resolve(row.file_path).read_bytes() == (MODELS / SECOND_STL).read_bytes()
    assert storage.resolve(f"Uploaded/{base}_v1.stl").read_bytes() == old_bytes
    assert row.file_hash == received.sha256 and row.original_filename == "cube_fixed.stl"
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by) == ("FileReplaced", None)
    assert (last.details["old_file"], last.details["new_file"]) == ("_v1.stl", ".stl")
    sidecar = storage.read_sidecar(row.metadata_path)
    assert sidecar["file_hash"] == received.sha256 and sidecar["original_filename"] == "cube_fixed.stl"
    assert session.get(JobAnalysis, job.id).state == AnalysisState.PENDING
    assert session.scalar(select(func.count()).select_from(Task).where(Task.job_id == job.id)) == 2
    request = session.scalars(select(JobChangeRequest)).one()
    assert request.outcome == ChangeOutcome.REPLACED
    receipt = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert (receipt.template, receipt.context) == ("receipt", {"replaced": True})
    assert not list((storage.root / ".incoming").iterdir())


def test_a_corrected_file_of_another_type_takes_the_jobs_name_with_its_own_extension(session, storage):
    job = waiting_job(session, storage)
    base = job.display_name
    student_actions.replace_file(
        session, storage, reply_token(session, job.id), receive(storage, OTHER_MODEL), "cube.obj"
    )
    session.expire_all()
    row = session.get(Job, job.id)
    assert row.file_path == f"Uploaded/{base}.obj"
    names = sorted(p.name for p in storage.job_files("Uploaded", base))
    assert names == [f"{base}.obj", f"{base}.stl.metadata.json", f"{base}_v1.stl"]


def test_a_replayed_reply_link_is_refused_and_leaves_nothing_behind(session, storage):
    job = waiting_job(session, storage)
    token = reply_token(session, job.id)
    student_actions.replace_file(session, storage, token, receive(storage, SECOND_STL), "a.stl")
    before = snapshot(session, storage, job.id)

    with pytest.raises(student_actions.LinkNotUsable) as used:
        student_actions.replace_file(session, storage, token, receive(storage, OTHER_MODEL), "b.obj")

    assert used.value.state == LinkState.USED
    assert snapshot(session, storage, job.id) == before


def test_a_file_for_a_job_no_longer_waiting_is_refused_and_leaves_no_row_event_or_file(session, storage):
    job = waiting_job(session, storage)
    token = reply_token(session, job.id)
    workflow.reject(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])
    assert session.scalars(select(JobChangeRequest)).one().outcome == ChangeOutcome.MOVED_ON
    before = snapshot(session, storage, job.id)

    with pytest.raises(student_actions.LinkNotUsable) as closed:
        student_actions.replace_file(session, storage, token, receive(storage, OTHER_MODEL), "b.obj")

    assert closed.value.state == LinkState.CLOSED
    assert "no longer needs a corrected file" in str(closed.value)
    assert snapshot(session, storage, job.id) == before


def test_an_expired_or_unknown_reply_link_is_refused(session, storage):
    now = datetime(2026, 5, 4, 15, 0)
    job = make_job(session, storage, Status.UPLOADED)
    student_actions.request_changes(
        session, storage, job.id, actor=actor(), reasons=["Walls too thin"], now=now
    )
    token = reply_token(session, job.id)
    before = snapshot(session, storage, job.id)
    late = now + timedelta(days=14)
    with pytest.raises(student_actions.LinkNotUsable) as expired:
        student_actions.replace_file(
            session, storage, token, receive(storage, OTHER_MODEL), "b.obj", now=late
        )
    assert expired.value.state == LinkState.EXPIRED
    assert find_link(session, token + "x", late).state == LinkState.INVALID
    assert find_link(session, "", late).state == LinkState.INVALID
    assert snapshot(session, storage, job.id) == before


def test_the_same_file_again_is_refused(session, storage):
    job = waiting_job(session, storage)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as same:
        student_actions.replace_file(
            session, storage, reply_token(session, job.id), receive(storage, CUBE), "c.stl"
        )
    assert "same file" in same.value.errors["file"]
    assert snapshot(session, storage, job.id) == before


@pytest.mark.parametrize(
    "step", ["old-file-kept", "new-file-placed", "sidecar-written", "replacement-swapped"]
)
def test_a_failure_at_any_step_of_a_replacement_leaves_files_and_database_as_they_were(
    session, storage, monkeypatch, step
):
    job = waiting_job(session, storage)
    token = reply_token(session, job.id)
    old_bytes = storage.resolve(job.file_path).read_bytes()
    sidecar_before = storage.resolve(job.metadata_path).read_bytes()
    before = snapshot(session, storage, job.id)

    def crash(name: str) -> None:
        if name == step:
            raise OSError(f"disk gone at {name}")

    monkeypatch.setattr(storage_module, "_checkpoint", crash)
    with pytest.raises(OSError):
        student_actions.replace_file(session, storage, token, receive(storage, OTHER_MODEL), "b.stl")
    monkeypatch.undo()

    assert snapshot(session, storage, job.id) == before
    assert storage.resolve(job.file_path).read_bytes() == old_bytes
    assert storage.resolve(job.metadata_path).read_bytes() == sidecar_before
    # The link still works: the student sends the file again.
    student_actions.replace_file(session, storage, token, receive(storage, SECOND_STL), "b.stl")


def test_a_failed_commit_after_the_swap_puts_the_old_file_back(session, storage, monkeypatch):
    job = waiting_job(session, storage)
    token = reply_token(session, job.id)
    old_bytes = storage.resolve(job.file_path).read_bytes()
    before = snapshot(session, storage, job.id)
    from printlab.services.jobs import status_change

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away before the commit")

    monkeypatch.setattr(status_change, "record_move", broken)
    with pytest.raises(RuntimeError):
        student_actions.replace_file(session, storage, token, receive(storage, SECOND_STL), "b.stl")
    monkeypatch.undo()
    assert snapshot(session, storage, job.id) == before
    assert storage.resolve(job.file_path).read_bytes() == old_bytes


# -- no answer in 14 days ------------------------------------------------------------------------


def test_the_sweep_rejects_a_job_whose_student_never_sent_the_file(session, storage):
    asked = datetime(2026, 5, 4, 15, 0)
    job = make_job(session, storage, Status.UPLOADED)
    student_actions.request_changes(
        session,
        storage,
        job.id,
        actor=actor(),
        reasons=["Walls too thin"],
        other_reason="Thicker base",
        now=asked,
    )

    assert sweeps.run_sweeps(session, storage, now=asked + timedelta(days=13, hours=23)).unanswered == 0
    assert session.get(Job, job.id).status == Status.UPLOADED.value

    report = sweeps.run_sweeps(session, storage, now=asked + timedelta(days=14))
    assert report.unanswered == 1 and not report.errors
    session.expire_all()
    row = session.get(Job, job.id)
    assert row.status == Status.REJECTED.value
    assert row.reject_reasons == {"reasons": ["Walls too thin"], "other": "Thicker base", "no_answer": True}
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.triggered_by, last.details["no_answer"]) == ("StaffRejected", None, True)
    assert emails_of(session, job.id)[-1] == "changes_expired"
    assert session.scalars(select(JobChangeRequest)).one().outcome == ChangeOutcome.NO_ANSWER
    # Idempotent: a second run (or a second worker) does nothing more.
    assert sweeps.run_sweeps(session, storage, now=asked + timedelta(days=15)).unanswered == 0
    assert len([e for e in events_of(session, job.id) if e.event_type == "StaffRejected"]) == 1


def test_the_reply_days_are_the_lab_catalogs_setting(session, storage):
    from printlab.services.lab import workstations
    from printlab.services.lab.actors import Actor
    from printlab.services.lab.catalog import load_catalog, save_section

    make_staff(session)
    workstations.add_workstation(session, "ADMIN-PC", "admin-password-1", is_admin=True)
    form = {"minimum_charge": "3.00", "upload_limit_mb": "50", "confirm_link_hours": "72",
            "changes_reply_days": "3", "archive_after_days": "90", "prune_after_days": "365"}  # fmt: skip
    save_section(session, "limits", form, by=Actor(STAFF, "ADMIN-PC"))
    assert load_catalog(session).changes_reply_days == 3
    assert session.get(LabSetting, "changes_reply_days").value == 3
    with pytest.raises(ValidationError):
        save_section(session, "limits", {**form, "changes_reply_days": "0"}, by=Actor(STAFF, "ADMIN-PC"))
    now = datetime(2026, 5, 4, 15, 0)
    job = make_job(session, storage, Status.UPLOADED)
    student_actions.request_changes(
        session, storage, job.id, actor=actor(), reasons=["Walls too thin"], now=now
    )
    assert session.scalars(select(JobChangeRequest)).one().expires_at == now + timedelta(days=3)


# -- reports and resubmissions -------------------------------------------------------------------


def test_student_cancellations_and_declines_count_as_cancellations(session, storage):
    now = datetime(2026, 3, 10, 15, 0)
    first = make_job(session, storage, Status.UPLOADED)
    second = make_job(session, storage, Status.PENDING, student_email="second@example.edu")
    session.expire_all()
    student_actions.cancel_by_student(
        session, storage, first.id, student=Student.by_status_link(first.id),
        expected=page_of(session.get(Job, first.id)), now=now,
    )  # fmt: skip
    student_actions.decline_quote(session, storage, quote_token(session, second.id), now=now)
    period = choose_period(
        "custom", date(2026, 3, 16), "America/Chicago", from_day="2026-03-02", to_day="2026-03-15"
    )
    report = build_report(session, period, Filters(), now=datetime(2026, 3, 16, 12, 0))
    assert report.cancellations.value == 2
    assert report.rejections.value == 0


def test_a_resubmission_links_to_the_rejected_job_of_the_same_student(session, storage):
    rejected = make_job(session, storage, Status.REJECTED)
    again = submit_job(session, storage, SECOND_STL, resubmission_of=rejected.id)
    link = session.get(JobResubmission, again.id)
    assert link is not None and link.earlier_job_id == rejected.id
    assert events_of(session, again.id)[0].details["resubmission_of"] == rejected.id
    # Another address, or a job that wasn't rejected, is no link (the submission still goes ahead).
    stranger = submit_job(
        session, storage, OTHER_MODEL, resubmission_of=rejected.id, student_email="stranger@example.edu"
    )
    assert session.get(JobResubmission, stranger.id) is None
    live = make_job(session, storage, Status.UPLOADED, student_email="live@example.edu")
    third = submit_job(
        session, storage, SECOND_STL, resubmission_of=live.id, student_email="live@example.edu"
    )
    assert session.get(JobResubmission, third.id) is None
