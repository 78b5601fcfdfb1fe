"""Scheduled work: quote expiry, pickup reminders and retention, each idempotent and safe with two workers at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from printlab.clock import utcnow
from printlab.config import SETTINGS
from printlab.db import session_factory, write_transaction
from printlab.domain.statuses import Status
from printlab.models import Event, Job, LabSetting, OutboxMessage
from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.jobs import workflow
from printlab.services.jobs.records import entered_status_at
from printlab.services.lab.actors import Actor
from printlab.services.lab.catalog import encode_setting
from printlab.services.lab.workstations import add_workstation
from printlab.services.upkeep import sweeps

from .factories import actor, make_job


def count_events(session, job_id: str, event_type: str) -> int:  # type: ignore[no-untyped-def]
    session.rollback()  # a fresh snapshot: other sessions may have written meanwhile
    found = session.scalar(
        select(func.count()).select_from(Event).where(Event.job_id == job_id, Event.event_type == event_type)
    )
    session.rollback()
    return found


def emails(session, job_id: str, template: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    session.rollback()
    rows = list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.job_id == job_id, OutboxMessage.template == template)
            .order_by(OutboxMessage.id)
        )
    )
    session.rollback()
    return rows


def days(n: float):  # type: ignore[no-untyped-def]
    return utcnow() + timedelta(days=n)


# -- quote expiry --------------------------------------------------------------------------------


def test_an_expired_quote_is_marked_once_with_one_event_and_one_notice(session, storage):
    job = make_job(session, storage, Status.PENDING)
    assert sweeps.expire_quotes(session, storage, now=days(2.9)) == 0  # 72 h link: not yet
    later = days(3.1)
    assert sweeps.expire_quotes(session, storage, now=later) == 1
    assert sweeps.expire_quotes(session, storage, now=later) == 0
    assert sweeps.run_sweeps(session, storage, now=later + timedelta(hours=1)).expired == 0
    session.expire_all()
    assert session.get(Job, job.id).is_confirmation_expired is True
    assert count_events(session, job.id, "ConfirmationExpired") == 1
    assert len(emails(session, job.id, "quote_expired")) == 1


def test_a_fresh_link_after_expiry_can_expire_again(session, storage):
    job = make_job(session, storage, Status.PENDING)
    assert sweeps.expire_quotes(session, storage, now=days(3.1)) == 1
    workflow.resend_quote(session, storage, job.id, actor=actor(), now=days(3.2))
    assert sweeps.expire_quotes(session, storage, now=days(4)) == 0
    assert sweeps.expire_quotes(session, storage, now=days(6.3)) == 1
    assert count_events(session, job.id, "ConfirmationExpired") == 2


# -- pickup reminders ----------------------------------------------------------------------------


def test_one_reminder_after_n_days_and_a_last_one_before_the_hold_ends(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    assert sweeps.send_pickup_reminders(session, now=days(6.9)) == 0
    assert sweeps.send_pickup_reminders(session, now=days(7.1)) == 1
    assert sweeps.send_pickup_reminders(session, now=days(7.2)) == 0
    assert sweeps.send_pickup_reminders(session, now=days(20)) == 0
    assert sweeps.send_pickup_reminders(session, now=days(27.1)) == 1  # 30-day hold, last 3 days
    assert sweeps.send_pickup_reminders(session, now=days(28)) == 0
    assert sweeps.send_pickup_reminders(session, now=days(31)) == 0  # past the hold: staff's call
    first, last = emails(session, job.id, "pickup_reminder")
    assert (first.context["reminder"], first.context["final"]) == (1, False)
    assert (last.context["reminder"], last.context["final"]) == (2, True)
    completed_at = entered_status_at(session.get(Job, job.id))
    assert first.context["completed_at"] == completed_at.isoformat()


def test_a_worker_that_was_off_for_weeks_sends_only_the_last_reminder(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    assert sweeps.send_pickup_reminders(session, now=days(28)) == 1
    assert sweeps.send_pickup_reminders(session, now=days(28.5)) == 0
    (only,) = emails(session, job.id, "pickup_reminder")
    assert only.context["final"] is True


def test_collected_or_uncompleted_jobs_get_no_reminder(session, storage):
    make_job(session, storage, Status.PAIDPICKEDUP)
    make_job(session, storage, Status.PRINTING, student_email="other@example.edu")
    assert sweeps.send_pickup_reminders(session, now=days(8)) == 0


def test_the_reminder_days_come_from_the_lab_settings(session, storage):
    from printlab.domain.catalog import LabDetails

    with write_transaction(session):
        session.add(
            LabSetting(
                key="lab",
                value=encode_setting(
                    "lab", LabDetails(pickup_reminder_days=2, final_reminder_days_before_hold_ends=0)
                ),
            )
        )
    job = make_job(session, storage, Status.COMPLETED)
    assert sweeps.send_pickup_reminders(session, now=days(2.1)) == 1
    assert sweeps.send_pickup_reminders(session, now=days(29)) == 0  # no last reminder configured
    assert len(emails(session, job.id, "pickup_reminder")) == 1


def test_a_recompleted_job_starts_its_reminders_over(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    assert sweeps.send_pickup_reminders(session, now=days(8)) == 1
    # An admin takes it back to Printing (a reprint), then it is completed again a week later.
    from printlab.services.lab.workstations import CONSOLE

    workflow.override_status(
        session, storage, job.id, actor=actor(workstation=CONSOLE), target=Status.PRINTING, reason="reprint"
    )
    workflow.complete(session, storage, job.id, actor=actor(), now=days(9))
    assert sweeps.send_pickup_reminders(session, now=days(10)) == 0
    assert sweeps.send_pickup_reminders(session, now=days(16.1)) == 1
    assert len(emails(session, job.id, "pickup_reminder")) == 2


def test_two_workers_sweeping_at_once_write_each_reminder_once(session, storage, engine):
    jobs = [make_job(session, storage, Status.COMPLETED, student_email=f"s{i}@example.edu") for i in range(3)]
    sessions = session_factory(engine)
    moment = days(8)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def sweep() -> None:
        with sessions() as own:
            barrier.wait()
            results.append(sweeps.send_pickup_reminders(own, now=moment))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results)[-1] + sorted(results)[0] == 3  # between them, every job once
    for job in jobs:
        assert len(emails(session, job.id, "pickup_reminder")) == 1


# -- retention -----------------------------------------------------------------------------------


def test_retention_previews_then_archives_old_finished_jobs_once(session, storage):
    picked_up = make_job(session, storage, Status.PAIDPICKEDUP)
    rejected = make_job(session, storage, Status.REJECTED, student_email="r@example.edu")
    still_waiting = make_job(session, storage, Status.COMPLETED, student_email="c@example.edu")
    assert sweeps.archive_preview(session, now=days(89)).total == 0
    later = days(91)
    preview = sweeps.archive_preview(session, now=later)
    assert preview.by_status == {"PAIDPICKEDUP": 1, "REJECTED": 1}
    assert sorted(preview.job_ids) == sorted([picked_up.id, rejected.id])
    assert sweeps.archive_due(session, storage, now=later) == 2
    assert sweeps.archive_due(session, storage, now=later) == 0
    assert sweeps.run_sweeps(session, storage, now=later).archived == 0
    session.expire_all()
    for job in (picked_up, rejected):
        archived = session.get(Job, job.id)
        assert archived.status == Status.ARCHIVED
        assert archived.file_path.startswith("Archived/") and (storage.root / archived.file_path).is_file()
        assert count_events(session, job.id, "JobArchived") == 1
        event = session.scalars(
            select(Event).where(Event.job_id == job.id, Event.event_type == "JobArchived")
        ).one()
        assert event.triggered_by is None  # PrintLab itself
    assert session.get(Job, still_waiting.id).status == Status.COMPLETED


def test_retention_counts_from_when_the_job_was_finished_not_submitted(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    workflow.record_pickup(session, storage, job.id, actor=actor(), method="CARD", weighed_g=40, now=days(60))
    assert sweeps.archive_preview(session, now=days(100)).total == 0  # picked up 40 days before
    assert sweeps.archive_preview(session, now=days(151)).job_ids == [job.id]


def test_an_admin_can_run_the_archive_under_their_own_name(session, storage):
    job = make_job(session, storage, Status.REJECTED)
    add_workstation(session, "FrontDesk", "front-desk-password", is_admin=True)
    with pytest.raises(ValidationError):
        sweeps.archive_due(session, storage, actor=Actor(None, "FrontDesk"), now=days(91))
    with pytest.raises(NotAllowed):
        sweeps.archive_due(session, storage, actor=actor(), now=days(91))  # LAB-PC-1 isn't admin
    assert sweeps.archive_due(session, storage, actor=actor(workstation="FrontDesk"), now=days(91)) == 1
    event = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "JobArchived")
    ).one()
    assert (event.triggered_by, event.workstation_id) == ("Alex Rivera", "FrontDesk")


# -- the worker's schedule -----------------------------------------------------------------------


def test_all_sweeps_twice_write_nothing_the_second_time(session, storage):
    make_job(session, storage, Status.PENDING)
    make_job(session, storage, Status.COMPLETED, student_email="c@example.edu")
    make_job(session, storage, Status.PAIDPICKEDUP, student_email="p@example.edu")

    def written() -> tuple[int, int]:
        session.rollback()
        return (
            session.scalar(select(func.count()).select_from(Event)),
            session.scalar(select(func.count()).select_from(OutboxMessage)),
        )

    for moment, expected in ((days(8), (1, 1, 0)), (days(91), (0, 0, 1))):
        first = sweeps.run_sweeps(session, storage, now=moment)
        assert ((first.expired, first.reminders, first.archived), first.errors) == (expected, [])
        before = written()
        second = sweeps.run_sweeps(session, storage, now=moment)
        assert ((second.expired, second.reminders, second.archived), second.errors) == ((0, 0, 0), [])
        assert written() == before


def test_the_sweeper_runs_at_most_once_a_minute(session, storage):
    now = [1000.0]
    sweeper = sweeps.Sweeper(storage, clock=lambda: now[0])
    assert sweeper(session) is not None
    now[0] += 30
    assert sweeper(session) is None
    now[0] += 31
    assert sweeper(session) is not None


def test_a_failing_sweep_does_not_stop_the_others(session, storage, monkeypatch):
    job = make_job(session, storage, Status.PENDING)

    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sweeps, "send_pickup_reminders", broken)
    report = sweeps.run_sweeps(session, storage, now=days(4))
    assert report.expired == 1 and report.errors == ["reminders: RuntimeError: disk on fire"]
    assert count_events(session, job.id, "ConfirmationExpired") == 1


def test_printlab_archive_dry_run_then_for_real(session, storage, lab_env, monkeypatch):
    from printlab.cli import main

    job = make_job(session, storage, Status.REJECTED)
    # The job was rejected just now; the audit trail can't be back-dated, so the command's clock
    # moves 100 days on instead.
    monkeypatch.setattr(sweeps, "utcnow", lambda: days(100))
    env = {s.env: None for s in SETTINGS} | lab_env
    result = CliRunner().invoke(main, ["archive", "--dry-run"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "1 job(s)" in result.output and "1 REJECTED" in result.output
    session.rollback()
    session.expire_all()
    assert session.get(Job, job.id).status == Status.REJECTED
    result = CliRunner().invoke(main, ["archive"], env=env, catch_exceptions=False)
    assert result.exit_code == 0 and "Archived 1 job(s)." in result.output
    session.rollback()
    session.expire_all()
    assert session.get(Job, job.id).status == Status.ARCHIVED


def test_the_quote_expiry_sweep_leaves_a_clean_check(session, storage, lab_env):
    from printlab.cli import main
    from printlab.services.upkeep.findings import check

    job = make_job(session, storage, Status.PENDING)
    version = job.updated_at
    assert check(session, storage).ok
    assert sweeps.run_sweeps(session, storage, now=days(3.1)).expired == 1
    found = check(session, storage)
    assert found.ok, [(i.kind, i.path, i.problem) for i in found.items]
    session.expire_all()
    assert session.get(Job, job.id).updated_at == version  # nobody changed the job: open dialogs stay valid
    assert storage.read_sidecar(session.get(Job, job.id).metadata_path)["is_confirmation_expired"] is True
    result = CliRunner().invoke(
        main, ["check"], env={s.env: None for s in SETTINGS} | lab_env, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
