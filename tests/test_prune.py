"""Pruning archived jobs: files gone, the student's personal data gone, the job's record kept."""

from __future__ import annotations

import uuid
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select

from printlab.cli import main
from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Event, Job, OutboxMessage, Payment
from printlab.services.jobs import workflow
from printlab.services.lab.actors import Actor
from printlab.services.lab.catalog import load_catalog
from printlab.services.upkeep import prune, sweeps

from .factories import make_job


def archived_job(session, storage, days_ago: int, **overrides):
    job = make_job(session, storage, Status.PAIDPICKEDUP, **overrides)
    workflow.archive(session, storage, job.id, actor=Actor.system(), now=utcnow() - timedelta(days=days_ago))
    session.expire_all()
    return session.get(Job, job.id)


def test_prune_removes_files_and_personal_data_but_keeps_the_record(session, storage):
    old = archived_job(session, storage, 400)
    recent = archived_job(session, storage, 100, student_email="recent@example.edu")
    old_files = [storage.resolve(old.file_path), storage.resolve(old.metadata_path)]
    events_before = len(session.scalars(select(Event).where(Event.job_id == old.id)).all())

    due = prune.plan(session)
    assert due.job_ids == [old.id]
    assert prune.prune(session, storage) == 1
    assert prune.prune(session, storage) == 0  # nothing left to do the second time

    session.expire_all()
    pruned = session.get(Job, old.id)
    assert (pruned.student_name, pruned.student_email, pruned.file_path) == ("(removed)", None, None)
    assert "Jane" not in (pruned.display_name or "") and "Jane" not in (pruned.original_filename or "")
    assert pruned.cost_usd is not None and pruned.status == "ARCHIVED"
    assert not any(path.exists() for path in old_files)
    assert session.scalars(select(Payment.picked_up_by).where(Payment.job_id == old.id)).all() == [None]
    assert set(session.scalars(select(OutboxMessage.recipient).where(OutboxMessage.job_id == old.id))) == {
        "(removed)"
    }
    events = session.scalars(select(Event).where(Event.job_id == old.id).order_by(Event.id)).all()
    assert len(events) == events_before + 1 and events[-1].event_type == "FileDeleted"

    kept = session.get(Job, recent.id)
    assert kept.student_email == "recent@example.edu" and storage.resolve(kept.file_path).exists()


def test_prune_command_previews_then_prunes(session, storage, lab_env):
    archived_job(session, storage, 500)
    runner = CliRunner()
    preview = runner.invoke(main, ["prune", "--dry-run"], env=lab_env)
    assert preview.exit_code == 0 and preview.output.startswith("1 archived job(s)")
    session.rollback()
    assert session.scalar(select(Job.student_email)) is not None
    done = runner.invoke(main, ["prune"], env=lab_env)
    assert done.exit_code == 0 and "Pruned 1 job(s)" in done.output
    session.rollback()
    assert session.scalar(select(Job.student_email)) is None


def test_retention_page_previews_and_prunes(session, storage, lab_env):
    from printlab import config as config_module
    from printlab.services.lab import workstations
    from printlab.web.app import create_app

    archived_job(session, storage, 400)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    workstations.add_workstation(session, "ADMIN-PC", "a-long-password-1", is_admin=True)
    client = app.test_client()
    client.post("/login", data={"workstation": "ADMIN-PC", "password": "a-long-password-1"})
    page = client.get("/admin/retention").data.decode()
    assert '<dd id="prune-total"><strong>1</strong>' in page
    stale = client.post("/admin/retention/prune", data={"acting_as": "Alex Rivera", "expected_total": "2"})
    assert stale.status_code == 303
    session.rollback()
    assert session.scalar(select(Job.student_email)) is not None  # the count changed: nothing done
    client.post("/admin/retention/prune", data={"acting_as": "Alex Rivera", "expected_total": "1"})
    session.rollback()
    assert session.scalar(select(Job.student_email)) is None
    event = session.scalars(select(Event).order_by(Event.id.desc())).first()
    assert (event.event_type, event.triggered_by, event.workstation_id) == (
        "FileDeleted",
        "Alex Rivera",
        "ADMIN-PC",
    )
    app.extensions["printlab"].engine.dispose()


