"""Finance exports: exact CSV and XLSX content of a known November, formula injection, the command, the download."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from printlab.domain.periods import Period, PeriodError, parse_month, parse_period
from printlab.services.exports import export, writers
from printlab.services.jobs import workflow
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor

from .conftest import sign_in_client
from .factories import actor, make_staff, quote_token, submit_job
from .test_cli import _clean_env

NOVEMBER = Period(date(2026, 11, 1), date(2026, 11, 30))
INJECTED = '=HYPERLINK("http://x","y")'


@dataclass
class History:
    paid: str  # job ids
    injected: str
    before: str
    first_hour: str


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # naive UTC, as stored


def build_history(session, storage) -> History:  # type: ignore[no-untyped-def]
    """Four jobs around November 2026 in Chicago (daylight saving ends there on 1 November at 02:00).

    - before: submitted 31 October 23:30 CDT = 1 November 04:30 UTC (a UTC November day, but October's)
    - first_hour: submitted 1 November 00:30 CDT = 05:30 UTC (November's first hour)
    - paid: submitted 2 November 09:00 CST, printed and collected on 3 November at 16:00 CST
    - injected: a student named like a formula, submitted 30 November 23:30 CST = 1 December 05:30 UTC
      (November's last half hour) and rejected on 1 December (outside the period)
    """
    make_staff(session)
    who = actor()
    before = submit_job(
        session,
        storage,
        now=utc(2026, 11, 1, 4, 30),
        student_name="Olive October",
        student_email="olive@example.edu",
    )
    first = submit_job(
        session,
        storage,
        now=utc(2026, 11, 1, 5, 30),
        student_name="Zoë Müller",
        student_email="zoe@example.edu",
    )
    paid = submit_job(session, storage, now=utc(2026, 11, 2, 15, 0), student_name="Jane Doe")
    workflow.approve(
        session, storage, paid.id, actor=who, weight_g=42, time_hours=2.5, now=utc(2026, 11, 2, 16, 0)
    )
    workflow.confirm(session, storage, quote_token(session, paid.id), now=utc(2026, 11, 2, 17, 0))
    workflow.start_printing(session, storage, paid.id, actor=who, now=utc(2026, 11, 2, 18, 0))
    workflow.complete(session, storage, paid.id, actor=who, now=utc(2026, 11, 2, 21, 0))
    workflow.record_pickup(
        session,
        storage,
        paid.id,
        actor=Actor("Alex Rivera", "FRONT-DESK"),
        method="CASH",
        weighed_g=40,
        payment_reference="-R-17",
        now=utc(2026, 11, 3, 22, 0),
    )
    injected = submit_job(
        session, storage, now=utc(2026, 12, 1, 5, 30), student_name=INJECTED, student_email="x@example.edu"
    )
    workflow.reject(
        session, storage, injected.id, actor=who, reasons=["Walls too thin"], now=utc(2026, 12, 1, 15, 0)
    )
    return History(paid=paid.id, injected=injected.id, before=before.id, first_hour=first.id)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV starts with a UTF-8 byte-order mark for Excel"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def csv_of(session, kind: str, period: Period = NOVEMBER) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return read_csv(b"".join(export.csv_stream(session, kind, period)))


# -- periods (pure) -----------------------------------------------------------------------------


def test_a_period_is_read_with_a_message_for_each_wrong_field():
    assert parse_period("2026-11-01", "2026-11-30") == NOVEMBER
    assert parse_period("2026-11-05", "2026-11-05").first == date(2026, 11, 5)
    with pytest.raises(PeriodError) as wrong:
        parse_period("2026-11-31", "")
    assert wrong.value.errors == {
        "from": "Use a date like 2026-09-01.",
        "to": "Give the last day of the period (like 2026-09-01).",
    }
    with pytest.raises(PeriodError) as backwards:
        parse_period("2026-11-30", "2026-11-01")
    assert list(backwards.value.errors) == ["to"] and "ends before it starts" in str(backwards.value)
    with pytest.raises(PeriodError):
        parse_period("1999-12-31", "2026-01-01")
    assert parse_month("2026-12") == Period(date(2026, 12, 1), date(2026, 12, 31))
    assert parse_month("2028-02").last == date(2028, 2, 29)
    for bad in ("2026-13", "2026-1", "november", "", None):
        with pytest.raises(PeriodError):
            parse_month(bad)


def test_text_that_a_spreadsheet_would_run_is_neutralised():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", INJECTED):
        assert writers.neutralised(text) == "'" + text
    for text in ("Jane", "1-2", "a=b", " =x", ""):
        assert writers.neutralised(text) == text


# -- CSV ----------------------------------------------------------------------------------------


def test_jobs_csv_of_november_in_chicago(session, storage):
    h = build_history(session, storage)
    rows = csv_of(session, "jobs")
    assert rows[0] == [
        "Job",
        "Submitted",
        "Student",
        "Email",
        "Discipline",
        "Class",
        "Method",
        "Printer",
        "Colour",
        "Status",
        "Weight (g)",
        "Print time (h)",
        "Quoted ($)",
        "Paid ($)",
        "Last change",
        "Last changed by",
        "Job ID",
    ]
    common = ["Engineering", "ME 2110", "Filament", "Prusa MK4S", "True Red"]
    first, paid, injected = rows[1:]
    assert first == [
        h.first_hour[:6], "2026-11-01 00:30:00-05:00", "Zoë Müller", "zoe@example.edu", *common, "Uploaded",
        "", "", "", "", "2026-11-01 00:30:00-05:00", "", h.first_hour,
    ]  # fmt: skip
    assert paid == [
        h.paid[:6], "2026-11-02 09:00:00-06:00", "Jane Doe", "jane.doe@example.edu", *common,
        "Paid & Picked Up", "42.0", "2.5", "4.20", "4.00", "2026-11-03 16:00:00-06:00", "Alex Rivera", h.paid,
    ]  # fmt: skip
    assert injected == [
        h.injected[:6], "2026-11-30 23:30:00-06:00", "'" + INJECTED, "x@example.edu", *common, "Rejected",
        "", "", "", "", "2026-12-01 09:00:00-06:00", "Alex Rivera", h.injected,
    ]  # fmt: skip
    # The day before and the day after are their own periods.
    october = csv_of(session, "jobs", Period(date(2026, 10, 31), date(2026, 10, 31)))
    assert [row[-1] for row in october[1:]] == [h.before]
    assert csv_of(session, "jobs", Period(date(2026, 12, 1), date(2026, 12, 1)))[1:] == []


def test_payments_csv_of_november(session, storage):
    h = build_history(session, storage)
    rows = csv_of(session, "payments")
    assert rows[0] == [
        "Recorded", "Job", "Student", "Kind", "Method", "Account code", "Amount ($)", "List price ($)",
        "Discount ($)", "Quoted ($)", "Weighed (g)", "Kept the quote", "Reason", "Reference", "Picked up by",
        "Recorded by", "Workstation", "Job ID",
    ]  # fmt: skip
    assert rows[1:] == [
        [
            "2026-11-03 16:00:00-06:00", h.paid[:6], "Jane Doe", "Payment at pickup", "Cash", "", "4.00", "4.00", "", "4.20",
            "40.0", "No", "", "'-R-17", "Jane Doe", "Alex Rivera", "FRONT-DESK", h.paid,
        ]
    ]  # fmt: skip


def test_a_reverted_pickup_is_a_reversal_row_and_the_job_paid_nothing(session, storage):
    """A revert adds a REVERSAL row (migration 0010): the payments export shows both rows, the jobs
    export the balance, which is their sum."""
    h = build_history(session, storage)
    workflow.revert(
        session, storage, h.paid, actor=actor(), reason="Wrong job handed over", now=utc(2026, 11, 4, 14, 0)
    )
    payments = csv_of(session, "payments")
    assert [(r[0], r[3], r[6], r[12], r[15]) for r in payments[1:]] == [
        ("2026-11-03 16:00:00-06:00", "Payment at pickup", "4.00", "", "Alex Rivera"),
        (
            "2026-11-04 08:00:00-06:00",
            "Reversed (pickup reverted)",
            "-4.00",
            "Wrong job handed over",
            "Alex Rivera",
        ),
    ]
    assert payments[2][11] == ""  # "Kept the quote" belongs to a charge
    paid = next(row for row in csv_of(session, "jobs") if row[-1] == h.paid)
    assert (paid[9], paid[13]) == ("Completed", "0.00")
    # The period that holds only the pickup shows only the charge.
    first_days = csv_of(session, "payments", Period(date(2026, 11, 1), date(2026, 11, 3)))
    assert [r[3] for r in first_days[1:]] == ["Payment at pickup"]


def test_events_csv_is_the_history_in_sentences(session, storage):
    h = build_history(session, storage)
    rows = csv_of(session, "events")
    assert rows[0] == ["Time", "Job", "Student", "Event", "Staff", "Workstation", "Job ID"]
    body = [row[:6] for row in rows[1:]]
    p = h.paid[:6]
    staff = ["Alex Rivera", "LAB-PC-1"]
    assert body == [
        ["2026-11-01 00:30:00-05:00", h.first_hour[:6], "Zoë Müller", "Submitted by the student", "", ""],
        ["2026-11-02 09:00:00-06:00", p, "Jane Doe", "Submitted by the student", "", ""],
        ["2026-11-02 10:00:00-06:00", p, "Jane Doe", "Approved by Alex Rivera — quote $4.20 emailed", *staff],
        ["2026-11-02 11:00:00-06:00", p, "Jane Doe", "Confirmed by the student", "", ""],
        ["2026-11-02 12:00:00-06:00", p, "Jane Doe", "Moved from Ready to Print to Printing by Alex Rivera — on the Prusa MK4S", *staff],
        ["2026-11-02 15:00:00-06:00", p, "Jane Doe", "Moved from Printing to Completed by Alex Rivera", *staff],
        [
            "2026-11-03 16:00:00-06:00", p, "Jane Doe",
            "Moved from Completed to Paid & Picked Up by Alex Rivera — paid $4.00 by Cash", "Alex Rivera", "FRONT-DESK",
        ],
        ["2026-11-30 23:30:00-06:00", h.injected[:6], "'" + INJECTED, "Submitted by the student", "", ""],
    ]  # fmt: skip
    assert all("StatusChanged" not in row[3] for row in rows)


# -- XLSX ---------------------------------------------------------------------------------------


def test_jobs_xlsx_has_typed_cells_a_frozen_header_and_widths(session, storage, tmp_path):
    h = build_history(session, storage)
    path = tmp_path / "jobs.xlsx"
    assert export.write_xlsx(session, "jobs", NOVEMBER, str(path)) == 3
    sheet = load_workbook(path).active
    assert sheet.title == "Jobs"
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["C"].width > 20  # the student's name has room
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Job", "Submitted", "Student", "Email") and rows[0][9] == "Status"
    paid = next(row for row in sheet.iter_rows(min_row=2) if row[16].value == h.paid)
    submitted, weight, hours, quoted, charged = paid[1], paid[10], paid[11], paid[12], paid[13]
    assert submitted.value == datetime(2026, 11, 2, 9, 0)  # lab time, a real date
    assert submitted.is_date and submitted.number_format == "yyyy-mm-dd hh:mm"
    assert (quoted.value, charged.value) == (4.2, 4.0)
    assert quoted.data_type == "n" and quoted.number_format == "#,##0.00"
    assert (weight.value, hours.value) == (42.0, 2.5) and weight.data_type == "n"
    assert paid[9].value == "Paid & Picked Up"
    injected = next(row for row in sheet.iter_rows(min_row=2) if row[16].value == h.injected)
    # In XLSX a formula-looking name is a text cell, exactly as typed (never a formula).
    assert injected[2].value == INJECTED and injected[2].data_type == "s"
    first = next(row for row in sheet.iter_rows(min_row=2) if row[16].value == h.first_hour)
    assert first[1].value == datetime(2026, 11, 1, 0, 30) and first[12].value is None


def test_events_and_payments_xlsx(session, storage, tmp_path):
    build_history(session, storage)
    for kind, count in (("events", 8), ("payments", 1)):
        path = tmp_path / f"{kind}.xlsx"
        with path.open("wb") as target:  # a binary file as well as a path
            assert export.write_xlsx(session, kind, NOVEMBER, target) == count
        sheet = load_workbook(path).active
        assert sheet.freeze_panes == "A2" and sheet.max_row == count + 1
        assert sheet["A2"].is_date and sheet["A2"].number_format == "yyyy-mm-dd hh:mm"
    payments = load_workbook(tmp_path / "payments.xlsx").active
    assert (payments["D2"].value, payments["G2"].value, payments["G2"].number_format) == (
        "Payment at pickup",
        4.0,
        "#,##0.00",
    )


# -- the command --------------------------------------------------------------------------------


def run_export(lab_env, *args: str):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from printlab.cli import main

    return CliRunner().invoke(main, ["export", *args], env=_clean_env(lab_env), catch_exceptions=False)


def test_export_command_writes_csv_to_stdout_and_xlsx_to_a_file(session, storage, lab_env, tmp_path):
    h = build_history(session, storage)
    result = run_export(lab_env, "jobs", "--from", "2026-11-01", "--to", "2026-11-30")
    assert result.exit_code == 0, result.output
    assert [row[-1] for row in read_csv(result.stdout_bytes)[1:]] == [h.first_hour, h.paid, h.injected]
    target = tmp_path / "out" / "events.xlsx"
    target.parent.mkdir()
    result = run_export(
        lab_env,
        "events",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--format",
        "xlsx",
        "--output",
        str(target),
    )
    assert result.exit_code == 0, result.output
    assert load_workbook(target).active.max_row == 1 + 5
    assert [p.name for p in target.parent.iterdir()] == ["events.xlsx"]  # nothing left beside it
    csv_file = tmp_path / "payments.csv"
    result = run_export(
        lab_env, "payments", "--from", "2026-11-01", "--to", "2026-11-30", "--output", str(csv_file)
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert read_csv(csv_file.read_bytes())[1][6] == "4.00"


def test_export_command_writes_xlsx_to_a_redirected_stdout(session, storage, lab_env, tmp_path):
    build_history(session, storage)
    result = run_export(lab_env, "payments", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xlsx")
    assert result.exit_code == 0, result.output
    path = tmp_path / "piped.xlsx"
    path.write_bytes(result.stdout_bytes)
    assert load_workbook(path).active["G2"].value == 4.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--output", "/no/such/folder/x.csv"], "--output: the folder /no/such/folder doesn't exist."),
        (["--from", "2026-11-30", "--to", "2026-11-01"], "ends before it starts"),
        (["--from", "2026-02-30", "--to", "2026-03-01"], "--from: Use a date like 2026-09-01."),
        (["--from", "yesterday", "--to", "2026-03-01"], "--from: Use a date like 2026-09-01."),
    ],
)
def test_export_command_refuses_bad_input_with_exit_status_2(session, lab_env, tmp_path, args, message):
    target = tmp_path / "never.csv"
    period = [] if "--from" in args else ["--from", "2026-11-01", "--to", "2026-11-30"]
    output = [] if "--output" in args else ["--output", str(target)]
    result = run_export(lab_env, "jobs", *period, *args, *output)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not target.exists()


# -- the download -------------------------------------------------------------------------------

ADMIN_PC, ADMIN_PASSWORD = "FRONT-DESK", "a-long-password-for-the-front-desk"


def admin_client(app, session):  # type: ignore[no-untyped-def]
    workstations.add_workstation(session, ADMIN_PC, ADMIN_PASSWORD, is_admin=True)
    return sign_in_client(app.test_client(), session, ADMIN_PC, ADMIN_PASSWORD)


def test_admin_downloads_a_streamed_csv_and_xlsx(app, session, storage, tmp_path):
    h = build_history(session, storage)
    client = admin_client(app, session)
    answer = client.get("/reports/export/jobs.csv?from=2026-11-01&to=2026-11-30")
    assert answer.status_code == 200
    assert answer.is_streamed
    assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert answer.headers["Content-Disposition"] == (
        "attachment; filename=printlab-jobs-2026-11-01-to-2026-11-30.csv"
    )
    assert [row[-1] for row in read_csv(answer.get_data())[1:]] == [h.first_hour, h.paid, h.injected]
    answer = client.get("/reports/export/payments.xlsx?from=2026-11-01&to=2026-11-30")
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].endswith("printlab-payments-2026-11-01-to-2026-11-30.xlsx")
    path = tmp_path / "download.xlsx"
    path.write_bytes(answer.get_data())
    answer.close()
    assert load_workbook(path).active["G2"].value == 4.0
    page = client.get("/reports/exports").get_data(as_text=True)
    assert 'action="/reports/export"' in page or "/reports/export/" in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-11-30&to=2026-11-01", "ends before it starts"),
        ("from=2026-11-31&to=2026-12-01", "Use a date like 2026-09-01."),
        ("to=2026-12-01", "Give the first day of the period"),
    ],
)
def test_bad_dates_get_a_page_that_says_what_is_wrong(app, session, query, message):
    client = admin_client(app, session)
    answer = client.get(f"/reports/export/jobs.csv?{query}")
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("text/html")
    assert message in answer.get_data(as_text=True)


def test_unknown_kind_or_format_is_not_found(app, session):
    client = admin_client(app, session)
    assert client.get("/reports/export/students.csv?from=2026-11-01&to=2026-11-30").status_code == 404
    assert client.get("/reports/export/jobs.pdf?from=2026-11-01&to=2026-11-30").status_code == 404


def test_a_staff_workstation_may_not_download_money(signed_in_client):
    answer = signed_in_client.get("/reports/export/payments.csv?from=2026-11-01&to=2026-11-30")
    assert answer.status_code == 403
    assert signed_in_client.get("/reports/exports").status_code == 403


def test_signed_out_is_sent_to_sign_in(client):
    answer = client.get("/reports/export/jobs.csv?from=2026-11-01&to=2026-11-30")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def test_no_file_is_left_behind_by_an_xlsx_download(app, session, storage, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    build_history(session, storage)
    client = admin_client(app, session)
    before = set(Path(tmp_path).iterdir())
    answer = client.get("/reports/export/events.xlsx?from=2026-11-01&to=2026-11-30")
    assert answer.status_code == 200 and answer.get_data()[:2] == b"PK"
    answer.close()
    assert set(Path(tmp_path).iterdir()) == before
