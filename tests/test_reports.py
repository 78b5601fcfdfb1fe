"""Reports: every figure of a known history, built through the workflow with a fake clock (both databases)."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import select

from printlab import config as config_module
from printlab.db import alembic_config, write_transaction
from printlab.domain.reports import choose_period
from printlab.domain.statuses import Status
from printlab.models import STAGE_HOURS_COLUMNS, CountedAction, JobMilestone
from printlab.services.jobs import student_actions, workflow
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor, Student
from printlab.services.views.reports import OWN_WORDS, Filters, build_report

from .factories import STAFF, make_staff, quote_token, submit_job

SAM = "Sam Chen"
ADMIN_PC, STAFF_PC, PASSWORD = "ADMIN-PC", "LAB-PC-1", "a-long-password-1"
ZONE = "America/Chicago"  # the catalog's default; daylight saving began on 8 Mar 2026 at 02:00
NOW = datetime(2026, 3, 16, 12, 0)  # naive UTC, like every stored time
#: Mon 2 Mar – Sun 15 Mar 2026 in Chicago: [06:00 UTC on 2 Mar, 05:00 UTC on 16 Mar).
PERIOD = {"period": "custom", "from": "2026-03-02", "to": "2026-03-15"}


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute)


def alex(workstation: str = STAFF_PC) -> Actor:
    return Actor(STAFF, workstation)


def sam() -> Actor:
    return Actor(SAM, STAFF_PC)


def _new(session, storage, when, **form):  # type: ignore[no-untyped-def]
    # Each job its own student: the same file from the same address would be a duplicate.
    form.setdefault("student_email", f"student.{when:%m%d%H%M}@example.edu")
    return submit_job(session, storage, now=when, **form).id


def _approve(session, storage, job_id, when, weight=42, hours=2.2, **more):  # type: ignore[no-untyped-def]
    workflow.approve(
        session, storage, job_id, actor=alex(), weight_g=weight, time_hours=hours, now=when, **more
    )


def _confirm(session, storage, job_id, when):  # type: ignore[no-untyped-def]
    workflow.confirm(session, storage, quote_token(session, job_id), now=when)


def build_history(session, storage) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The lab's history in Feb and Mar 2026 (times UTC); comments give each job's part in the figures."""
    make_staff(session)
    make_staff(session, SAM)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    jobs: dict[str, str] = {}
    # A: the usual path, its pickup reverted (a reversal row) and recorded again.
    a = jobs["A"] = _new(session, storage, at(3, 15))
    _approve(session, storage, a, at(3, 17))
    _confirm(session, storage, a, at(4, 15))
    workflow.start_printing(session, storage, a, actor=sam(), now=at(5, 15))
    workflow.complete(session, storage, a, actor=sam(), now=at(5, 19))
    workflow.record_pickup(session, storage, a, actor=alex(), method="CASH", weighed_g=40, now=at(6, 19))
    workflow.revert(session, storage, a, actor=alex(), reason="Wrong job scanned", now=at(6, 20))
    workflow.record_pickup(session, storage, a, actor=alex(), method="CASH", weighed_g=50, now=at(6, 21))
    # B: completed by mistake and reverted, completed for real at 00:30 CDT on Monday 9 Mar.
    b = jobs["B"] = _new(
        session, storage, at(4, 15), student_name="Ana Lopez", student_email="ana@example.edu"
    )
    _approve(session, storage, b, at(4, 16))
    _confirm(session, storage, b, at(4, 20))
    workflow.start_printing(session, storage, b, actor=sam(), now=at(5, 20))
    workflow.complete(session, storage, b, actor=sam(), now=at(6, 0))
    workflow.revert(session, storage, b, actor=sam(), reason="Still printing", now=at(6, 1))
    workflow.complete(session, storage, b, actor=sam(), now=at(9, 5, 30))
    # C: on the Prusa XL; an admin moved it from Pending straight to Printing.
    c = jobs["C"] = _new(session, storage, at(5, 15), class_number="ARCH 3010")
    _approve(session, storage, c, at(5, 16), weight=100, hours=5, printer="Prusa XL")
    workflow.override_status(
        session,
        storage,
        c,
        actor=alex(ADMIN_PC),
        target="PRINTING",
        reason="Printed at the desk",
        now=at(6, 16),
    )
    workflow.complete(session, storage, c, actor=sam(), now=at(7, 16))
    workflow.record_pickup(session, storage, c, actor=alex(), method="CASH", weighed_g=100, now=at(8, 16))
    # D: rejected for two reasons, then archived by the retention sweep.
    d = jobs["D"] = _new(session, storage, at(2, 7))
    workflow.reject(
        session, storage, d, actor=sam(), reasons=["Walls too thin", "Not scaled correctly"], now=at(2, 9)
    )
    workflow.archive(session, storage, d, actor=Actor.system(), now=at(10, 12))
    # E: approved, then cancelled by staff.
    e = jobs["E"] = _new(session, storage, at(10, 15))
    _approve(session, storage, e, at(10, 16))
    workflow.cancel(session, storage, e, actor=alex(), reason="The student withdrew it", now=at(11, 15))
    # F (previous period): rejected with a listed reason and one in the staff member's words.
    f = jobs["F"] = _new(session, storage, at(20, 15, month=2))
    workflow.reject(
        session,
        storage,
        f,
        actor=sam(),
        reasons=["Walls too thin"],
        other_reason="Please add a base",
        now=at(20, 16, month=2),
    )
    # G (previous period) completed on 25 Feb, collected at 01:00 CST on 2 Mar: inside this period.
    g = jobs["G"] = _new(session, storage, at(23, 15, month=2))
    _approve(session, storage, g, at(23, 18, month=2))
    _confirm(session, storage, g, at(24, 18, month=2))
    workflow.start_printing(session, storage, g, actor=sam(), now=at(25, 18, month=2))
    workflow.complete(session, storage, g, actor=sam(), now=at(25, 22, month=2))
    workflow.record_pickup(session, storage, g, actor=alex(), method="CASH", weighed_g=40, now=at(2, 7))
    # Uploads at the edges: 23:30 CDT on 15 Mar (in), 00:30 CDT on 16 Mar (out), 23:30 CST on 1 Mar (before).
    jobs["I"] = _new(session, storage, at(16, 4, 30))
    jobs["H"] = _new(session, storage, at(16, 5, 30))
    jobs["J"] = _new(session, storage, at(2, 5, 30))
    return jobs


