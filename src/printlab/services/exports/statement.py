"""The monthly statement per account code: internal transfers of a period grouped by the code they were
charged to, refunds, corrections and reversals netted against them, with the jobs behind each line."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from printlab.domain.charging import kind_label
from printlab.domain.naming import simple_job_id
from printlab.domain.periods import Period
from printlab.models import AccountCode, Job, Payment, PaymentKind
from printlab.services.exports.sheets import BATCH, Column, Kind, Sheet, bounds

ZERO = Decimal("0.00")


def _statement_rows(period: Period, zone: str) -> Select[Any]:
    """Every payment row of the period that belongs to an account code: an internal transfer names
    its code; a refund, correction or reversal belongs to the code of the payment it is about."""
    start, end = bounds(period, zone)
    about = aliased(Payment)
    code = func.coalesce(Payment.account_code, about.account_code)
    return (
        select(
            code.label("code"),
            AccountCode.name.label("account_name"),
            Payment.recorded_at,
            Payment.job_id,
            Job.student_name,
            Job.class_number,
            Payment.kind,
            Payment.reason,
            Payment.payment_reference,
            Payment.charged_usd,
            Payment.recorded_by,
        )
        .join(Job, Job.id == Payment.job_id)
        .outerjoin(about, about.id == Payment.refund_of)
        .outerjoin(AccountCode, AccountCode.code == code)
        .where(Payment.recorded_at >= start, Payment.recorded_at < end, code.is_not(None))
        .order_by(code, Payment.recorded_at, Payment.id)
    )


@dataclass(frozen=True)
class Line:
    recorded_at: datetime
    job_id: str
    student: str
    class_number: str
    #: The payment.kind code (CHARGE, REFUND, CORRECTION, REVERSAL); `kind_words` is what people read.
    kind: str
    reason: str
    reference: str
    amount: Decimal

    @property
    def job_number(self) -> str:
        return simple_job_id(self.job_id)

    @property
    def kind_words(self) -> str:
        return kind_label(self.kind)


@dataclass
class Account:
    code: str
    name: str
    lines: list[Line] = field(default_factory=list)

    @property
    def charged(self) -> Decimal:
        return sum((line.amount for line in self.lines if line.kind == PaymentKind.CHARGE), ZERO)

    @property
    def adjusted(self) -> Decimal:
        """Refunds, corrections and reversals: usually negative."""
        return sum((line.amount for line in self.lines if line.kind != PaymentKind.CHARGE), ZERO)

    @property
    def net(self) -> Decimal:
        return self.charged + self.adjusted

    @property
    def jobs(self) -> int:
        return len({line.job_id for line in self.lines})


@dataclass
class Statement:
    period: Period
    zone: str
    accounts: list[Account]

    @property
    def charged(self) -> Decimal:
        return sum((a.charged for a in self.accounts), ZERO)

    @property
    def adjusted(self) -> Decimal:
        return sum((a.adjusted for a in self.accounts), ZERO)

    @property
    def net(self) -> Decimal:
        return self.charged + self.adjusted


def monthly_statement(session: Session, period: Period, zone: str) -> Statement:
    """The statement of the period (a month, on the page), one Account per code with its lines."""
    accounts: list[Account] = []
    for r in session.execute(_statement_rows(period, zone).execution_options(yield_per=BATCH)):
        if not accounts or accounts[-1].code != r.code:
            accounts.append(Account(r.code, r.account_name or ""))
        accounts[-1].lines.append(
            Line(
                recorded_at=r.recorded_at,
                job_id=r.job_id,
                student=r.student_name or "",
                class_number=r.class_number or "",
                kind=r.kind,
                reason=r.reason or "",
                reference=r.payment_reference or "",
                amount=Decimal(r.charged_usd).quantize(Decimal("0.01")),
            )
        )
    return Statement(period, zone, accounts)


STATEMENT_COLUMNS = (
    Column("Account code", width=14),
    Column("Account", width=28),
    Column("Recorded", Kind.WHEN, 17),
    Column("Job", width=9),
    Column("Student", width=24),
    Column("Class", width=12),
    Column("Kind", width=11),
    Column("Reason", width=30),
    Column("Reference", width=16),
    Column("Amount ($)", Kind.MONEY, 11),
    Column("Recorded by", width=18),
    Column("Job ID", width=34),
)


def statement_sheet(session: Session, period: Period, zone: str) -> Sheet:
    """The statement's lines as an export (CSV or XLSX), ordered by account code."""
    statement = _statement_rows(period, zone).execution_options(yield_per=BATCH)

    def rows() -> Iterator[Sequence[Any]]:
        for r in session.execute(statement):
            yield (
                r.code,
                r.account_name,
                r.recorded_at,
                simple_job_id(r.job_id),
                r.student_name,
                r.class_number,
                kind_label(r.kind),
                r.reason,
                r.payment_reference,
                r.charged_usd,
                r.recorded_by,
                r.job_id,
            )

    return Sheet("statement", "Statement", STATEMENT_COLUMNS, rows(), period, zone)
