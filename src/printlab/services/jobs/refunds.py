"""Refunds and corrections after a pickup: a new payment row with its reason, never an edit of the old one.

Any active staff member may record one (the money goes back at the desk, like the pickup itself);
the event, the new row and the student's refund receipt are written in one transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain import charging
from printlab.domain.statuses import Status
from printlab.models import Payment
from printlab.services.errors import ValidationError, checked_text
from printlab.services.files.storage import Storage
from printlab.services.jobs import payments
from printlab.services.jobs.records import add_event, lock_job, rewrite_sidecar
from printlab.services.jobs.status_change import (
    Expected,
    check_dialog_lock,
    check_expected,
    checked_reason,
    next_version,
)
from printlab.services.lab import account_codes
from printlab.services.lab.actors import Actor, require_active_staff
from printlab.services.mail import outbox
from printlab.services.webhooks import events as webhook_events

#: The statuses of a job whose payment can be refunded or corrected.
REFUNDABLE = frozenset({Status.PAIDPICKEDUP, Status.ARCHIVED})
#: The event each kind of row writes (domain/history.py reads them as sentences).
EVENTS = {"REFUND": "PaymentRefunded", "CORRECTION": "PaymentCorrected"}


def refund_or_correct(
    session: Session,
    storage: Storage,
    job_id: str,
    *,
    actor: Actor,
    kind: str,
    amount_usd: object,
    method: str | None,
    reason: str,
    account_code: str | None = None,
    payment_reference: str | None = None,
    expected: Expected | None = None,
    now: datetime | None = None,
) -> Payment:
    """Add a REFUND (money given back, typed positive, stored negative; at most the job's balance) or
    a CORRECTION (signed; the balance can't go below zero) to a Paid & Picked Up or Archived job.

    `method` says how the money moved (a charging.METHODS code other than Waiver); an internal
    transfer names an active account code. The row refers to the job's pickup charge. Raises
    ValidationError (nothing written), StaleJob, JobLocked.
    """
    now = now or utcnow()
    why = checked_reason(reason, what="the reason for the refund or correction")
    ref = checked_text(payment_reference, "payment_reference", "Payment reference").strip()
    errors: dict[str, str] = {}
    if len(ref) > 100:
        errors["payment_reference"] = "Keep the payment reference under 100 characters."
    if method not in charging.METHODS or method == charging.WAIVER:
        errors["method"] = "Choose how the money went back (or was taken)."
    if kind not in charging.ADJUSTMENTS:
        errors["kind"] = "Choose a refund or a correction."
    if errors:
        raise ValidationError(errors)
    with write_transaction(session):
        job = lock_job(session, job_id)
        check_expected(session, job, expected)
        if job.status_enum not in REFUNDABLE:
            raise ValidationError(
                {"kind": f"Only a paid job can be refunded; this one is {job.status_enum.label}."}
            )
        require_active_staff(session, actor)
        check_dialog_lock(job, actor, now)
        charge = payments.latest_charge(session, job.id)
        before = payments.balance(session, job.id)
        if charge is None or before is None:
            raise ValidationError({"kind": "This job has no recorded payment to refund or correct."})
        code = None
        if method == charging.ACCOUNT:
            code = account_codes.usable_code(session, account_code).code
        try:
            amount = charging.adjustment_amount(kind, amount_usd, before.paid_usd)
        except charging.ChargingError as exc:
            raise ValidationError({exc.field: str(exc)}) from None
        row = Payment(
            job_id=job.id,
            quoted_usd=job.cost_usd,
            charged_usd=amount,
            kind=kind,
            method=method,
            account_code=code,
            reason=why,
            refund_of=charge.id,
            payment_reference=ref or None,
            recorded_by=actor.staff or "",
            workstation_id=actor.workstation,
            recorded_at=now,
        )
        session.add(row)
        session.flush()  # the row's id, for the receipt
        after: Decimal = before.paid_usd + amount
        webhook_events.payment_recorded(session, job, row, balance_usd=lambda: after, now=now)
        add_event(
            session,
            job,
            EVENTS[kind],
            {
                "amount_usd": str(amount),
                "method": method,
                **({"account_code": code} if code else {}),
                "balance_usd": str(after),
                "reason": why,
            },
            triggered_by=actor.staff,
            workstation_id=actor.workstation,
            now=now,
        )
        outbox.enqueue(session, job, "payment_refund", now, payment_id=row.id, balance_usd=str(after))
        job.last_updated_by = actor.staff
        if job.locked_by == actor.staff:  # sent from their dialog: like any action, it ends it
            job.locked_by, job.locked_until = None, None
        job.updated_at = next_version(job, now)
        rewrite_sidecar(storage, job)
    return row