def the_period():  # type: ignore[no-untyped-def]
    return choose_period("custom", date(2026, 3, 16), ZONE, from_day="2026-03-02", to_day="2026-03-15")


def test_every_figure_of_a_known_history(session, storage):
    build_history(session, storage)
    report = build_report(session, the_period(), Filters(), now=NOW)

    assert (report.period.start, report.period.end) == (at(2, 6), at(16, 5))  # 13 days and 23 hours
    assert (report.previous.first_day, report.previous.last_day) == (date(2026, 2, 16), date(2026, 3, 1))
    figures = {
        "submissions": (6, 3),  # A B C D E I | F G J
        "approvals": (4, 1),  # A B C E | G  (an approval's two events count once)
        "rejections": (1, 1),  # D | F
        "cancellations": (1, 0),  # E
        "completed": (3, 1),  # A, C, B (its first completion was reverted) | G
        "pickups": (3, 0),  # A (its reverted first pickup taken back), C, G
    }
    for name, (now, before) in figures.items():
        figure = getattr(report, name)
        assert (figure.value, figure.previous) == (now, before), name
    assert report.rejection_reasons == [
        ("Not scaled correctly", 1, 0),
        ("Walls too thin", 1, 1),
        (OWN_WORDS, 0, 1),
    ]
    # Monday 9 Mar starts at 05:00 UTC (CDT): B's completion at 05:30 UTC is in the second week.
    assert report.throughput == [(date(2026, 3, 2), 2), (date(2026, 3, 9), 1)]
    stages = {s.label: s for s in report.stages}
    expected = {
        # label: (jobs, median, p90, previous jobs, previous median, previous p90) — nearest rank, hours
        "Upload to approval": (4, 1.0, 2.0, 1, 3.0, 3.0),
        "Approval to confirmation": (2, 4.0, 22.0, 1, 24.0, 24.0),  # C skipped it (override)
        "Confirmation to printing": (2, 24.0, 24.0, 1, 24.0, 24.0),
        "Printing to completed": (3, 24.0, 81.5, 1, 4.0, 4.0),  # B from its first start
        "Completed to pickup": (3, 26.0, 105.0, 0, None, None),  # A's second pickup; G's 105 h
    }
    for label, (n, median, p90, pn, pmedian, pp90) in expected.items():
        s = stages[label]
        got = (
            s.jobs,
            s.median_hours,
            s.p90_hours,
            s.previous_jobs,
            s.previous_median_hours,
            s.previous_p90_hours,
        )
        assert got == (n, median, p90, pn, pmedian, pp90), label
    printers = {(p, m): (h.value, g.value, h.previous, g.previous) for p, m, h, g in report.printer_use}
    assert printers == {
        ("Prusa MK4S", "Filament"): (5.0, 84.0, 2.5, 42.0),  # A and B | G: 2.5 h (2.2 rounded up), 42 g
        ("Prusa XL", "Filament"): (5.0, 100.0, 0.0, 0.0),  # C
    }
    assert [(m, h.value, g.value, h.previous, g.previous) for m, h, g in report.method_use] == [
        ("Filament", 10.0, 184.0, 2.5, 42.0)
    ]
    assert (report.revenue.value, report.revenue.previous) == (19.0, 0.0)  # 5.00 + 10.00 + 4.00
    assert report.average_ticket.value == 6.33
    assert report.unpaid_count == 1 and report.unpaid_owed == Decimal("4.20")
    assert [(u.student_name, u.completed_at, u.owed) for u in report.unpaid] == [
        ("Ana Lopez", at(9, 5, 30), Decimal("4.20"))
    ]
    # A: 4 approvals, the override, the cancellation, three pickups and a revert; G's pickup.
    assert report.staff_activity == [(STAFF, 11, 1), (SAM, 8, 3)]
    queues = {status: counts for status, counts in report.queue_ages}
    assert queues[Status.UPLOADED] == [2, 0, 0, 0, 1]  # I and H since this morning; J two weeks
    assert queues[Status.COMPLETED] == [0, 0, 0, 1, 0]  # B for 7 days 6.5 hours
    assert queues[Status.PENDING] == queues[Status.PRINTING] == queues[Status.READYTOPRINT] == [0] * 5


