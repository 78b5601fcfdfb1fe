"""What endpoints are told: one delivery per subscribed, enabled endpoint, written in the transaction of
the change (so an event is sent if and only if its change was committed), its body fixed there.

Bodies follow the Standard Webhooks shape — `{"type", "timestamp", "data"}` — and carry no student's
name or email address: a receiver that needs them reads the job through the API with a token.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.naming import simple_id_in_name
from printlab.domain.printers import Activity
from printlab.domain.statuses import Status
from printlab.domain.webhooks import EVENTS, TEST_EVENT
from printlab.models import Job, LabPrinter, Payment, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint


def _utc(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment is not None else None


def _money(value: Decimal | None) -> str | None:
    return f"{value:.2f}" if value is not None else None


def job_data(job: Job) -> dict[str, Any]:
    """A job as webhooks describe it: its numbers, status and quote, no personal data."""
    try:
        label = Status(job.status).label
    except ValueError:
        label = job.status or ""
    reference = simple_id_in_name(job.display_name, job.id)
    return {
        "id": job.id,
        "reference": reference,
        "status": job.status,
        "status_label": label,
        "method": job.material,
        "color": job.color,
        "printer": job.printer,
        "discipline": job.discipline,
        "class_number": job.class_number,
        "weight_g": job.weight_g,
        "time_hours": job.time_hours,
        "cost_usd": _money(job.cost_usd),
        "created_at": _utc(job.created_at),
        "api": f"/api/v1/jobs/{job.id}",
    }


def announce(
    session: Session,
    kind: str,
    data: Callable[[], dict[str, Any]],
    *,
    now: datetime,
    job_id: str | None = None,
) -> list[WebhookDelivery]:
    """Queue `kind` for every enabled endpoint that chose it, in the caller's unit of work (no commit).
    `data` is only built when some endpoint is to be told."""
    if kind not in EVENTS:
        raise ValueError(f"unknown webhook event {kind!r}")
    # Read without flushing: the caller's job row must be written once, with its version (a second
    # UPDATE of it would stamp `updated_at` with the column's own clock), and endpoints don't depend on it.
    with session.no_autoflush:
        endpoints = [
            endpoint_id
            for endpoint_id, chosen in session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.enabled.is_(True))
            )
            if isinstance(chosen, list) and kind in chosen
        ]
    if not endpoints:
        return []
    with session.no_autoflush:
        built = data()
    return [queue(session, endpoint_id, kind, built, now=now, job_id=job_id) for endpoint_id in endpoints]


def queue(
    session: Session, endpoint_id: int, kind: str, data: dict[str, Any], *, now: datetime, job_id: str | None
) -> WebhookDelivery:
    """One delivery of `kind` to one endpoint, due now."""
    message_id = "msg_" + secrets.token_urlsafe(18)
    body = json.dumps(
        {"type": kind, "timestamp": _utc(now), "data": data}, separators=(",", ":"), ensure_ascii=False
    )
    delivery = WebhookDelivery(
        endpoint_id=endpoint_id,
        message_id=message_id,
        kind=kind,
        body=body,
        job_id=job_id,
        status=WebhookDeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        interrupted=False,
        created_at=now,
    )
    session.add(delivery)
    return delivery


def job_created(session: Session, job: Job, *, now: datetime) -> None:
    """A student's request was submitted."""
    announce(session, "job.created", lambda: {"job": job_data(job)}, now=now, job_id=job.id)


def status_changed(
    session: Session, job: Job, source: str, *, by: str | None, details: dict[str, Any], now: datetime
) -> None:
    """A job moved from `source` to its current status (`by`: the staff member; None for the student or
    the lab itself)."""

    def data() -> dict[str, Any]:
        built: dict[str, Any] = {"job": job_data(job), "from": source, "to": job.status, "by": by}
        if details.get("revert"):
            built["revert"] = True
        reason = details.get("reason")
        if isinstance(reason, str) and reason:
            built["reason"] = reason
        return built

    announce(session, "job.status_changed", data, now=now, job_id=job.id)


def payment_recorded(
    session: Session, job: Job, payment: Payment, *, balance_usd: Callable[[], Decimal], now: datetime
) -> None:
    """A payment row was written for the job: the pickup's charge, a refund, a correction or a revert's
    reversal (`balance_usd`: what the job's payments add up to with it, asked only when it is sent)."""
    announce(
        session,
        "payment.recorded",
        lambda: _payment_data(job, payment, balance_usd()),
        now=now,
        job_id=job.id,
    )


def _payment_data(job: Job, payment: Payment, balance_usd: Decimal) -> dict[str, Any]:
    return {
        "job": job_data(job),
        "payment": {
            "kind": payment.kind,
            "amount_usd": _money(payment.charged_usd),
            "method": payment.method,
            "account_code": payment.account_code,
            "reason": payment.reason,
            "recorded_by": payment.recorded_by or None,
            "recorded_at": _utc(payment.recorded_at),
        },
        "balance_usd": _money(balance_usd),
    }


def printer_state_changed(
    session: Session,
    printer: LabPrinter,
    before: Activity | None,
    after: Activity,
    *,
    file: str | None,
    message: str | None,
    now: datetime,
) -> None:
    """A connected printer's state changed as its polls tell it (idle → printing, printing → error,
    → offline…); `before` is None for its first answer."""
    announce(
        session,
        "printer.state_changed",
        lambda: {
            "printer": {"id": printer.id, "name": printer.name},
            "from": before.value if before is not None else None,
            "to": after.value,
            "file": file,
            "message": message,
        },
        now=now,
    )


def test_event(session: Session, endpoint_id: int, *, by: str | None, now: datetime) -> WebhookDelivery:
    """ "Send a test event": one delivery to this endpoint only, whatever it chose."""
    return queue(session, endpoint_id, TEST_EVENT, {"sent_by": by}, now=now, job_id=None)
