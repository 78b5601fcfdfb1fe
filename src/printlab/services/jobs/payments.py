"""What a job's payment rows add up to: its balance and when it was last paid (payments are append-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from printlab.models import Payment


@dataclass(frozen=True)
class Balance:
    """The sum of a job's payment rows (charges less refunds, reversals and corrections)."""

    paid_usd: Decimal
    #: When the newest row was recorded.
    last_recorded_at: datetime


def balance(session: Session, job_id: str) -> Balance | None:
    """The job's balance, or None when no payment was ever recorded for it."""
    paid, last = session.execute(
        select(func.sum(Payment.charged_usd), func.max(Payment.recorded_at)).where(Payment.job_id == job_id)
    ).one()
    if last is None:
        return None
    return Balance(Decimal(paid).quantize(Decimal("0.01")), last)


def latest_charge(session: Session, job_id: str) -> Payment | None:
    """The job's newest pickup charge (the row refunds and reversals refer to), or None."""
    return session.scalars(
        select(Payment)
        .where(Payment.job_id == job_id, Payment.kind == "CHARGE")
        .order_by(Payment.recorded_at.desc(), Payment.id.desc())
        .limit(1)
    ).first()
