"""Delivering the outbox: claim due rows, send each outside any transaction, record the outcome with EmailSent.

Guarantee: at least once, never silently lost. The send/commit crash window can't be closed (SMTP
has no idempotency key), so it is kept small and made visible instead:

1. *Claim* (one short transaction): due PENDING rows are taken with FOR UPDATE SKIP LOCKED on
   PostgreSQL (SQLite's write transaction serialises workers); each gets `claimed_by`, one more
   attempt, a lease (`next_attempt_at` = now + LEASE) and, the first time, its Message-ID.
2. *Start* (one short transaction per message): the row is re-read under its lock. Anything no
   longer PENDING or no longer ours is skipped; a message that stopped making sense (a newer quote
   link replaced it, the print was collected before its reminder) is CANCELLED with the reason.
   Otherwise it is rendered, and `sending_at` is set: "handed to the mail server from now on".
3. *Send*, holding no transaction: a staff action never waits for the mail server.
4. *Record* (one short transaction): SENT + an `EmailSent` event (template, Message-ID, no
   address) + the quote's raw token scrubbed from the row; or the failure with its backoff.

A worker that dies between 3 and 4 leaves the row PENDING with `sending_at` set. Nobody touches it
until the lease runs out (so a crash never causes an instant double send); then another worker
sends it again with the *same* Message-ID and marks the event `possible_duplicate`. A student may
so, rarely, get one message twice — recognisably the same one — but never none.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from jinja2 import TemplateError
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.config import Config
from printlab.db import write_transaction
from printlab.domain.catalog import Catalog
from printlab.domain.naming import simple_id_in_name
from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage, OutboxStatus, Payment
from printlab.services import leases
from printlab.services.errors import NotFound, ValidationError
from printlab.services.jobs import payments, quote_links
from printlab.services.jobs.records import add_event, entered_status_at, simple_id_for
from printlab.services.lab.actors import Actor, require_active_staff
from printlab.services.lab.catalog import load_catalog
from printlab.services.mail.outbox import LAB_TEMPLATES, STUDENT_TEMPLATES
from printlab.services.mail.render import (
    Links,
    RenderedEmail,
    build_message,
    lab_message_context,
    message_context,
    render,
    sender_for,
    student_message_context,
)
from printlab.services.mail.transport import (
    DeliveryError,
    Envelope,
    PermanentFailure,
    ServerUnreachable,
    TemporaryFailure,
    Transport,
    transport_for,
)

log = logging.getLogger(__name__)

#: How long a claimed message is reserved for its worker: longer than one send can take (connect,
#: EHLO, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, end of data: nine steps of at most
#: PRINTLAB_SMTP_TIMEOUT, 60 s, each), so two live workers never send the same message.
LEASE = timedelta(minutes=10)
#: Waits before each retry after a temporary failure; after the last one the message is FAILED.
#: Together about 18 hours: a mail server down overnight loses nothing.
BACKOFF = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=4),
    timedelta(hours=12),
)
#: Rows claimed at once; small, so a stopped worker hands few back.
BATCH = 10
#: One delivery run stops claiming after this long, so the worker's heartbeat and tasks keep going.
RUN_SECONDS = 20.0
#: A message's context keys that must not outlive its delivery.
_SECRET_CONTEXT = ("token",)


@dataclass(frozen=True)
class Mailer:
    """Where messages go and what they are made of; one per worker."""

    transport: Transport
    links: Links
    mail_from: str | None
    #: The worker's name in `claimed_by` (host:pid:…), unique per running deliverer.
    identity: str

    @classmethod
    def from_config(cls, config: Config, *, identity: str, transport: Transport | None = None) -> Mailer:
        return cls(
            transport=transport or transport_for(config),
            links=Links(config.base_url, config.secret_key),
            mail_from=config.mail_from,
            identity=identity,
        )

    @property
    def domain(self) -> str:
        return urlsplit(self.links.base_url).hostname or "printlab.invalid"


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed + self.cancelled


@dataclass(frozen=True)
class _Prepared:
    outbox_id: int
    message: EmailMessage
    envelope: Envelope
    interrupted: bool


# -- the delivery run ----------------------------------------------------------------------------


def deliver_due(
    session: Session,
    mailer: Mailer,
    *,
    now: datetime | None = None,
    run_seconds: float = RUN_SECONDS,
    should_stop: Callable[[], bool] = lambda: False,
) -> DeliveryReport:
    """Send every message that is due, until none is left, the run's time is up, or `should_stop()`.

    `now` fixes the clock (tests); otherwise each step reads the time itself. Raises only database
    errors; every delivery problem ends up on its row.
    """
    report = DeliveryReport()
    started = time.monotonic()
    connection = None

    def clock() -> datetime:
        return now or utcnow()

    try:
        while not should_stop() and time.monotonic() - started < run_seconds:
            waiting = claim(session, mailer, now=clock())
            if not waiting:
                break
            try:
                unreachable = False
                while waiting and not should_stop():
                    outbox_id = waiting.pop(0)
                    try:
                        prepared = _start(session, mailer, outbox_id, now=clock(), report=report)
                        if prepared is None:
                            continue
                        if connection is None:
                            connection = mailer.transport.connect()
                        connection.send(prepared.message, prepared.envelope)
                    except ServerUnreachable as exc:
                        # Every message waiting now would fail the same way: one attempt each, and
                        # this run ends instead of knocking on a dead server ten more times.
                        connection = None
                        for failed_id in (outbox_id, *waiting):
                            _record_failure(session, mailer, failed_id, exc, now=clock(), report=report)
                        waiting.clear()
                        unreachable = True
                    except DeliveryError as exc:
                        if isinstance(exc, TemporaryFailure) and connection is not None:
                            connection.close()  # the connection may be half-broken; start afresh
                            connection = None
                        _record_failure(session, mailer, outbox_id, exc, now=clock(), report=report)
                    else:
                        _record_success(session, mailer, prepared, now=clock(), report=report)
            finally:
                release(session, mailer, waiting, now=clock())
            if unreachable:
                break
    finally:
        if connection is not None:
            connection.close()
    return report


def claim(session: Session, mailer: Mailer, *, now: datetime, limit: int = BATCH) -> list[int]:
    """Reserve up to `limit` due messages for this worker; their ids, oldest due first."""
    due = (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.next_attempt_at <= now)

    def named(row: OutboxMessage) -> None:
        if row.message_id is None:
            row.message_id = f"<printlab.{row.id}.{secrets.token_hex(8)}@{mailer.domain}>"

    return leases.claim(
        session, OutboxMessage, due, worker=mailer.identity, now=now, lease=LEASE, limit=limit, prepare=named
    )


def release(session: Session, mailer: Mailer, outbox_ids: list[int], *, now: datetime) -> None:
    """Hand back claimed messages this worker didn't start (it is stopping): due again at once."""
    leases.release(
        session, OutboxMessage, outbox_ids, pending=OutboxStatus.PENDING, worker=mailer.identity, now=now
    )