def test_filters_narrow_every_figure(session, storage):
    build_history(session, storage)
    on_xl = build_report(session, the_period(), Filters(printer="Prusa XL"), now=NOW)
    assert (on_xl.submissions.value, on_xl.approvals.value, on_xl.completed.value) == (1, 1, 1)
    assert (on_xl.revenue.value, on_xl.pickups.value, on_xl.unpaid_count) == (10.0, 1, 0)
    assert on_xl.staff_activity == [(STAFF, 3, 0), (SAM, 1, 0)]  # approve, override, pickup | complete
    by_class = build_report(session, the_period(), Filters(class_number="arch 3010"), now=NOW)
    assert by_class.submissions.value == 1
    # C's completion and its stage times, from its milestone row's copy of the class.
    assert (by_class.completed.value, by_class.completed.previous) == (1, 0)
    assert [(p, h.value) for p, _m, h, _g in by_class.printer_use] == [("Prusa XL", 5.0)]
    assert [s.jobs for s in by_class.stages] == [1, 0, 0, 1, 1]
    by_discipline = build_report(session, the_period(), Filters(discipline="Engineering"), now=NOW)
    assert (by_discipline.completed.value, by_discipline.completed.previous) == (3, 1)
    assert (by_discipline.approvals.value, by_discipline.approvals.previous) == (4, 1)
    elsewhere = build_report(session, the_period(), Filters(discipline="Architecture"), now=NOW)
    assert (elsewhere.completed.value, elsewhere.approvals.value, elsewhere.submissions.value) == (0, 0, 0)
    resin = build_report(session, the_period(), Filters(method="Resin"), now=NOW)
    assert (resin.submissions.value, resin.completed.value, resin.revenue.value) == (0, 0, 0.0)
    assert all(s.jobs == 0 and s.median_hours is None for s in resin.stages)


# -- the page and the JSON ------------------------------------------------------------------------


@pytest.fixture
def web(lab_env, session, storage):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    build_history(session, storage)
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    yield app
    app.extensions["printlab"].engine.dispose()


def signed_in(app, workstation):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert client.post("/login", data={"workstation": workstation, "password": PASSWORD}).status_code == 303
    return client


def page_text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


