"""The admin Mail and Retention pages: admins only, failed emails retried by name, the mail folder shown safely."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Job, OutboxMessage, OutboxStatus
from printlab.services import mail
from printlab.services.lab.workstations import add_workstation
from printlab.services.mail import outbox
from printlab.services.mail.render import Links
from printlab.services.mail.transport import FolderTransport
from printlab.services.upkeep import sweeps
from printlab.services.views import mail_list

from .factories import make_job, make_staff, submit_job

ADMIN, STAFF_PC, PASSWORD = "FrontDesk", "LAB-PC-9", "a-long-enough-password"


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the form has no CSRF token"
    return found.group(1)


def sign_in(client, workstation: str) -> None:  # type: ignore[no-untyped-def]
    token = csrf(client.get("/login").get_data(as_text=True))
    answer = client.post(
        "/login", data={"workstation": workstation, "password": PASSWORD, "csrf_token": token}
    )
    assert answer.status_code == 303


@pytest.fixture
def admin(session, client):  # type: ignore[no-untyped-def]
    add_workstation(session, ADMIN, PASSWORD, is_admin=True)
    make_staff(session)
    sign_in(client, ADMIN)
    return client


def deliver_to_folder(session, lab_env) -> mail.DeliveryReport:  # type: ignore[no-untyped-def]
    mailer = mail.Mailer(
        transport=FolderTransport(Path(lab_env["PRINTLAB_MAIL_DIR"])),
        links=Links(lab_env["PRINTLAB_BASE_URL"], lab_env["PRINTLAB_SECRET_KEY"]),
        mail_from=None,
        identity="test:1:mail",
    )
    return mail.deliver_due(session, mailer)


def test_only_admin_workstations_see_the_mail_pages(session, client):
    assert client.get("/admin/mail").status_code == 302  # to the sign-in page
    add_workstation(session, STAFF_PC, PASSWORD)
    sign_in(client, STAFF_PC)
    for path in ("/admin/mail", "/admin/retention", "/admin/mail/folder/x.eml"):
        assert client.get(path).status_code == 403
    assert client.post("/admin/mail/1/retry", data={}).status_code in (400, 403)


def test_a_failed_email_is_listed_and_retried_under_a_staff_name(session, storage, admin):
    job = submit_job(session, storage)
    with session.begin():
        row = session.scalars(select(OutboxMessage).where(OutboxMessage.job_id == job.id)).one()
        row.status, row.attempts, row.last_error = OutboxStatus.FAILED, 7, "550 5.1.1 no such user here"
    page = admin.get("/admin/mail").get_data(as_text=True)
    failed = page.split('id="failed-heading"')[1].split('id="emails-heading"')[0]
    assert f'id="outbox-{row.id}"' in failed and "550 5.1.1 no such user here" in failed
    assert job.id[:6] in failed and "Retry" in failed and 'id="count-failed" class="bad">1<' in page

    assert (
        admin.post(f"/admin/mail/{row.id}/retry", data={"acting_as": "Alex Rivera"}).status_code == 400
    )  # no CSRF
    answer = admin.post(
        f"/admin/mail/{row.id}/retry", data={"acting_as": "", "csrf_token": csrf(page)}, follow_redirects=True
    )
    assert "Choose who is acting" in answer.get_data(as_text=True)
    answer = admin.post(
        f"/admin/mail/{row.id}/retry",
        data={"acting_as": "Alex Rivera", "csrf_token": csrf(page)},
        follow_redirects=True,
    )
    assert f"Email {row.id} will be sent again" in answer.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    retried = session.get(OutboxMessage, row.id)
    assert (retried.status, retried.attempts, retried.context["retried_by"]) == (
        OutboxStatus.PENDING,
        0,
        "Alex Rivera",
    )
    assert (
        admin.post(
            "/admin/mail/999999/retry", data={"acting_as": "Alex Rivera", "csrf_token": csrf(page)}
        ).status_code
        == 404
    )


def test_sent_and_waiting_emails_and_the_mail_folder_are_listed(session, storage, admin, lab_env):
    first = submit_job(session, storage)
    assert deliver_to_folder(session, lab_env).sent == 1
    submit_job(session, storage, student_email="second@example.edu")  # still waiting
    page = admin.get("/admin/mail").get_data(as_text=True)
    emails = page.split('id="emails-heading"')[1].split('id="folder-heading"')[0]
    assert "Receipt email" in emails and first.id[:6] in emails and "Sent" in emails
    # The Message-ID and the worker's name are there for whoever needs them, behind Details only.
    plain = re.sub(r"<details.*?</details>", "", emails, flags=re.S)
    assert "&lt;printlab." in emails and "test:1:mail" in emails
    assert "&lt;printlab." not in plain and "test:1:mail" not in plain
    assert 'id="count-pending">1<' in page and "second@example.edu" in plain and "Waiting to be sent" in plain
    assert str(lab_env["PRINTLAB_MAIL_DIR"]) not in re.sub(r"<details.*?</details>", "", page, flags=re.S)
    folder = page.split('id="mail-folder"')[1]
    assert "We received your 3D print request" in folder and first.id[:6] in folder


def test_a_folder_message_is_shown_with_clickable_links_and_its_html_sandboxed(
    session, storage, admin, lab_env
):
    make_job(session, storage, Status.PENDING, student_name="<b>Eve</b> Doe")
    deliver_to_folder(session, lab_env)
    page = admin.get("/admin/mail").get_data(as_text=True)
    links = re.findall(r'href="(/admin/mail/folder/[^"]+)"', page)
    quote = next(link for link in links if link.endswith("-quote.eml"))
    shown = admin.get(quote).get_data(as_text=True)
    assert re.search(r'<a href="http://printlab\.test/confirm/[A-Za-z0-9_-]+">', shown)
    assert re.search(r'<a href="http://printlab\.test/status/[^"]+">', shown)
    assert "Hi &lt;b&gt;Eve&lt;/b&gt;," in shown  # the student's words stay text
    html = admin.get(f"{quote}/html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    assert "&lt;b&gt;Eve&lt;/b&gt;" in html.get_data(as_text=True)
    assert admin.get("/admin/mail/folder/..%2Fsecret_key").status_code == 404
    assert admin.get("/admin/mail/folder/20261126T000000000000Z-00000001-receipt.eml").status_code == 404


def test_the_retention_page_previews_and_archives_under_a_staff_name(session, storage, admin, monkeypatch):
    old = make_job(session, storage, Status.REJECTED)
    monkeypatch.setattr(sweeps, "utcnow", lambda: utcnow() + timedelta(days=91))
    page = admin.get("/admin/retention").get_data(as_text=True)
    assert 'id="due-rejected">1<' in page and 'id="due-total"><strong>1<' in page
    token = csrf(page)
    stale = admin.post(
        "/admin/retention/archive",
        data={"acting_as": "Alex Rivera", "expected_total": "5", "csrf_token": token},
        follow_redirects=True,
    )
    assert "The numbers changed" in stale.get_data(as_text=True)
    done = admin.post(
        "/admin/retention/archive",
        data={"acting_as": "Alex Rivera", "expected_total": "1", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Archived 1 job(s)." in done.get_data(as_text=True)
    session.rollback()
    session.expire_all()
    assert session.get(Job, old.id).status == Status.ARCHIVED


# -- the list of emails: search and paging ---------------------------------------------------------


def _emails(session, count: int) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    """`count` emails of no job, oldest first: recipients a0…, templates and states taking turns."""
    templates = ["receipt", "quote", "ready_for_pickup", "pickup_reminder", "payment_receipt"]
    states = [OutboxStatus.SENT, OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.CANCELLED]
    rows = [
        OutboxMessage(
            template=templates[i % len(templates)],
            recipient=f"a{i}@example.edu" if i % 3 else f"ana.{i}@campus.example.edu",
            status=states[i % len(states)],
            sent_at=utcnow() if states[i % len(states)] == OutboxStatus.SENT else None,
        )
        for i in range(count)
    ]
    with session.begin():
        session.add_all(rows)
    return rows


def test_the_email_list_pages_back_and_forth_by_id(session):
    rows = _emails(session, 30)
    ids = [r.id for r in reversed(rows)]  # newest first
    first = mail_list.mail_page(session, mail_list.MailSearch())
    assert [line.message.id for line in first.lines] == ids[:25] and first.newer is None
    second = mail_list.mail_page(session, mail_list.MailSearch(), before=first.older)
    assert [line.message.id for line in second.lines] == ids[25:] and second.older is None
    back = mail_list.mail_page(session, mail_list.MailSearch(), after=second.newer)
    assert [line.message.id for line in back.lines] == ids[:25] and back.newer is None


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [
        ("ANA.", "", lambda r: r.recipient.startswith("ana.")),  # the address, any case
        ("pickup", "", lambda r: r.template in ("ready_for_pickup", "pickup_reminder")),  # the email's name
        ("Receipt:", "", lambda r: r.template == "payment_receipt"),  # words of the subject
        ("quote", "SENT", lambda r: r.template == "quote" and r.status == "SENT"),
        ("", "CANCELLED", lambda r: r.status == "CANCELLED"),
        ("100%_", "", lambda r: False),  # LIKE's wildcards are plain characters
        ("ana.\x00\u202e", "", lambda r: r.recipient.startswith("ana.")),  # NUL and bidi marks dropped
    ],
)
def test_the_email_list_finds_by_address_email_subject_and_state(session, text, state, expected):
    rows = _emails(session, 30)
    found = mail_list.mail_page(session, mail_list.MailSearch.parse(text, state), size=100)
    assert [line.message.id for line in found.lines] == [r.id for r in reversed(rows) if expected(r)]


def test_the_mail_page_searches_and_pages_in_plain_words(session, admin):
    _emails(session, 30)
    page = admin.get("/admin/mail").get_data(as_text=True)
    emails = page.split('id="emails-heading"')[1]
    assert emails.count('<tr id="email-') == 25
    older = re.search(r'href="(/admin/mail\?before=\d+)">Older', emails)
    assert older and "Newer" not in emails
    rest = admin.get(older.group(1)).get_data(as_text=True).split('id="emails-heading"')[1]
    assert rest.count('<tr id="email-') == 5 and "Older" not in rest and "Newer" in rest
    for code in ("ready_for_pickup", "CANCELLED", "PENDING"):
        assert f">{code}<" not in emails

    found = admin.get("/admin/mail", query_string={"q": "pickup", "state": "SENT"}).get_data(as_text=True)
    found = found.split('id="emails-heading"')[1]
    assert 'value="pickup"' in found and '<option value="SENT" selected>' in found
    shown = [s.strip() for s in re.findall(r"<td data-label=\"Email\">([^<]+)", found)]
    assert len(shown) == 6 and set(shown) == {"Ready for pickup email", "Pickup reminder email"}
    assert all("Sent" in state for state in re.findall(r'<td data-label="State">([^<]+)', found))


def test_the_monthly_summary_is_listed_by_its_name_without_a_job(session, storage, admin, lab_env):
    outbox.enqueue_for_lab(
        session, "monthly_summary", "manager@example.edu", utcnow(), month_name="November 2026",
        previous_name="October 2026", figures=[], unpaid=[], unpaid_more=0, exports=[],
    )  # fmt: skip
    session.commit()
    assert deliver_to_folder(session, lab_env).sent == 1
    page = admin.get("/admin/mail").get_data(as_text=True)
    emails = page.split('id="emails-heading"')[1].split('id="folder-heading"')[0]
    assert "Monthly summary email" in emails and "manager@example.edu" in emails and "Sent" in emails
    assert "Makerspace 3D Print Lab: November 2026 in numbers" in page.split('id="mail-folder"')[1]


def test_a_students_sign_in_link_is_listed_and_found_by_its_name_without_a_job(
    session, storage, admin, lab_env
):
    from printlab.services.students import sign_in

    sign_in.request_link(session, "jane.doe@example.edu")
    assert deliver_to_folder(session, lab_env).sent == 1
    found = mail_list.mail_page(session, mail_list.MailSearch.parse("sign-in link", ""), size=100)
    assert [line.message.template for line in found.lines] == ["sign_in_link"]
    page = admin.get("/admin/mail", query_string={"q": "sign-in"}).get_data(as_text=True)
    emails = page.split('id="emails-heading"')[1].split('id="folder-heading"')[0]
    assert "Sign-in link (my requests) email" in emails and "jane.doe@example.edu" in emails