def _lock(session: Session, outbox_id: int) -> OutboxMessage | None:
    return leases.lock(session, OutboxMessage, outbox_id)


def _start(
    session: Session, mailer: Mailer, outbox_id: int, *, now: datetime, report: DeliveryReport
) -> _Prepared | None:
    """Re-read the claimed row; cancel it if it no longer applies, else render it and mark it sending."""
    with write_transaction(session):
        row = _lock(session, outbox_id)
        if row is None or row.status != OutboxStatus.PENDING or row.claimed_by != mailer.identity:
            return None  # sent, cancelled or taken over meanwhile
        if row.template in LAB_TEMPLATES:  # to the lab itself: no job, always still applies
            message, envelope = compose_for_lab(session, mailer, row, now=now)
        elif row.template in STUDENT_TEMPLATES:  # to a student about no one job (a sign-in link)
            reason = link_not_applicable(row, now)
            if reason is not None:
                _cancel(row, reason, report)
                return None
            message, envelope = compose_for_student(session, mailer, row, now=now)
        else:
            job = session.get(Job, row.job_id) if row.job_id else None
            if job is None:
                raise PermanentFailure("the job this email is about no longer exists")
            reason = not_applicable(row, job)
            if reason is not None:
                _cancel(row, reason, report)
                return None
            message, envelope = compose(session, mailer, row, job, now=now)
        interrupted = row.sending_at is not None
        if interrupted:
            log.warning(
                "email %s (%s): an earlier send was interrupted after it reached the mail server; "
                "sending again with the same Message-ID",
                row.id,
                row.template,
            )
        row.sending_at = now
        row.next_attempt_at = now + LEASE  # a fresh lease for the send itself
        return _Prepared(row.id, message, envelope, interrupted)