def test_admin_sees_money_on_the_page_and_in_json(web):
    admin = signed_in(web, ADMIN_PC)
    page = admin.get("/reports", query_string=PERIOD)
    assert page.status_code == 200
    words = " ".join(page_text(page).split())
    assert "Revenue $19.00 $0.00" in words and "Average ticket $6.33" in words
    assert "1 completed job waits to be paid for and collected, $4.20 owed" in words
    assert "Ana Lopez" in words and "09 Mar 2026 00:30 CDT" in words  # lab time, after the change
    assert "Walls too thin" in words and "Completed to pickup" in words
    data = admin.get("/reports.json", query_string=PERIOD).get_json()
    assert data["revenue_usd"] == {"value": "19.00", "previous": "0.00", "change_percent": None}
    assert data["average_ticket_usd"]["value"] == "6.33"
    assert data["unpaid_completed"]["owed_usd"] == "4.20"
    assert data["unpaid_completed"]["list"][0]["owed_usd"] == "4.20"
    assert data["submissions"] == {"value": 6, "previous": 3, "change_percent": 100.0}
    assert data["period"]["start_utc"] == "2026-03-02T06:00:00Z"
    assert data["period"]["end_utc"] == "2026-03-16T05:00:00Z"
    assert data["throughput_per_week"] == [
        {"week_starting": "2026-03-02", "completed": 2},
        {"week_starting": "2026-03-09", "completed": 1},
    ]
    assert data["turnaround"][3]["p90_hours"] == 81.5


def test_a_non_admin_workstation_sees_no_money(web):
    staff = signed_in(web, STAFF_PC)
    page = staff.get("/reports", query_string=PERIOD)
    body = page_text(page)
    assert page.status_code == 200 and "Submissions" in body
    assert "$" not in body and "Revenue" not in body and "owed" not in body and "Owed" not in body
    data = staff.get("/reports.json", query_string=PERIOD).get_json()
    assert data["submissions"]["value"] == 6
    flat = repr(data)
    assert "usd" not in flat and "19.00" not in flat and "4.20" not in flat


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"period": "custom", "from": "2026-03-15", "to": "2026-03-02"},
            "to",
            "The end date is before the start date.",
        ),
        (
            {"period": "custom", "from": "yesterday", "to": "2026-03-02"},
            "from",
            "Start date: use a date like 2026-09-01.",
        ),
        (
            {"period": "custom", "from": "2026-02-30", "to": "2026-03-02"},
            "from",
            "Start date: use a date like 2026-09-01.",
        ),
        (
            {"period": "custom", "from": "1900-01-01", "to": "2026-03-02"},
            "from",
            "Start date: use a date between the years 2000 and 2999.",
        ),
        (
            {"period": "custom", "from": "2026-03-01"},
            "from",
            "For custom dates, give both a start and an end date.",
        ),
        ({"period": "fortnight"}, "period", "Choose a period from the list."),
        ({"printer": "Ultimaker 9000"}, "printer", "Choose a printer from the list."),
        ({"method": "Laser"}, "method", "Choose a print method from the list."),
        ({"discipline": "Astrology"}, "discipline", "Choose a discipline from the list."),
        ({"class": "ME\x002110"}, "class", "Type a class number as students write it, like ME 2110."),
    ],
)
def test_bad_periods_and_filters_are_refused_with_a_message(web, query, field, message):
    admin = signed_in(web, ADMIN_PC)
    page = admin.get("/reports", query_string=query)
    assert page.status_code == 400
    assert message in page_text(page)
    assert "Summary" not in page_text(page)
    answer = admin.get("/reports.json", query_string=query)
    assert answer.status_code == 400 and answer.get_json() == {"errors": {field: message}}


def test_reports_need_a_signed_in_workstation_and_analytics_leads_there(web):
    anonymous = web.test_client()
    assert anonymous.get("/reports").status_code == 302
    assert anonymous.get("/reports.json").status_code == 302
    staff = signed_in(web, STAFF_PC)
    moved = staff.get("/analytics?period=7d")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/reports?period=7d")
    dashboard = staff.get("/dashboard").get_data(as_text=True)
    assert 'href="/reports">Reports</a>' in dashboard
    assert staff.get("/reports").status_code == 200  # the default period: the last 30 days