def _admin(session):  # type: ignore[no-untyped-def]
    from printlab.services.lab import workstations

    from .factories import STAFF, make_staff

    make_staff(session)
    workstations.add_workstation(session, "ADMIN-PC", "a-long-password-1", is_admin=True)
    return Actor(STAFF, "ADMIN-PC")


def test_a_job_archived_through_the_admin_override_is_pruned_too(session, storage):
    admin = _admin(session)
    job = make_job(session, storage, Status.COMPLETED)
    archived_at = utcnow() - timedelta(days=400)
    workflow.override_status(
        session, storage, job.id, actor=admin, target=Status.ARCHIVED, reason="Student left", now=archived_at
    )
    # The audit trail says it was archived, by an override, by whom and why.
    session.expire_all()
    archived = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "JobArchived")
    ).one()
    assert (archived.triggered_by, archived.workstation_id) == (admin.staff, admin.workstation)
    assert archived.details["override"] == "change_status" and archived.details["reason"] == "Student left"
    assert (archived.details["from"], archived.details["to"]) == ("COMPLETED", "ARCHIVED")

    assert prune.plan(session).job_ids == [job.id]
    assert prune.prune(session, storage) == 1
    session.expire_all()
    pruned = session.get(Job, job.id)
    assert (pruned.student_name, pruned.student_email, pruned.file_path) == ("(removed)", None, None)


def test_pruning_goes_by_when_the_job_was_archived_whichever_way(session, storage):
    admin = _admin(session)
    start = utcnow()
    later = start + timedelta(days=91 + load_catalog(session).prune_after_days + 1)  # when prune runs

    def at(days: float):  # type: ignore[no-untyped-def]
        return start + timedelta(days=days)

    # The retention sweep archives a collected job once its 90 days are up.
    swept = make_job(session, storage, Status.PAIDPICKEDUP, student_email="swept@example.edu")
    assert sweeps.archive_due(session, storage, now=at(91)) == 1
    overridden = make_job(session, storage, Status.PAIDPICKEDUP, student_email="override@example.edu")
    workflow.override_status(
        session, storage, overridden.id, actor=admin, target=Status.ARCHIVED, reason="Tidy up", now=at(1)
    )
    recent = make_job(session, storage, Status.REJECTED, student_email="recent@example.edu")
    workflow.override_status(
        session, storage, recent.id, actor=admin, target=Status.ARCHIVED, reason="Tidy up",
        now=later - timedelta(days=10),
    )  # fmt: skip
    # Archived long ago, brought back by an override and archived again recently: not due yet.
    back = make_job(session, storage, Status.REJECTED, student_email="back@example.edu")
    workflow.override_status(
        session, storage, back.id, actor=admin, target=Status.ARCHIVED, reason="Tidy up", now=at(2)
    )
    workflow.override_status(
        session, storage, back.id, actor=admin, target=Status.REJECTED, reason="Mistake",
        now=later - timedelta(days=20),
    )  # fmt: skip
    workflow.archive(session, storage, back.id, actor=Actor.system(), now=later - timedelta(days=15))
    # A row rebuilt from its sidecar (`printlab check --repair` after a lost database) has no events
    # at all, but its status and version come back with it.
    source = session.get(Job, swept.id)
    values = {c.key: getattr(source, c.key) for c in Job.__table__.columns}
    rebuilt = Job(
        **values
        | {
            "id": uuid.uuid4().hex,
            "display_name": "JaneDoe_Filament_TrueRed_abcdef",
            "student_email": "rebuilt@example.edu",
            "confirm_token": None,  # never in a sidecar
            "file_path": None,
            "metadata_path": None,
            "updated_at": at(3),  # the version the sidecar kept
        }
    )
    session.add(rebuilt)
    session.commit()
    assert session.scalars(select(Event).where(Event.job_id == rebuilt.id)).all() == []

    assert set(prune.plan(session, now=later).job_ids) == {swept.id, overridden.id, rebuilt.id}
    assert prune.prune(session, storage, now=later) == 3
    session.expire_all()
    emails = {session.get(Job, j.id).student_email for j in (swept, overridden, recent, back, rebuilt)}
    assert emails == {None, "recent@example.edu", "back@example.edu"}