def _cancel(row: OutboxMessage, reason: str, report: DeliveryReport) -> None:
    """Leave a message unsent because it no longer applies; any raw token goes with it."""
    row.status = OutboxStatus.CANCELLED
    row.last_error = f"Not sent: {reason}"
    row.sending_at = None
    row.context = _scrubbed(row.context)
    report.cancelled += 1
    log.info("email %s (%s) cancelled: %s", row.id, row.template, reason)


def compose(
    session: Session, mailer: Mailer, row: OutboxMessage, job: Job, *, now: datetime
) -> tuple[EmailMessage, Envelope]:
    """The finished message for a row. Raises PermanentFailure when it can't be built."""
    catalog = load_catalog(session)
    extra = dict(row.context or {})
    completed_at = None
    if row.template in ("ready_for_pickup", "pickup_reminder"):
        completed_at = _completed_at(extra, job, row)
    payment = (
        _payment_of(session, row, job) if row.template in ("payment_receipt", "payment_refund") else None
    )
    charged = extra.get("charged_usd")
    if row.template == "payment_receipt" and charged is None:  # a receipt sent again: its charge row
        charged = payment.charged_usd if payment is not None else _latest_charge(session, job)
    rendered = _rendered(
        row,
        lambda: message_context(
            row.template,
            job=job,
            simple_id=simple_id_for(session, job.id),
            catalog=catalog,
            links=mailer.links,
            extra=extra,
            completed_at=completed_at,
            charged_usd=str(charged) if charged is not None else None,
            payment=payment,
        ),
    )
    return _addressed(rendered, catalog, mailer, row, now)


def compose_for_lab(
    session: Session, mailer: Mailer, row: OutboxMessage, *, now: datetime
) -> tuple[EmailMessage, Envelope]:
    """The finished message for an email to the lab itself (no job)."""
    catalog = load_catalog(session)
    rendered = _rendered(
        row, lambda: lab_message_context(row.template, catalog=catalog, links=mailer.links, extra=row.context)
    )
    return _addressed(rendered, catalog, mailer, row, now)


def compose_for_student(
    session: Session, mailer: Mailer, row: OutboxMessage, *, now: datetime
) -> tuple[EmailMessage, Envelope]:
    """The finished message for an email to a student about no one job (a sign-in link)."""
    catalog = load_catalog(session)
    rendered = _rendered(
        row,
        lambda: student_message_context(row.template, catalog=catalog, links=mailer.links, extra=row.context),
    )
    return _addressed(rendered, catalog, mailer, row, now)


def link_not_applicable(row: OutboxMessage, now: datetime) -> str | None:
    """Why a sign-in link email should no longer go out (it expired while waiting), or None."""
    expires = (row.context or {}).get("expires_at")
    if expires and datetime.fromisoformat(str(expires)) <= now:
        return "the sign-in link expired before it could be sent; the student can ask for a new one"
    return None


def _rendered(row: OutboxMessage, context: Callable[[], dict[str, Any]]) -> RenderedEmail:
    """The row's template rendered with its context; PermanentFailure when either can't be built."""
    try:
        return render(row.template, context())
    except (TemplateError, ValueError, KeyError, TypeError) as exc:
        log.exception("email %s (%s) can't be rendered", row.id, row.template)
        raise PermanentFailure(f"can't build the message: {type(exc).__name__}: {exc}") from None


def _addressed(
    rendered: RenderedEmail, catalog: Catalog, mailer: Mailer, row: OutboxMessage, now: datetime
) -> tuple[EmailMessage, Envelope]:
    """A rendered email as the message and envelope that go to the mail server."""
    sender, envelope_sender = sender_for(mailer.mail_from, catalog)
    assert row.message_id is not None  # set when claimed
    message = build_message(
        rendered,
        sender=sender,
        reply_to=catalog.lab.contact_email,
        recipient=row.recipient,
        message_id=row.message_id,
        date=now,
        template=row.template,
        outbox_id=row.id,
    )
    return message, Envelope(envelope_sender, row.recipient, row.id, row.template)


def _completed_at(extra: dict[str, Any], job: Job, row: OutboxMessage) -> datetime:
    recorded = extra.get("completed_at")
    if recorded:
        return datetime.fromisoformat(str(recorded))
    if job.status == Status.COMPLETED:
        return entered_status_at(job) or row.created_at
    return row.created_at