def _milestone_rows(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return {
        row.job_id: (row.approved_at, row.confirmed_at, row.printing_at, row.completed_at, row.picked_up_at)
        for row in session.scalars(select(JobMilestone))
    }


def _stage_hours(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return {
        row.job_id: tuple(getattr(row, name) for name in STAGE_HOURS_COLUMNS)
        for row in session.scalars(select(JobMilestone))
    }


def test_the_migration_fills_milestones_as_the_workflow_keeps_them(session, storage, database_url):
    jobs = build_history(session, storage)
    kept = _milestone_rows(session)
    # B: its mistaken completion forgotten; C: no confirmation (an admin skipped it); D: never approved.
    assert kept[jobs["B"]] == (at(4, 16), at(4, 20), at(5, 20), at(9, 5, 30), None)
    assert kept[jobs["C"]] == (at(5, 16), None, at(6, 16), at(7, 16), at(8, 16))
    assert kept[jobs["A"]][4] == at(6, 21)  # the pickup recorded again after the revert
    assert jobs["D"] not in kept
    hours = _stage_hours(session)
    # C skipped confirmation: neither the stage into it nor the one out of it has a time.
    assert hours[jobs["C"]][1:] == (None, None, 24.0, 24.0)
    assert hours[jobs["B"]][1:4] == (4.0, 24.0, 81.5) and hours[jobs["B"]][4] is None
    session.close()
    config = alembic_config(database_url)
    command.downgrade(config, "0009")
    command.upgrade(config, "head")
    assert _milestone_rows(session) == kept
    assert _stage_hours(session) == hours


def _counted_actions(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return sorted(
        (row.event_id, row.job_id, row.timestamp, row.action, row.triggered_by)
        for row in session.scalars(select(CountedAction))
    )


def _copies(session):  # type: ignore[no-untyped-def]
    session.rollback()
    return {row.job_id: (row.discipline, row.class_number) for row in session.scalars(select(JobMilestone))}


def test_the_migration_fills_counted_actions_and_copies_as_the_workflow_writes_them(
    session, storage, database_url
):
    jobs = build_history(session, storage)
    # What the history lacks: a quote edit (no approval), a student's cancellation, a declined quote,
    # and an override that archives a job.
    k = _new(session, storage, at(12, 15))
    student_actions.cancel_by_student(
        session, storage, k, student=Student.by_status_link(k), expected=None, now=at(12, 16)
    )
    q = _new(session, storage, at(12, 17))
    _approve(session, storage, q, at(12, 18))
    workflow.edit_quote(session, storage, q, actor=sam(), weight_g=50, time_hours=3, now=at(12, 19))
    student_actions.decline_quote(session, storage, quote_token(session, q), now=at(12, 20))
    workflow.override_status(
        session,
        storage,
        jobs["J"],
        actor=alex(ADMIN_PC),
        target="ARCHIVED",
        reason="Test file",
        now=at(13, 9),
    )
    kept = _counted_actions(session)
    kinds = sorted((job_id, action, who) for _id, job_id, _at, action, who in kept)
    assert kinds == sorted(
        [
            *((jobs[j], "approval", STAFF) for j in "ABCEG"),
            (q, "approval", STAFF),
            (jobs["D"], "rejection", SAM),
            (jobs["F"], "rejection", SAM),
            (jobs["E"], "cancellation", STAFF),
            (k, "cancellation", None),
            (q, "cancellation", None),
            (jobs["J"], "archiving", STAFF),
        ]
    )
    copies = _copies(session)
    assert copies[jobs["C"]] == (copies[jobs["A"]][0], "ARCH 3010") and copies[jobs["A"]][0]
    session.close()
    config = alembic_config(database_url)
    command.downgrade(config, "0017")
    command.upgrade(config, "head")
    assert _counted_actions(session) == kept
    assert _copies(session) == copies


def test_printer_use_prefers_what_the_printer_reported(session, storage):
    jobs = build_history(session, storage)
    with write_transaction(session):
        # A printed for 4.25 h with 47.5 g; C reported its time only; B's printer reported nothing.
        a, c = session.get(JobMilestone, jobs["A"]), session.get(JobMilestone, jobs["C"])
        a.printed_hours, a.printed_g = 4.25, 47.5
        c.printed_hours = 6.5
    report = build_report(session, the_period(), Filters(), now=NOW)
    printers = {(p, m): (h.value, g.value, h.previous, g.previous) for p, m, h, g in report.printer_use}
    assert printers == {
        ("Prusa MK4S", "Filament"): (6.8, 89.5, 2.5, 42.0),  # A 4.25 h, 47.5 g; B 2.5 h, 42 g | G
        ("Prusa XL", "Filament"): (6.5, 100.0, 0.0, 0.0),  # C: 6.5 h printed, its 100 g estimate
    }
    assert [(m, h.value, g.value, h.previous, g.previous) for m, h, g in report.method_use] == [
        ("Filament", 13.2, 189.5, 2.5, 42.0)
    ]
    # The figures narrowed to the printer read the same rows.
    on_xl = build_report(session, the_period(), Filters(printer="Prusa XL"), now=NOW)
    assert [(p, h.value, g.value) for p, _m, h, g in on_xl.printer_use] == [("Prusa XL", 6.5, 100.0)]
