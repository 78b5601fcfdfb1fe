"""The workflow service: every transition's outcome and every refusal, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from printlab.clock import utcnow
from printlab.domain.statuses import InvalidTransition, Status
from printlab.models import Event, Job, OutboxMessage, Payment
from printlab.services.errors import JobLocked, NotAllowed, StaleJob, ValidationError
from printlab.services.jobs import locks, quote_links, workflow
from printlab.services.jobs.quote_links import ConfirmOutcome
from printlab.services.jobs.status_change import Expected
from printlab.services.lab import staff, workstations
from printlab.services.lab.actors import Actor

from .conftest import SLICED
from .factories import STAFF, WORKSTATION, actor, make_job, make_staff, quote_token

ADMIN_PC = "ADMIN-PC"


def events_of(session, job_id):
    return list(session.scalars(select(Event).where(Event.job_id == job_id).order_by(Event.id)))


def emails_of(session, job_id, template=None):
    query = select(OutboxMessage).where(OutboxMessage.job_id == job_id)
    if template:
        query = query.where(OutboxMessage.template == template)
    return list(session.scalars(query))


def folder_names(storage, folder):
    return sorted(p.name for p in storage.folder_files(folder))


def snapshot(session, storage, job_id):
    """Everything a refused action must leave exactly as it was."""
    session.expire_all()
    job = session.get(Job, job_id)
    files = {f: folder_names(storage, f) for f in ("Uploaded", "Pending", "ReadyToPrint", "Printing")}
    return (
        job.status,
        job.updated_at,
        job.cost_usd,
        len(events_of(session, job_id)),
        len(emails_of(session, job_id)),
        files,
    )


@pytest.fixture
def admin(session):
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, "admin-password-1", is_admin=True)
    return Actor(STAFF, ADMIN_PC)


# -- approve ---------------------------------------------------------------------------------


def test_approve_prices_quotes_moves_and_records(session, storage):
    job = make_job(session, storage)
    seen_version = job.updated_at
    approved = workflow.approve(
        session,
        storage,
        job.id,
        actor=actor(),
        weight_g="42.05",
        time_hours="2.2",
        expected=Expected(Status.UPLOADED, seen_version),
    )
    assert approved.status == "PENDING"
    assert approved.cost_usd == Decimal("4.21")  # 42.05 g × $0.10, half-up
    assert approved.time_hours == 2.5
    assert approved.last_updated_by == STAFF
    assert approved.updated_at > seen_version

    types = [(e.event_type, e.triggered_by, e.workstation_id) for e in events_of(session, job.id)]
    assert types == [
        ("JobCreated", None, None),
        ("StaffApproved", STAFF, WORKSTATION),
        ("StatusChanged", STAFF, WORKSTATION),
    ]
    assert events_of(session, job.id)[1].details["cost_usd"] == "4.21"

    token = quote_token(session, job.id)
    assert approved.confirm_token == quote_links.hash_token(token) != token
    assert len(token) >= 43  # 256 bits, URL-safe
    assert approved.confirm_token_expires - approved.confirmation_last_sent_at == timedelta(hours=72)

    assert folder_names(storage, "Uploaded") == []
    assert approved.file_path.startswith("Pending/") and storage.resolve(approved.file_path).is_file()
    sidecar = storage.read_sidecar(approved.metadata_path)
    assert sidecar["status"] == "PENDING" and sidecar["cost_usd"] == "4.21"
    assert "confirm_token" not in sidecar


def test_minimum_charge_and_resin_rate(session, storage):
    job = make_job(session, storage, print_method="Resin", color="Clear", printer="Formlabs Form 3")
    approved = workflow.approve(session, storage, job.id, actor=actor(), weight_g=10, time_hours=1)
    assert approved.cost_usd == Decimal("3.00")
    other = make_job(session, storage, student_email="someone@example.edu", print_method="Resin",
                     color="Gray", printer="Formlabs Form 3")  # fmt: skip
    assert workflow.approve(
        session, storage, other.id, actor=actor(), weight_g=50, time_hours=1
    ).cost_usd == Decimal("10.00")


def test_approve_picks_a_sliced_file_as_authoritative(session, storage):
    job = make_job(session, storage)
    upload = storage.resolve(job.file_path)
    gcode = upload.with_name(f"{job.display_name}.gcode")
    shutil.copyfile(SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", gcode)
    candidates = workflow.candidate_files(storage, job)
    assert candidates[0] == gcode.name  # the slicer file is recommended first
    assert upload.name in candidates

    approved = workflow.approve(
        session, storage, job.id, actor=actor(), weight_g=21.4, time_hours=2.16, authoritative_file=gcode.name
    )
    assert approved.file_path == f"Pending/{gcode.name}"
    assert sorted(folder_names(storage, "Pending")) == sorted(
        [gcode.name, upload.name, f"{upload.name}.metadata.json"]
    )
    assert folder_names(storage, "Uploaded") == []


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        ({"weight_g": "0", "time_hours": 1}, "weight_g"),
        ({"weight_g": "-5", "time_hours": 1}, "weight_g"),
        ({"weight_g": "lots", "time_hours": 1}, "weight_g"),
        ({"weight_g": "NaN", "time_hours": 1}, "weight_g"),
        ({"weight_g": 10, "time_hours": "0"}, "time_hours"),
        ({"weight_g": 10, "time_hours": "soon"}, "time_hours"),
        ({"weight_g": 10, "time_hours": 1, "material": "Chocolate"}, "material"),
        ({"weight_g": 10, "time_hours": 1, "authoritative_file": "../../etc/passwd"}, "authoritative_file"),
        ({"weight_g": 999999, "time_hours": 1}, "weight_g"),
    ],
)
def test_approve_refuses_bad_input_and_changes_nothing(session, storage, inputs, field):
    job = make_job(session, storage)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError) as caught:
        workflow.approve(session, storage, job.id, actor=actor(), **inputs)
    assert field in caught.value.errors
    assert snapshot(session, storage, job.id) == before


def test_acting_as_must_be_active_staff(session, storage):
    job = make_job(session, storage)
    staff.add_staff(session, "Former Helper")
    staff.set_active(session, "Former Helper", False)
    before = snapshot(session, storage, job.id)
    for who in (
        Actor("Former Helper", WORKSTATION),
        Actor("Nobody Known", WORKSTATION),
        Actor(None, WORKSTATION),
    ):
        with pytest.raises(ValidationError) as caught:
            workflow.approve(session, storage, job.id, actor=who, weight_g=10, time_hours=1)
        assert "acting_as" in caught.value.errors
    assert snapshot(session, storage, job.id) == before


def test_disallowed_moves_are_refused_with_a_clear_message(session, storage):
    job = make_job(session, storage, Status.PENDING)
    before = snapshot(session, storage, job.id)
    with pytest.raises(InvalidTransition, match="Can't approve a job that is Pending"):
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=10, time_hours=1)
    with pytest.raises(InvalidTransition):
        workflow.complete(session, storage, job.id, actor=actor())
    with pytest.raises(InvalidTransition):
        workflow.record_pickup(session, storage, job.id, actor=actor(), method="CASH", weighed_g=5)
    assert snapshot(session, storage, job.id) == before


def test_a_stale_view_is_refused_naming_who_changed_it(session, storage):
    make_staff(session, "Sam Okafor")
    job = make_job(session, storage)
    seen = Expected(Status.UPLOADED, job.updated_at)
    workflow.reject(
        session, storage, job.id, actor=Actor("Sam Okafor", "LAB-PC-2"), reasons=["Walls too thin"]
    )
    before = snapshot(session, storage, job.id)
    with pytest.raises(StaleJob, match="changed by Sam Okafor") as caught:
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=10, time_hours=1, expected=seen)
    assert "Reload" in str(caught.value)
    assert snapshot(session, storage, job.id) == before


def test_same_status_but_newer_version_is_stale_too(session, storage, admin):
    job = make_job(session, storage, Status.PRINTING)
    seen = Expected(Status.PRINTING, job.updated_at)
    workflow.complete(session, storage, job.id, actor=actor())
    workflow.revert(session, storage, job.id, actor=actor(), reason="Clicked the wrong card")
    with pytest.raises(StaleJob):
        workflow.complete(session, storage, job.id, actor=actor(), expected=seen)


# -- dialog locks ----------------------------------------------------------------------------


def test_dialog_lock_blocks_others_until_released_or_expired(session, storage):
    make_staff(session, "Sam Okafor")
    job = make_job(session, storage)
    version = job.updated_at
    sam = Actor("Sam Okafor", "LAB-PC-2")
    until = locks.take(session, job.id, actor=sam)
    session.expire_all()
    assert session.get(Job, job.id).updated_at == version  # an open dialog doesn't make views stale
    with pytest.raises(JobLocked, match="being edited by Sam Okafor"):
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=10, time_hours=1)
    with pytest.raises(JobLocked):
        locks.take(session, job.id, actor=actor())
    assert locks.take(session, job.id, actor=sam) >= until  # extending our own lock
    locks.release(session, job.id, actor=actor())  # not ours: nothing happens
    session.expire_all()
    assert session.get(Job, job.id).locked_by == "Sam Okafor"
    # An expired lock is taken over.
    later = utcnow() + timedelta(minutes=6)
    assert locks.take(session, job.id, actor=actor(), now=later)
    locks.release(session, job.id, actor=actor())
    approved = workflow.approve(session, storage, job.id, actor=sam, weight_g=10, time_hours=1)
    assert approved.locked_by is None


def test_acting_releases_the_actors_lock(session, storage):
    job = make_job(session, storage)
    locks.take(session, job.id, actor=actor())
    approved = workflow.approve(session, storage, job.id, actor=actor(), weight_g=10, time_hours=1)
    assert approved.locked_by is None and approved.locked_until is None


def test_breaking_a_lock_needs_an_admin_and_is_evented(session, storage, admin):
    make_staff(session, "Sam Okafor")
    job = make_job(session, storage)
    locks.take(session, job.id, actor=Actor("Sam Okafor", "LAB-PC-2"))
    with pytest.raises(NotAllowed):
        locks.break_lock(session, storage, job.id, actor=actor(), reason="Sam went home")
    with pytest.raises(ValidationError):
        locks.break_lock(session, storage, job.id, actor=admin, reason=" ")
    locks.break_lock(session, storage, job.id, actor=admin, reason="Sam went home")
    session.expire_all()
    assert session.get(Job, job.id).locked_by is None
    last = events_of(session, job.id)[-1]
    assert last.event_type == "AdminOverride" and last.details["override"] == "break_lock"


# -- reject ----------------------------------------------------------------------------------


def test_reject_keeps_files_in_place_and_emails_reasons(session, storage):
    job = make_job(session, storage)
    rejected = workflow.reject(
        session,
        storage,
        job.id,
        actor=actor(),
        reasons=["Walls too thin", "Walls too thin"],
        other_reason="  Scale it up ",
    )
    assert rejected.status == "REJECTED"
    assert rejected.reject_reasons == {"reasons": ["Walls too thin"], "other": "Scale it up"}
    assert rejected.file_path.startswith("Uploaded/") and storage.resolve(rejected.file_path).is_file()
    assert storage.read_sidecar(rejected.metadata_path)["status"] == "REJECTED"
    assert [e.event_type for e in events_of(session, job.id)][-1] == "StaffRejected"
    assert len(emails_of(session, job.id, "rejected")) == 1


@pytest.mark.parametrize(
    ("reasons", "other"), [([], ""), ([], "   "), (["Made-up reason"], ""), ([], "x" * 2001)]
)
def test_reject_needs_a_real_reason(session, storage, reasons, other):
    job = make_job(session, storage)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError):
        workflow.reject(session, storage, job.id, actor=actor(), reasons=reasons, other_reason=other)
    assert snapshot(session, storage, job.id) == before


# -- the student's confirmation ----------------------------------------------------------------


def test_confirm_link_outcomes(session, storage):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)
    assert workflow.confirm(session, storage, "not-a-real-token").outcome == ConfirmOutcome.INVALID
    assert workflow.confirm(session, storage, "").outcome == ConfirmOutcome.INVALID

    result = workflow.confirm(session, storage, token)
    assert result.outcome == ConfirmOutcome.CONFIRMED
    assert result.job.status == "READYTOPRINT" and result.job.student_confirmed
    confirmed = events_of(session, job.id)[-1]
    assert (confirmed.event_type, confirmed.triggered_by) == ("StudentConfirmed", None)
    assert len(emails_of(session, job.id, "confirmed")) == 1
    assert storage.resolve(result.job.file_path).parent.name == "ReadyToPrint"

    events_before = len(events_of(session, job.id))
    again = workflow.confirm(session, storage, token)
    assert again.outcome == ConfirmOutcome.ALREADY_CONFIRMED and again.job.status == "READYTOPRINT"
    assert len(events_of(session, job.id)) == events_before
    assert len(emails_of(session, job.id, "confirmed")) == 1


def test_expired_link_changes_nothing_and_a_resend_replaces_it(session, storage):
    job = make_job(session, storage, Status.PENDING)
    old = quote_token(session, job.id)
    later = job.confirm_token_expires + timedelta(seconds=1)
    before = snapshot(session, storage, job.id)
    assert workflow.confirm(session, storage, old, now=later).outcome == ConfirmOutcome.EXPIRED
    assert snapshot(session, storage, job.id) == before

    # The student may ask for a fresh link at most once an hour; staff any time.
    with pytest.raises(ValidationError, match="less than an hour"):
        workflow.resend_quote(
            session, storage, job.id, actor=Actor.student(), now=job.confirmation_last_sent_at
        )
    workflow.resend_quote(session, storage, job.id, actor=Actor.student(), now=later)
    new = quote_token(session, job.id)
    assert new != old
    assert workflow.confirm(session, storage, old, now=later).outcome == ConfirmOutcome.INVALID
    assert workflow.confirm(session, storage, new, now=later).outcome == ConfirmOutcome.CONFIRMED


def test_a_token_never_moves_a_job_that_is_not_pending(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)
    workflow.override_status(
        session, storage, job.id, actor=admin, target="UPLOADED", reason="Needs re-slicing"
    )
    assert workflow.confirm(session, storage, token).outcome == ConfirmOutcome.INVALID
    session.expire_all()
    assert session.get(Job, job.id).status == "UPLOADED"


def test_expiry_sweep_is_idempotent(session, storage):
    job = make_job(session, storage, Status.PENDING)
    later = job.confirm_token_expires + timedelta(minutes=1)
    assert workflow.expire_quotes(session, storage, now=later) == 1
    assert workflow.expire_quotes(session, storage, now=later + timedelta(hours=1)) == 0
    session.expire_all()
    refreshed = session.get(Job, job.id)
    assert refreshed.status == "PENDING" and refreshed.is_confirmation_expired
    assert [e.event_type for e in events_of(session, job.id)].count("ConfirmationExpired") == 1
    assert len(emails_of(session, job.id, "quote_expired")) == 1


def test_force_confirm_needs_an_admin_workstation_and_a_reason(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    with pytest.raises(NotAllowed):
        workflow.force_confirm(session, storage, job.id, actor=actor(), reason="Agreed at the desk")
    with pytest.raises(ValidationError):
        workflow.force_confirm(session, storage, job.id, actor=admin, reason="")
    done = workflow.force_confirm(session, storage, job.id, actor=admin, reason="Agreed at the desk")
    assert done.status == "READYTOPRINT" and done.student_confirmed
    last = events_of(session, job.id)[-1]
    assert (last.event_type, last.details["reason"], last.workstation_id) == (
        "AdminOverride",
        "Agreed at the desk",
        ADMIN_PC,
    )
    assert emails_of(session, job.id, "confirmed") == []  # no email unless asked for


# -- printing, pickup, revert, archive ---------------------------------------------------------


def test_start_printing_on_another_printer_of_the_same_method(session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    with pytest.raises(ValidationError):
        workflow.start_printing(session, storage, job.id, actor=actor(), printer="Formlabs Form 3")
    printing = workflow.start_printing(session, storage, job.id, actor=actor(), printer="Prusa XL")
    assert printing.printer == "Prusa XL"
    assert events_of(session, job.id)[-1].details == {
        "from": "READYTOPRINT",
        "to": "PRINTING",
        "printer": "Prusa XL",
        "requested": "Prusa MK4S",
    }


def test_print_failed_goes_back_to_ready_without_a_new_quote(session, storage):
    job = make_job(session, storage, Status.PRINTING)
    quotes = len(emails_of(session, job.id, "quote"))
    with pytest.raises(ValidationError):
        workflow.print_failed(session, storage, job.id, actor=actor(), reason="")
    back = workflow.print_failed(session, storage, job.id, actor=actor(), reason="Spaghetti at layer 40")
    assert back.status == "READYTOPRINT" and back.cost_usd == job.cost_usd
    assert events_of(session, job.id)[-1].event_type == "PrintFailed"
    assert len(emails_of(session, job.id, "quote")) == quotes
    assert folder_names(storage, "Printing") == []


def test_complete_emails_ready_for_pickup(session, storage):
    job = make_job(session, storage, Status.PRINTING)
    workflow.complete(session, storage, job.id, actor=actor())
    assert len(emails_of(session, job.id, "ready_for_pickup")) == 1


def test_pickup_charges_the_weighed_grams_or_keeps_the_quote(session, storage):
    job = make_job(session, storage, Status.COMPLETED)  # quoted 42 g → $4.20
    with pytest.raises(ValidationError) as caught:
        workflow.record_pickup(session, storage, job.id, actor=actor())
    assert "weighed_g" in caught.value.errors
    done = workflow.record_pickup(
        session,
        storage,
        job.id,
        actor=actor(),
        method="CARD",
        weighed_g="45.55",
        payment_reference="CARD-77",
        picked_up_by="Roommate",
    )
    assert done.status == "PAIDPICKEDUP"
    payment = session.scalars(select(Payment).where(Payment.job_id == job.id)).one()
    assert (payment.charged_usd, payment.quoted_usd, payment.picked_up_by) == (
        Decimal("4.56"),
        Decimal("4.20"),
        "Roommate",
    )
    details = events_of(session, job.id)[-1].details
    assert details["payment"]["charged_usd"] == "4.56"
    assert "Roommate" not in str(details)
    assert len(emails_of(session, job.id, "payment_receipt")) == 1

    other = make_job(session, storage, Status.COMPLETED, student_email="kept@example.edu")
    workflow.record_pickup(
        session, storage, other.id, actor=actor(), method="CAMPUS_CARD", weighed_g=80, keep_quote=True
    )
    kept = session.scalars(select(Payment).where(Payment.job_id == other.id)).one()
    assert kept.charged_usd == Decimal("4.20") and kept.kept_quote
    assert kept.picked_up_by == "Jane Doe"  # defaults to the student


def test_revert_within_24_hours_reverses_the_payment_with_a_new_row(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    back = workflow.revert(session, storage, job.id, actor=actor(), reason="Wrong job scanned")
    assert back.status == "COMPLETED"
    charge, reversal = session.scalars(select(Payment).where(Payment.job_id == job.id).order_by(Payment.id))
    assert (charge.kind, reversal.kind) == ("CHARGE", "REVERSAL")
    assert reversal.charged_usd == -charge.charged_usd and reversal.refund_of == charge.id
    assert reversal.reason == "Wrong job scanned" and reversal.recorded_by == actor().staff
    assert storage.resolve(back.file_path).parent.name == "Completed"
    back_again = workflow.revert(session, storage, job.id, actor=actor(), reason="Not finished either")
    assert back_again.status == "PRINTING"
    with pytest.raises(InvalidTransition):
        workflow.revert(session, storage, job.id, actor=actor(), reason="One more")


def test_revert_after_24_hours_is_refused(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    before = snapshot(session, storage, job.id)
    with pytest.raises(ValidationError, match="24 hours"):
        workflow.revert(
            session, storage, job.id, actor=actor(), reason="Too late", now=utcnow() + timedelta(hours=25)
        )
    assert snapshot(session, storage, job.id) == before


def test_archive_by_the_retention_sweep_or_an_admin(session, storage, admin):
    rejected = make_job(session, storage, Status.REJECTED)
    archived = workflow.archive(session, storage, rejected.id, actor=Actor.system())
    assert archived.status == "ARCHIVED" and archived.file_path.startswith("Archived/")
    assert events_of(session, rejected.id)[-1].event_type == "JobArchived"
    assert folder_names(storage, "Uploaded") == []

    picked = make_job(session, storage, Status.PAIDPICKEDUP, student_email="b@example.edu")
    with pytest.raises(NotAllowed):
        workflow.archive(session, storage, picked.id, actor=actor())
    assert workflow.archive(session, storage, picked.id, actor=admin).status == "ARCHIVED"

    active = make_job(session, storage, Status.PRINTING, student_email="c@example.edu")
    with pytest.raises(InvalidTransition):
        workflow.archive(session, storage, active.id, actor=Actor.system())


def test_admin_override_moves_anywhere_with_a_reason(session, storage, admin):
    job = make_job(session, storage, Status.COMPLETED)
    with pytest.raises(NotAllowed):
        workflow.override_status(session, storage, job.id, actor=actor(), target="UPLOADED", reason="x")
    with pytest.raises(ValidationError):
        workflow.override_status(session, storage, job.id, actor=admin, target="SOMEWHERE", reason="x")
    with pytest.raises(ValidationError):
        workflow.override_status(session, storage, job.id, actor=admin, target="COMPLETED", reason="x")
    moved = workflow.override_status(
        session,
        storage,
        job.id,
        actor=admin,
        target="PENDING",
        reason="Student wants a new quote",
        send_email=True,
    )
    assert moved.status == "PENDING" and not moved.student_confirmed
    assert storage.resolve(moved.file_path).parent.name == "Pending"
    event = events_of(session, job.id)[-1]
    assert (event.event_type, event.details["from"], event.details["to"]) == (
        "AdminOverride",
        "COMPLETED",
        "PENDING",
    )
    token = quote_token(session, job.id)
    assert workflow.confirm(session, storage, token).outcome == ConfirmOutcome.CONFIRMED


def test_the_workflow_is_the_only_code_that_assigns_status():
    """A guard for review: nothing outside the status-change engine (services/jobs/status_change.py) and submissions.py sets a job's status."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "printlab"
    jobs = root / "services" / "jobs"
    allowed = {jobs / "status_change.py", jobs / "submissions.py"}
    offenders = []
    for path in root.rglob("*.py"):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and isinstance(target.value, ast.Name)
                    and "job" in target.value.id.lower()
                ):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}")
            if isinstance(node, ast.keyword) and node.arg == "status" and "update(Job)" in ast.unparse(node):
                offenders.append(f"{path.relative_to(root)}:{node.value.lineno}")
    assert offenders == []


def test_event_count_is_one_per_action(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    counts = dict(
        session.execute(
            select(Event.event_type, func.count()).where(Event.job_id == job.id).group_by(Event.event_type)
        ).all()
    )
    assert counts == {
        "JobCreated": 1,
        "StaffApproved": 1,
        "StatusChanged": 4,  # approve, start, complete, pickup
        "StudentConfirmed": 1,
    }


def test_a_broken_lock_makes_the_old_dialog_stale(session, storage, admin):
    make_staff(session, "Sam Okafor")
    job = make_job(session, storage)
    sam = Actor("Sam Okafor", "LAB-PC-2")
    seen = Expected(Status.UPLOADED, job.updated_at)  # what Sam's open dialog holds
    locks.take(session, job.id, actor=sam)
    locks.break_lock(session, storage, job.id, actor=admin, reason="Sam went home")
    locks.take(session, job.id, actor=sam)  # the dialog's heartbeat takes the lock back...
    with pytest.raises(StaleJob):  # ...but its submit is refused: the job moved on
        workflow.approve(session, storage, job.id, actor=sam, weight_g=10, time_hours=1, expected=seen)