def _payment_of(session: Session, row: OutboxMessage, job: Job) -> Payment | None:
    """The payment row a receipt is about: the one the outbox row names, else the job's newest charge
    (a receipt sent again, or one queued before receipts named their row)."""
    payment_id = (row.context or {}).get("payment_id")
    found = session.get(Payment, int(payment_id)) if isinstance(payment_id, int) else None
    if found is not None and found.job_id == job.id:
        return found
    return payments.latest_charge(session, job.id) if row.template == "payment_receipt" else None


def _latest_charge(session: Session, job: Job) -> Any:
    """What the student paid (the job's balance), else the quote."""
    paid = payments.balance(session, job.id)
    return paid.paid_usd if paid is not None else job.cost_usd


def not_applicable(row: OutboxMessage, job: Job) -> str | None:
    """Why this message should no longer go out, or None. Facts (receipts) always go out."""
    template, status = row.template, job.status
    if template == "quote":
        token = (row.context or {}).get("token")
        if status != Status.PENDING:
            return "the job is no longer waiting for the student's confirmation"
        if not token or job.confirm_token != quote_links.hash_token(str(token)):
            return "a newer confirm link replaced this one"
        if job.is_confirmation_expired:
            return "the link expired before it could be sent; the expired-quote notice explains what to do"
    if template == "quote_expired" and (status != Status.PENDING or not job.is_confirmation_expired):
        return "a new confirm link was sent, or the job moved on, before this notice went out"
    if template in ("ready_for_pickup", "pickup_reminder") and status != Status.COMPLETED:
        return "the print is no longer waiting for pickup"
    if template == "changes_needed" and status != Status.UPLOADED:
        return "the job no longer waits for a corrected file"
    if template in ("rejected", "withdrawn", "changes_expired") and status not in (
        Status.REJECTED,
        Status.ARCHIVED,
    ):
        return "the job is no longer rejected"
    return None


def _scrubbed(context: Any) -> Any:
    if not isinstance(context, dict):
        return context
    kept = {k: v for k, v in context.items() if k not in _SECRET_CONTEXT}
    return kept or None


def _record_success(
    session: Session, mailer: Mailer, prepared: _Prepared, *, now: datetime, report: DeliveryReport
) -> None:
    with write_transaction(session):
        row = _lock(session, prepared.outbox_id)
        if row is None:
            return
        if row.status == OutboxStatus.SENT:
            # Our lease ran out mid-send and another worker sent it too (same Message-ID).
            log.warning("email %s was also sent by %s", row.id, row.claimed_by)
            return
        row.status = OutboxStatus.SENT
        row.sent_at = now
        row.sending_at = None
        row.claimed_by = mailer.identity
        row.last_error = None
        context = row.context if isinstance(row.context, dict) else {}
        row.context = _scrubbed(row.context)  # only the token's hash stays, on the job
        job = session.get(Job, row.job_id) if row.job_id else None
        if job is not None:
            details: dict[str, Any] = {
                "template": row.template,
                "message_id": row.message_id,
                "outbox_id": row.id,
                "attempt": row.attempts,
            }
            for key in ("requested_by", "retried_by", "reminder"):
                if context.get(key) is not None:
                    details[key] = context[key]
            if prepared.interrupted:
                details["possible_duplicate"] = True
            add_event(session, job, "EmailSent", details, triggered_by=None, workstation_id=None, now=now)
    report.sent += 1
    log.info("email %s (%s) sent", prepared.outbox_id, prepared.envelope.template)


def _record_failure(
    session: Session,
    mailer: Mailer,
    outbox_id: int,
    error: DeliveryError,
    *,
    now: datetime,
    report: DeliveryReport,
) -> None:
    with write_transaction(session):
        row = _lock(session, outbox_id)
        if row is None or row.status != OutboxStatus.PENDING or row.claimed_by != mailer.identity:
            return
        row.sending_at = None
        row.last_error = str(error)[:2000] or type(error).__name__
        if error.permanent or row.attempts > len(BACKOFF):
            row.status = OutboxStatus.FAILED
            report.failed += 1
            log.error("email %s (%s) failed for good: %s", row.id, row.template, row.last_error)
        else:
            row.next_attempt_at = now + BACKOFF[row.attempts - 1]
            report.retrying += 1
            log.warning(
                "email %s (%s) attempt %s failed, retrying at %s: %s",
                row.id,
                row.template,
                row.attempts,
                row.next_attempt_at.isoformat(timespec="seconds"),
                row.last_error,
            )


# -- what people do with the outbox --------------------------------------------------------------


