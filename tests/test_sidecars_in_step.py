"""Routine use keeps every job's sidecar in step with its row: a lab day run through the services leaves the integrity check with nothing to report, on both databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.services import mail
from printlab.services.jobs import job_desk, locks, resend, workflow
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor
from printlab.services.mail.render import Links
from printlab.services.mail.transport import FolderTransport
from printlab.services.upkeep.findings import check

from .factories import STAFF, actor, make_job, quote_token

ADMIN_PC = "FRONT-DESK"


def _deliver(session, tmp_path: Path, now=None) -> None:  # type: ignore[no-untyped-def]
    mailer = mail.Mailer(
        transport=FolderTransport(tmp_path / "mail"),
        links=Links("http://printlab.test", "x" * 32),
        mail_from=None,
        identity="test:1:mail",
    )
    mail.deliver_due(session, mailer, now=now)


def test_a_routine_day_leaves_nothing_for_the_integrity_page(session, storage, tmp_path):
    new = make_job(session, storage, Status.UPLOADED)
    quoted = make_job(session, storage, Status.PENDING, student_email="b@example.edu")
    waiting = make_job(session, storage, Status.PENDING, student_email="c@example.edu")
    done = make_job(session, storage, Status.COMPLETED, student_email="d@example.edu")
    workstations.add_workstation(session, ADMIN_PC, "admin-password-1", is_admin=True)
    admin = Actor(STAFF, ADMIN_PC)
    _deliver(session, tmp_path)

    # Morning: staff open the new jobs (NEW goes), mark one reviewed and back, write notes.
    job_desk.note_opened(session, storage, new.id)
    job_desk.note_opened(session, storage, quoted.id)
    job_desk.mark_reviewed(session, storage, new.id, False, actor=actor())
    job_desk.mark_reviewed(session, storage, new.id, True, actor=actor())
    job_desk.update_notes(session, storage, new.id, "Thin walls; print with a brim", actor=actor())
    # An approval dialog opened and cancelled; another left open and its lock broken by an admin.
    locks.take(session, new.id, actor=actor())
    locks.release(session, new.id, actor=actor())
    locks.take(session, done.id, actor=actor())
    locks.break_lock(session, storage, done.id, actor=admin, reason="Sam went home")
    # The quote resent by staff (twice: from the list and by name) and asked for again by a student.
    workflow.resend_quote(session, storage, quoted.id, actor=actor())
    resend.resend(session, storage, quoted.id, "quote", staff=STAFF, workstation="LAB-PC-1")
    later = utcnow() + timedelta(days=8)
    workflow.expire_quotes(session, storage, now=later)
    workflow.resend_quote(session, storage, waiting.id, actor=Actor.student(), now=later)
    resend.resend(session, storage, done.id, "ready_for_pickup", staff=STAFF)
    # Afternoon: an approval, the student's confirmation, a pickup with its payment, emails sent.
    workflow.approve(session, storage, new.id, actor=actor(), weight_g=30, time_hours=1.5)
    workflow.confirm(session, storage, quote_token(session, new.id))
    workflow.record_pickup(
        session, storage, done.id, actor=actor(), method="CARD", weighed_g=38, payment_reference="R-9"
    )
    job_desk.update_notes(session, storage, done.id, "Paid at the desk", actor=actor())
    _deliver(session, tmp_path, now=later)

    findings = check(session, storage)
    assert [(item.path, item.problem) for item in findings.items] == []
