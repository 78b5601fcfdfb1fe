"""Outbox delivery to a real SMTP server on loopback, on both databases: content, retries, failures, crashes, stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Event, Job, OutboxMessage, OutboxStatus
from printlab.services import mail
from printlab.services.jobs import quote_links, refunds, resend, student_actions, workflow
from printlab.services.jobs.references import read_reference
from printlab.services.lab.actors import Student
from printlab.services.mail import outbox
from printlab.services.mail.render import Links
from printlab.services.mail.transport import SmtpTransport
from printlab.services.upkeep import sweeps

from .factories import actor, make_job, make_staff, submit_job
from .mail_server import Received, SmtpServer

SECRET = "test-secret-key-that-is-long-enough-0123456789"  # lab_env's
BASE = "http://printlab.test"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailer(smtp: SmtpServer) -> mail.Mailer:
    return mail.Mailer(
        transport=SmtpTransport(smtp.settings()),
        links=Links(BASE, SECRET),
        mail_from=None,
        identity="test-host:1:mail-a",
    )


def outbox_rows(session, job_id=None) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    session.rollback()  # a fresh snapshot: the delivery wrote in its own transactions
    session.expire_all()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if job_id is not None:
        query = query.where(OutboxMessage.job_id == job_id)
    rows = list(session.scalars(query))
    session.rollback()
    return rows


def sent_events(session, job_id=None) -> list[Event]:  # type: ignore[no-untyped-def]
    session.rollback()
    query = select(Event).where(Event.event_type == "EmailSent").order_by(Event.id)
    if job_id is not None:
        query = query.where(Event.job_id == job_id)
    events = list(session.scalars(query))
    session.rollback()
    return events


def confirm_token(received: Received) -> str:
    line = next(line for line in received.text.splitlines() if "/confirm/" in line)
    return line.strip().rsplit("/confirm/", 1)[1]


# -- every message, as the student gets it ------------------------------------------------------


def test_every_message_reaches_the_student_with_working_links(session, storage, smtp, mailer, client):
    make_staff(session)
    who = actor()
    later = utcnow() + timedelta(days=8)

    printed = submit_job(session, storage)
    assert mail.deliver_due(session, mailer).sent == 1  # receipt
    workflow.approve(session, storage, printed.id, actor=who, weight_g=42, time_hours=2.2)
    mail.deliver_due(session, mailer)  # quote
    token = confirm_token(smtp.inbox.messages()[-1])
    assert workflow.confirm(session, storage, token).outcome == quote_links.ConfirmOutcome.CONFIRMED
    workflow.start_printing(session, storage, printed.id, actor=who)
    workflow.complete(session, storage, printed.id, actor=who)
    mail.deliver_due(session, mailer)  # confirmed, ready for pickup
    assert sweeps.send_pickup_reminders(session, now=later) == 1
    mail.deliver_due(session, mailer, now=later)  # pickup reminder
    workflow.record_pickup(
        session, storage, printed.id, actor=who, method="CARD", weighed_g=40, payment_reference="R-1"
    )
    mail.deliver_due(session, mailer, now=later)  # payment receipt
    refunds.refund_or_correct(
        session, storage, printed.id, actor=who, kind="REFUND", amount_usd="1.00", method="CASH",
        reason="A support broke off",
    )  # fmt: skip
    mail.deliver_due(session, mailer, now=later)  # refund receipt

    rejected = submit_job(session, storage, student_name="Sam Lee", student_email="sam.lee@example.edu")
    workflow.reject(
        session, storage, rejected.id, actor=who, reasons=["Walls too thin"], other_reason="Too thin"
    )
    expired = make_job(
        session, storage, Status.PENDING, student_name="Ana Ruiz", student_email="ana@example.edu"
    )
    assert sweeps.expire_quotes(session, storage, now=utcnow() + timedelta(hours=73)) == 1
    mail.deliver_due(session, mailer, now=later)
    # The student's own cancellation, and a "needs changes" request nobody answered (issue 13).
    withdrawn = make_job(session, storage, student_name="Kim Park", student_email="kim@example.edu")
    student_actions.cancel_by_student(
        session, storage, withdrawn.id, student=Student.by_status_link(withdrawn.id), expected=None
    )
    unanswered = make_job(session, storage, student_name="Lu Chen", student_email="lu@example.edu")
    student_actions.request_changes(session, storage, unanswered.id, actor=who, reasons=["Walls too thin"])
    mail.deliver_due(session, mailer, now=later)
    run_out = utcnow() + timedelta(days=15)
    assert student_actions.reject_unanswered(session, storage, now=run_out) == 1
    mail.deliver_due(session, mailer, now=run_out)

    received = smtp.inbox.messages()
    by_template = {r.message["X-PrintLab-Template"]: r for r in received}
    assert set(by_template) == set(outbox.TEMPLATES)  # every one
    rows = {row.message_id: row for row in outbox_rows(session)}
    jobs = {
        printed.id: "Jane",
        rejected.id: "Sam",
        expired.id: "Ana",
        withdrawn.id: "Kim",
        unanswered.id: "Lu",
    }
    for message in received:
        row = rows[message.message_id]  # the Message-ID fixed on the row is the one the server got
        assert row.status == OutboxStatus.SENT and row.sent_at is not None
        assert message.recipients == (row.recipient,)
        assert message.message["From"] == "Makerspace 3D Print Lab <makerspace@example.edu>"
        assert message.message["Reply-To"] == "makerspace@example.edu"
        simple_id = row.job_id[:6]
        assert simple_id in message.message["Subject"] and simple_id in message.text
        assert f"Hi {jobs[row.job_id]}," in message.text
        for needed in ("Makerspace 3D Print Lab", "Front desk, Makerspace", "makerspace@example.edu"):
            assert needed in message.text and needed in message.html
        status_path = next(w for w in message.text.split() if w.startswith(f"{BASE}/status/"))
        assert read_reference(SECRET, status_path.rsplit("/", 1)[1]) == row.job_id
        page = client.get(status_path.removeprefix(BASE))
        assert page.status_code == 200 and simple_id in page.get_data(as_text=True)

    assert "Walls too thin" in by_template["rejected"].text and "Too thin" in by_template["rejected"].text
    assert "$4.00" in by_template["payment_receipt"].text  # 40 g weighed at $0.10/g, over the minimum
    assert "Paid by:    Card terminal" in by_template["payment_receipt"].text
    refund = by_template["payment_refund"]
    assert "We have refunded $1.00" in refund.text and "You paid:   $3.00 in all" in refund.text
    assert "Why: A support broke off" in refund.text and "Refund: $1.00" in refund.message["Subject"]
    assert "fresh link" in by_template["quote_expired"].text
    assert f"{BASE}/replace/" in by_template["changes_needed"].text
    assert "You cancelled your 3D print request" in by_template["withdrawn"].text
    assert "We haven't received one" in by_template["changes_expired"].text
    quote = by_template["quote"]
    assert f"{BASE}/confirm/{token}" in quote.text and f'href="{BASE}/confirm/{token}"' in quote.html

    # One EmailSent per delivered message: what and which job, never the address.
    events = sent_events(session)
    assert sorted(e.details["message_id"] for e in events) == sorted(r.message_id for r in received)
    for event in events:
        assert event.details["template"] == rows[event.details["message_id"]].template
        assert event.job_id == rows[event.details["message_id"]].job_id
        assert "@example.edu" not in json.dumps(event.details)
        assert event.triggered_by is None
    # Only the token's hash is kept once the quote is out.
    quotes = [row for row in rows.values() if row.template == "quote"]
    assert quotes and all("token" not in (row.context or {}) for row in quotes)
    assert all(row.context and row.context.get("expires_at") for row in quotes)


# -- the server down, a recipient refused --------------------------------------------------------


def test_the_server_down_for_a_while_then_up_delivers_every_message_exactly_once(
    session, storage, smtp, mailer
):
    jobs = [submit_job(session, storage, student_email=f"student{i}@example.edu") for i in range(5)]
    smtp.stop()
    start = utcnow()
    report = mail.deliver_due(session, mailer, now=start)
    assert (report.sent, report.retrying) == (0, 5)
    rows = outbox_rows(session)
    assert {(r.status, r.attempts) for r in rows} == {(OutboxStatus.PENDING, 1)}
    assert all("unreachable" in (r.last_error or "") for r in rows)
    assert all(r.next_attempt_at == start + mail.BACKOFF[0] for r in rows)

    assert mail.deliver_due(session, mailer, now=start + timedelta(seconds=10)).handled == 0  # backing off
    report = mail.deliver_due(session, mailer, now=start + timedelta(seconds=31))  # still down
    assert report.retrying == 5
    smtp.start()
    moment = start + timedelta(seconds=31) + mail.BACKOFF[1]
    assert mail.deliver_due(session, mailer, now=moment).sent == 5
    assert mail.deliver_due(session, mailer, now=moment + timedelta(days=1)).handled == 0

    counts = smtp.inbox.count_by_message_id()
    assert len(counts) == 5 and set(counts.values()) == {1}
    assert {r.recipients[0] for r in smtp.inbox.messages()} == {j.student_email for j in jobs}
    assert len(sent_events(session)) == 5
    assert {(r.status, r.attempts, r.last_error) for r in outbox_rows(session)} == {
        (OutboxStatus.SENT, 3, None)
    }


def test_temporary_failures_back_off_then_end_failed(session, storage, smtp, mailer):
    job = submit_job(session, storage, student_email="busy@example.edu")
    smtp.inbox.defer.add("busy@example.edu")
    moment = utcnow()
    for attempt, wait in enumerate(mail.BACKOFF, start=1):
        assert mail.deliver_due(session, mailer, now=moment).retrying == 1
        (row,) = outbox_rows(session, job.id)
        assert (row.status, row.attempts, row.next_attempt_at) == (
            OutboxStatus.PENDING,
            attempt,
            moment + wait,
        )
        assert "451" in row.last_error
        moment = row.next_attempt_at
    assert mail.deliver_due(session, mailer, now=moment).failed == 1
    (row,) = outbox_rows(session, job.id)
    assert row.status == OutboxStatus.FAILED and row.attempts == len(mail.BACKOFF) + 1
    assert mail.deliver_due(session, mailer, now=moment + timedelta(days=30)).handled == 0
    assert smtp.inbox.messages() == []


def test_a_refused_recipient_is_failed_at_once_visible_and_retryable(session, storage, smtp, mailer):
    make_staff(session)
    job = submit_job(session, storage, student_email="gone@example.edu")
    smtp.inbox.refuse.add("gone@example.edu")
    assert mail.deliver_due(session, mailer).failed == 1  # a 550 won't change by waiting
    (row,) = outbox_rows(session, job.id)
    assert row.status == OutboxStatus.FAILED and "550" in row.last_error and row.attempts == 1
    assert [m.id for m in mail.failed_for_job(session, job.id)] == [row.id]
    assert mail.backlog(session).failed == 1

    with pytest.raises(mail.delivery.ValidationError):
        mail.retry(session, row.id, staff="Nobody Here")  # attributed to active staff, or refused
    mail.retry(session, row.id, staff="Alex Rivera")
    (row,) = outbox_rows(session, job.id)
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    with pytest.raises(mail.delivery.ValidationError, match="Only a failed email"):
        mail.retry(session, row.id, staff="Alex Rivera")

    smtp.inbox.refuse.clear()  # the address was fixed at the mail server
    assert mail.deliver_due(session, mailer).sent == 1
    (event,) = sent_events(session, job.id)
    assert event.details["retried_by"] == "Alex Rivera"
    assert mail.failed_for_job(session, job.id) == []
    assert len(smtp.inbox.messages()) == 1


# -- no waiting, no double sending -----------------------------------------------------------------


def test_a_staff_action_never_waits_for_a_slow_mail_server(session, storage, smtp, mailer, engine):
    from printlab.db import session_factory

    job = submit_job(session, storage)
    make_staff(session)
    smtp.inbox.hold = threading.Event()  # the server keeps the message but doesn't answer
    worker_session = session_factory(engine)()
    delivery = threading.Thread(target=mail.deliver_due, args=(worker_session, mailer))
    delivery.start()
    try:
        assert smtp.inbox.holding.wait(10)
        started = time.monotonic()
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=30, time_hours=1)
        assert time.monotonic() - started < 3  # no database lock is held while sending
    finally:
        smtp.inbox.hold.set()
        delivery.join(20)
        worker_session.close()
    session.expire_all()
    assert session.get(Job, job.id).status == Status.PENDING


def test_a_crash_after_the_server_accepted_resends_once_with_the_same_message_id(
    session, storage, smtp, lab_env, tmp_path: Path
):
    job = submit_job(session, storage)
    env = {**os.environ, **lab_env, **smtp.env()}
    printlab = Path(sys.executable).with_name("printlab")
    child = subprocess.Popen(
        [str(printlab), "mail", "send"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    smtp.inbox.kill_pid = child.pid  # killed by the server after it has the message, before "250"
    child.communicate(timeout=60)
    assert child.returncode == -9
    assert len(smtp.inbox.wait_for(1)) == 1

    (row,) = outbox_rows(session, job.id)
    assert row.status == OutboxStatus.PENDING and row.sending_at is not None and row.attempts == 1
    mailer = mail.Mailer(
        transport=SmtpTransport(smtp.settings()),
        links=Links(BASE, SECRET),
        mail_from=None,
        identity="survivor",
    )
    assert mail.deliver_due(session, mailer).handled == 0  # the lease holds: no instant double send
    assert mail.deliver_due(session, mailer, now=utcnow() + mail.LEASE + timedelta(seconds=1)).sent == 1

    first_copy, second_copy = smtp.inbox.messages()
    assert first_copy.message_id == second_copy.message_id == row.message_id  # recognisably the same
    (event,) = sent_events(session, job.id)  # and one EmailSent, flagged
    assert event.details["possible_duplicate"] is True and event.details["attempt"] == 2
    (row,) = outbox_rows(session, job.id)
    assert row.status == OutboxStatus.SENT and row.sending_at is None


def test_a_stopping_worker_hands_back_what_it_claimed_but_did_not_start(session, storage, smtp, mailer):
    for i in range(4):
        submit_job(session, storage, student_email=f"s{i}@example.edu")
    calls = iter([False, False, True])  # stop after the first message
    report = mail.deliver_due(session, mailer, should_stop=lambda: next(calls, True))
    assert report.sent == 1
    rows = outbox_rows(session)
    assert [r.status for r in rows].count(OutboxStatus.SENT) == 1
    waiting = [r for r in rows if r.status == OutboxStatus.PENDING]
    assert len(waiting) == 3 and all(r.attempts == 0 and r.claimed_by is None for r in waiting)
    assert all(r.next_attempt_at <= utcnow() for r in waiting)  # due again at once, for any worker
    assert mail.deliver_due(session, mailer).sent == 3
    assert set(smtp.inbox.count_by_message_id().values()) == {1}


def test_a_claimed_message_is_not_handed_to_a_second_worker(session, storage, smtp, mailer):
    submit_job(session, storage)
    other = mail.Mailer(mailer.transport, mailer.links, None, identity="test-host:2:mail-b")
    assert len(mail.claim(session, other, now=utcnow())) == 1
    assert mail.deliver_due(session, mailer).handled == 0
    assert mail.claim(session, mailer, now=utcnow()) == []
    # After the lease the first worker is presumed dead and the message goes out, once.
    assert mail.deliver_due(session, mailer, now=utcnow() + mail.LEASE + timedelta(seconds=1)).sent == 1
    assert mail.deliver_due(session, other).handled == 0
    assert len(smtp.inbox.messages()) == 1


# -- messages that no longer apply, resending ------------------------------------------------------


def test_a_replaced_quote_link_is_never_sent(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.PENDING)
    resend.resend(session, storage, job.id, "quote", staff="Alex Rivera")  # before the first one went out
    report = mail.deliver_due(session, mailer)
    assert (report.sent, report.cancelled) == (2, 1)  # receipt and the new quote
    old, new = [r for r in outbox_rows(session, job.id) if r.template == "quote"]
    assert old.status == OutboxStatus.CANCELLED and "newer confirm link" in old.last_error
    assert "token" not in (old.context or {})
    (quote,) = [r for r in smtp.inbox.messages() if r.message["X-PrintLab-Template"] == "quote"]
    assert quote.message_id == new.message_id
    outcome = workflow.confirm(session, storage, confirm_token(quote)).outcome
    assert outcome == quote_links.ConfirmOutcome.CONFIRMED


def test_a_pickup_reminder_for_a_collected_print_is_not_sent(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.COMPLETED)
    assert sweeps.send_pickup_reminders(session, now=utcnow() + timedelta(days=8)) == 1
    workflow.record_pickup(session, storage, job.id, actor=actor(), method="CASH", weighed_g=40)
    mail.deliver_due(session, mailer, now=utcnow() + timedelta(days=8))
    templates = {r.template: r.status for r in outbox_rows(session, job.id)}
    assert templates["pickup_reminder"] == OutboxStatus.CANCELLED
    assert templates["payment_receipt"] == OutboxStatus.SENT
    assert "pickup_reminder" not in {r.message["X-PrintLab-Template"] for r in smtp.inbox.messages()}


def test_staff_can_resend_what_fits_the_jobs_status(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    assert resend.resendable(session.get(Job, job.id)) == ["receipt", "payment_receipt"]
    mail.deliver_due(session, mailer)
    before = len(smtp.inbox.messages())
    message = resend.resend(session, storage, job.id, "payment_receipt", staff="Alex Rivera")
    assert message.context == {"requested_by": "Alex Rivera"}
    assert mail.deliver_due(session, mailer).sent == 1
    (again,) = smtp.inbox.messages()[before:]
    assert "$4.00" in again.text  # the charge comes from the payment row
    events = sent_events(session, job.id)
    assert events[-1].details["requested_by"] == "Alex Rivera"
    with pytest.raises(mail.delivery.ValidationError, match="Paid & Picked Up"):
        resend.resend(session, storage, job.id, "ready_for_pickup", staff="Alex Rivera")
    with pytest.raises(mail.delivery.ValidationError):
        resend.resend(session, storage, job.id, "receipt", staff=None)


def test_resending_a_quote_needs_a_staff_name_and_kills_the_old_link(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.PENDING)
    mail.deliver_due(session, mailer)
    old_token = confirm_token(smtp.inbox.messages()[-1])
    with pytest.raises(mail.delivery.ValidationError):
        resend.resend(session, storage, job.id, "quote", staff=None)  # would otherwise count as the student
    resend.resend(session, storage, job.id, "quote", staff="Alex Rivera")
    assert mail.deliver_due(session, mailer).sent == 1
    new_token = confirm_token(smtp.inbox.messages()[-1])
    assert new_token != old_token
    assert workflow.confirm(session, storage, old_token).outcome == quote_links.ConfirmOutcome.INVALID
    assert workflow.confirm(session, storage, new_token).outcome == quote_links.ConfirmOutcome.CONFIRMED


def test_health_reports_the_outbox_backlog(session, storage, smtp, mailer, signed_in_client):
    submit_job(session, storage, student_email="gone@example.edu")
    submit_job(session, storage)
    state = signed_in_client.get("/healthz").get_json()["components"]["outbox"]
    assert (state["status"], state["pending"], state["failed"]) == ("ok", 2, 0)
    smtp.inbox.refuse.add("gone@example.edu")
    mail.deliver_due(session, mailer)
    body = signed_in_client.get("/healthz")
    state = body.get_json()["components"]["outbox"]
    assert (state["status"], state["pending"], state["failed"]) == ("degraded", 0, 1)
    assert body.status_code == 200  # mail trouble never takes the site down


def test_an_email_to_the_lab_itself_goes_out_without_a_job(session, smtp, mailer):
    outbox.enqueue_for_lab(
        session,
        "monthly_summary",
        "manager@example.edu",
        utcnow(),
        month_name="November 2026",
        previous_name="October 2026",
        figures=[{"label": "Submissions", "value": "12", "previous": "9"}],
        unpaid=[{"number": "a1b2c3", "student": "Jane Doe", "owed": "$4.20", "days": 3}],
        unpaid_more=0,
        reports_path="/reports?period=custom",
        exports=[{"label": "Jobs (CSV)", "path": "/reports/export/jobs.csv?from=2026-11-01"}],
    )
    session.commit()
    assert mail.deliver_due(session, mailer).sent == 1
    (received,) = smtp.inbox.messages()
    assert received.message["To"] == "manager@example.edu"
    assert received.message["Subject"] == "Makerspace 3D Print Lab: November 2026 in numbers"
    assert "Submissions: 12 (October 2026: 9)" in received.text
    assert "Job a1b2c3 · Jane Doe · $4.20 · ready 3 days" in received.text
    assert f'href="{BASE}/reports?period=custom"' in received.html
    assert f"Jobs (CSV): {BASE}/reports/export/jobs.csv?from=2026-11-01" in received.text
    (row,) = outbox_rows(session)
    assert row.status == OutboxStatus.SENT and row.job_id is None
    assert sent_events(session) == []  # no job, so no job event
    with pytest.raises(ValueError, match="unknown lab email"):
        outbox.enqueue_for_lab(session, "quote", "manager@example.edu", utcnow())