def _require_active_staff(session: Session, staff: str | None) -> str:
    require_active_staff(session, Actor(staff, None))
    return staff or ""


def retry(
    session: Session, outbox_id: int, *, staff: str | None, now: datetime | None = None
) -> OutboxMessage:
    """Send a FAILED message again from the start (its attempts reset); the retry is attributed.

    Raises NotFound, ValidationError (not failed, or no active staff member acting).
    """
    now = now or utcnow()
    with write_transaction(session):
        name = _require_active_staff(session, staff)
        row = _lock(session, outbox_id)
        if row is None:
            raise NotFound("No such email.")
        if row.status != OutboxStatus.FAILED:
            raise ValidationError(
                {"message": f"Only a failed email can be retried; this one is {row.status}."}
            )
        row.status = OutboxStatus.PENDING
        row.attempts = 0
        row.next_attempt_at = now
        row.sending_at = None
        row.claimed_by = None
        row.context = {**(row.context if isinstance(row.context, dict) else {}), "retried_by": name}
    log.info("email %s (%s) retried by %s", outbox_id, row.template, name)
    return row


# -- what the pages show -------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    pending: int
    failed: int
    #: Seconds the longest-waiting due message has waited (0 when none is due).
    oldest_due_seconds: int


def backlog(session: Session, *, now: datetime | None = None) -> Backlog:
    """Counts for /healthz and the Mail page, in one query."""
    now = now or utcnow()
    # CASE rather than FILTER (…): the SQLite of an older lab computer may predate FILTER.
    due = (OutboxMessage.status == OutboxStatus.PENDING) & (OutboxMessage.next_attempt_at <= now)
    pending, failed, oldest = session.execute(
        select(
            func.sum(case((OutboxMessage.status == OutboxStatus.PENDING, 1), else_=0)),
            func.sum(case((OutboxMessage.status == OutboxStatus.FAILED, 1), else_=0)),
            func.min(case((due, OutboxMessage.created_at), else_=None)),
        )
    ).one()
    waited = max(0, int((now - oldest).total_seconds())) if oldest is not None else 0
    return Backlog(pending=pending or 0, failed=failed or 0, oldest_due_seconds=waited)


def failed_for_job(session: Session, job_id: str) -> list[OutboxMessage]:
    """The job's emails that gave up, newest first, for the job page's warning and Retry buttons."""
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.job_id == job_id, OutboxMessage.status == OutboxStatus.FAILED)
            .order_by(OutboxMessage.id.desc())
        )
    )


@dataclass(frozen=True)
class OutboxRow:
    message: OutboxMessage
    #: The short job id staff know (from the job's stored name), or None for a message without a job.
    simple_id: str | None


@dataclass
class Overview:
    backlog: Backlog
    failed: list[OutboxRow] = field(default_factory=list)
    pending: list[OutboxRow] = field(default_factory=list)
    sent: list[OutboxRow] = field(default_factory=list)
    cancelled: list[OutboxRow] = field(default_factory=list)


def overview(session: Session, *, limit: int = 100, now: datetime | None = None) -> Overview:
    """The Mail page: failed, waiting, recently sent and recently cancelled messages (a query each)."""
    result = Overview(backlog=backlog(session, now=now))
    order = {
        OutboxStatus.FAILED: OutboxMessage.id.desc(),
        OutboxStatus.PENDING: OutboxMessage.next_attempt_at,
        OutboxStatus.SENT: OutboxMessage.sent_at.desc(),
        OutboxStatus.CANCELLED: OutboxMessage.id.desc(),
    }
    target = {
        OutboxStatus.FAILED: result.failed,
        OutboxStatus.PENDING: result.pending,
        OutboxStatus.SENT: result.sent,
        OutboxStatus.CANCELLED: result.cancelled,
    }
    for status, rows in target.items():
        found = session.execute(
            select(OutboxMessage, Job.display_name, Job.id)
            .outerjoin(Job, Job.id == OutboxMessage.job_id)
            .where(OutboxMessage.status == status)
            .order_by(order[status], OutboxMessage.id.desc())
            .limit(limit)
        ).all()
        rows.extend(OutboxRow(message, job_short_id(display, job_id)) for message, display, job_id in found)
    return result


def job_short_id(display_name: str | None, job_id: str | None) -> str | None:
    """The job's simple id as the dashboard shows it (None for an email of no job)."""
    return simple_id_in_name(display_name, job_id) if job_id is not None else None
