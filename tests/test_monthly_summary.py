"""The monthly summary email: queued once on the 1st (lab time), last month beside the month before, sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from printlab.domain.catalog import LabDetails
from printlab.models import LabSetting, OutboxMessage
from printlab.services import mail
from printlab.services.jobs import workflow
from printlab.services.lab.catalog import encode_setting, load_catalog
from printlab.services.mail.render import Links
from printlab.services.mail.transport import SmtpTransport
from printlab.services.upkeep import monthly_summary, sweeps

from .factories import actor, make_staff, quote_token, submit_job
from .mail_server import SmtpServer


def utc(*parts: int) -> datetime:
    return datetime(*parts)  # naive UTC, as stored


def history(session, storage) -> None:  # type: ignore[no-untyped-def]
    """October: one job submitted. November: two submitted, one printed and paid $4.00, one left unpaid."""
    make_staff(session)
    who = actor()
    submit_job(
        session, storage, now=utc(2026, 10, 14, 15, 0), student_name="Ana Lopez", student_email="a@x.edu"
    )
    for name, email, model, paid in (
        ("Jane Doe", "j@x.edu", "stl_binary_20mm_xyz_cube.stl", True),
        ("Ben Ode", "b@x.edu", "box.obj", False),
    ):
        job = submit_job(
            session, storage, model, now=utc(2026, 11, 3, 15, 0), student_name=name, student_email=email
        )
        workflow.approve(
            session, storage, job.id, actor=who, weight_g=40, time_hours=2, now=utc(2026, 11, 3, 16, 0)
        )
        workflow.confirm(session, storage, quote_token(session, job.id), now=utc(2026, 11, 3, 17, 0))
        workflow.start_printing(session, storage, job.id, actor=who, now=utc(2026, 11, 4, 15, 0))
        workflow.complete(session, storage, job.id, actor=who, now=utc(2026, 11, 4, 19, 0))
        if paid:
            workflow.record_pickup(
                session,
                storage,
                job.id,
                actor=who,
                method="CASH",
                keep_quote=True,
                now=utc(2026, 11, 5, 15, 0),
            )


def summaries(session) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    session.rollback()
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.template == "monthly_summary")))


def test_last_month_is_summarised_once_on_the_first_of_the_month_in_lab_time(session, storage):
    history(session, storage)
    # 1 December 05:30 UTC is still 30 November in Chicago: the summary due is October's.
    assert monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 1, 5, 30)) == 1
    assert monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 1, 5, 45)) == 0  # once a month
    assert monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 1, 6, 30)) == 1  # 1 December
    assert monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 2, 6, 30)) == 0

    october, row = summaries(session)
    assert october.context["month_name"] == "October 2026"
    assert row.job_id is None and row.recipient == "makerspace@example.edu"
    context = row.context
    assert (context["month_name"], context["previous_name"]) == ("November 2026", "October 2026")
    figures = {f["label"]: (f["value"], f["previous"]) for f in context["figures"]}
    assert figures["Submissions"] == ("2", "1")
    assert figures["Prints completed"] == ("2", "0")
    assert figures["Revenue"] == ("$4.00", "$0.00")  # the quote kept: 40 g of filament
    assert figures["Pickups paid"] == ("1", "0")
    assert [(u["student"], u["days"]) for u in context["unpaid"]] == [("Ben Ode", 26)]
    assert context["reports_path"] == "/reports?period=custom&from=2026-11-01&to=2026-11-30"
    assert "/reports/export/jobs.csv?from=2026-11-01&to=2026-11-30" in [e["path"] for e in context["exports"]]


def test_a_lab_with_no_jobs_before_the_month_gets_no_summary(session, storage):
    make_staff(session)
    submit_job(session, storage, now=utc(2026, 12, 1, 16, 0))
    assert monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 1, 17, 0)) == 0


def test_the_sweep_sends_it_to_every_listed_address_through_the_mail_server(session, storage):
    history(session, storage)
    catalog = load_catalog(session)

    lab = LabDetails(**{**catalog.lab.__dict__, "summary_emails": "manager@x.edu, finance@x.edu"})
    session.add(LabSetting(key="lab", value=encode_setting("lab", lab), updated_at=utc(2026, 11, 1)))
    session.commit()
    report = sweeps.run_sweeps(session, storage, now=utc(2026, 12, 1, 14, 0))
    assert report.summaries == 2 and not report.errors
    server = SmtpServer().start()
    try:
        mailer = mail.Mailer(
            transport=SmtpTransport(server.settings()),
            links=Links("https://print.example.edu", "x" * 40),
            mail_from=None,
            identity="test:summary",
        )
        mail.deliver_due(session, mailer, now=utc(2026, 12, 1, 14, 1))
        received = [
            m for m in server.inbox.messages() if m.message["X-PrintLab-Template"] == "monthly_summary"
        ]
    finally:
        server.stop()
    assert sorted(m.message["To"] for m in received) == ["finance@x.edu", "manager@x.edu"]
    text = received[0].text
    assert "Submissions: 2 (October 2026: 1)" in text
    assert "Ben Ode" in text and "Jane Doe" not in text  # only the unpaid job is listed
    assert "https://print.example.edu/reports/export/jobs.csv?from=2026-11-01&to=2026-11-30" in text
    assert received[0].message["Subject"] == "Makerspace 3D Print Lab: November 2026 in numbers"


def test_unpaid_jobs_beyond_the_list_are_counted(session, storage, monkeypatch):
    history(session, storage)
    monkeypatch.setattr(monthly_summary, "UNPAID_IN_EMAIL", 0)
    monthly_summary.send_monthly_summary(session, now=utc(2026, 12, 1, 14, 0))
    (row,) = summaries(session)
    assert row.context["unpaid"] == [] and row.context["unpaid_more"] == 1
