"""The monthly statement per account code: transfers grouped by code, refunds and reversals netted, on both databases."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from openpyxl import load_workbook

from printlab.domain.periods import Period
from printlab.domain.statuses import Status
from printlab.models import AccountCode, Payment
from printlab.services.exports import export
from printlab.services.exports.statement import monthly_statement

from .factories import make_job
from .test_exports import admin_client, read_csv

NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
ZONE = "America/Chicago"


def pay(session, job_id: str, amount: str, at: datetime, **values):  # type: ignore[no-untyped-def]
    """A payment row as the charging service writes one (rows are only ever added)."""
    row = Payment(
        job_id=job_id,
        charged_usd=Decimal(amount),
        recorded_by="Alex Rivera",
        workstation_id="FRONT-DESK",
        recorded_at=at,
        **values,
    )
    session.add(row)
    session.commit()
    return row


def build_month(session, storage):  # type: ignore[no-untyped-def]
    """Three completed jobs charged to two account codes in November (Chicago), a refund of one,
    a charge to a code on 1 December at 01:00 Chicago time (outside), and a cash payment (not a transfer)."""
    session.add_all(
        [
            AccountCode(
                code="ENG-1042", name="Mechanical Engineering capstone", added_at=datetime(2026, 8, 1)
            ),
            AccountCode(code="ART-7", name="Sculpture studio", added_at=datetime(2026, 8, 1)),
        ]
    )
    session.commit()
    jobs = [
        make_job(session, storage, Status.COMPLETED, student_email=f"s{i}@example.edu", student_name=name)
        for i, name in enumerate(("Ana Lopez", "Ben Ode", "Cy Twombly", "Dee Cash"))
    ]
    eng1 = pay(session, jobs[0].id, "4.20", datetime(2026, 11, 1, 5, 30), kind="CHARGE", method="ACCOUNT",
               account_code="ENG-1042", payment_reference="PO-77")  # fmt: skip
    pay(session, jobs[1].id, "12.50", datetime(2026, 11, 20, 18, 0), kind="CHARGE", method="ACCOUNT",
        account_code="ENG-1042")  # fmt: skip
    pay(session, jobs[0].id, "-1.20", datetime(2026, 11, 21, 15, 0), kind="REFUND", reason="Supports failed",
        refund_of=eng1.id)  # fmt: skip
    pay(session, jobs[2].id, "7.00", datetime(2026, 11, 10, 16, 0), kind="CHARGE", method="ACCOUNT",
        account_code="ART-7")  # fmt: skip
    pay(
        session,
        jobs[2].id,
        "9.99",
        datetime(2026, 12, 1, 7, 0),
        kind="CHARGE",
        method="ACCOUNT",
        account_code="ART-7",
    )  # fmt: skip  (1 December 01:00 in Chicago)
    pay(session, jobs[3].id, "3.00", datetime(2026, 11, 12, 16, 0), kind="CHARGE", method="CASH")
    return jobs


def test_statement_groups_transfers_by_code_and_nets_refunds(session, storage):
    jobs = build_month(session, storage)
    statement = monthly_statement(session, NOVEMBER, ZONE)
    assert [(a.code, a.name, a.jobs, a.charged, a.adjusted, a.net) for a in statement.accounts] == [
        ("ART-7", "Sculpture studio", 1, Decimal("7.00"), Decimal("0.00"), Decimal("7.00")),
        (
            "ENG-1042",
            "Mechanical Engineering capstone",
            2,
            Decimal("16.70"),
            Decimal("-1.20"),
            Decimal("15.50"),
        ),
    ]
    assert (statement.charged, statement.adjusted, statement.net) == (
        Decimal("23.70"),
        Decimal("-1.20"),
        Decimal("22.50"),
    )
    engineering = statement.accounts[1]
    assert [
        (line.job_id, line.kind_words, line.amount, line.reference, line.reason) for line in engineering.lines
    ] == [
        (jobs[0].id, "Payment at pickup", Decimal("4.20"), "PO-77", ""),
        (jobs[1].id, "Payment at pickup", Decimal("12.50"), "", ""),
        (jobs[0].id, "Refund", Decimal("-1.20"), "", "Supports failed"),
    ]
    assert engineering.lines[0].recorded_at == datetime(2026, 11, 1, 5, 30)  # 1 November 00:30 CDT
    december = monthly_statement(session, Period(date(2026, 12, 1), date(2026, 12, 31)), ZONE)
    assert [(a.code, a.net) for a in december.accounts] == [("ART-7", Decimal("9.99"))]
    assert monthly_statement(session, Period(date(2026, 10, 1), date(2026, 10, 31)), ZONE).accounts == []


def test_statement_lines_export_as_csv_and_xlsx(session, storage, tmp_path):
    jobs = build_month(session, storage)
    rows = read_csv(b"".join(export.csv_stream(session, "statement", NOVEMBER)))
    assert rows[0] == [
        "Account code", "Account", "Recorded", "Job", "Student", "Class", "Kind", "Reason", "Reference",
        "Amount ($)", "Recorded by", "Job ID",
    ]  # fmt: skip
    assert [(r[0], r[2], r[4], r[6], r[9], r[-1]) for r in rows[1:]] == [
        ("ART-7", "2026-11-10 10:00:00-06:00", "Cy Twombly", "Payment at pickup", "7.00", jobs[2].id),
        ("ENG-1042", "2026-11-01 00:30:00-05:00", "Ana Lopez", "Payment at pickup", "4.20", jobs[0].id),
        ("ENG-1042", "2026-11-20 12:00:00-06:00", "Ben Ode", "Payment at pickup", "12.50", jobs[1].id),
        ("ENG-1042", "2026-11-21 09:00:00-06:00", "Ana Lopez", "Refund", "-1.20", jobs[0].id),
    ]
    path = tmp_path / "statement.xlsx"
    assert export.write_xlsx(session, "statement", NOVEMBER, str(path)) == 4
    sheet = load_workbook(path).active
    assert sheet.title == "Statement" and sheet.freeze_panes == "A2"
    assert sheet["J5"].value == -1.2 and sheet["J5"].number_format == "#,##0.00"


def test_statement_page_for_admins(app, session, storage):
    build_month(session, storage)
    client = admin_client(app, session)
    page = client.get("/reports/statement?month=2026-11")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "ENG-1042" in text and "Mechanical Engineering capstone" in text
    assert "$15.50" in text and "-$1.20" in text and "$22.50" in text
    assert "Supports failed" in text and "PO-77" in text
    assert "/reports/export/statement.xlsx?from=2026-11-01&amp;to=2026-11-30" in text
    empty = client.get("/reports/statement?month=2026-10").get_data(as_text=True)
    assert "No payment was charged to an account code in October 2026" in empty
    for bad in ("2026-13", "November", "2026-11-01"):
        answer = client.get(f"/reports/statement?month={bad}")
        assert answer.status_code == 400 and "Choose a month like 2026-11." in answer.get_data(as_text=True)


def test_statement_is_for_admin_workstations_only(signed_in_client):
    assert signed_in_client.get("/reports/statement?month=2026-11").status_code == 403
    assert (
        signed_in_client.get("/reports/export/statement.csv?from=2026-11-01&to=2026-11-30").status_code == 403
    )
