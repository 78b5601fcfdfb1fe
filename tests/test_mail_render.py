"""Every email's words, checked against reviewed snapshots, and what each one must always carry.

A wording change makes the snapshot test fail and shows the difference; after reviewing it, refresh
the snapshots with `PRINTLAB_UPDATE_SNAPSHOTS=1 pytest tests/test_mail_render.py` and commit them.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest

from printlab.domain.catalog import DEFAULT_CATALOG, LabDetails
from printlab.models import Job, Payment
from printlab.services.jobs.references import read_reference
from printlab.services.mail import outbox
from printlab.services.mail import render as render_module
from printlab.services.mail.render import (
    TEMPLATES,
    Links,
    build_message,
    lab_date,
    lab_datetime,
    message_context,
    render,
    student_message_context,
)

SNAPSHOTS = Path(__file__).with_name("mail_snapshots")
UPDATE = os.environ.get("PRINTLAB_UPDATE_SNAPSHOTS") == "1"
SECRET = "snapshot-secret-key-that-is-long-enough-0123"
LINKS = Links("https://print.example.edu", SECRET)
JOB_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TOKEN = "TOKEN-abcdefghijklmnopqrstuvwxyz0123456789"
COMPLETED = datetime(2026, 11, 20, 18, 0)  # 12:00 in Chicago

#: The job as each message sees it (fixed data; the status matters to nothing but realism).
STATUS_FOR = {
    "receipt": "UPLOADED",
    "quote": "PENDING",
    "confirmed": "READYTOPRINT",
    "rejected": "REJECTED",
    "ready_for_pickup": "COMPLETED",
    "pickup_reminder": "COMPLETED",
    "quote_expired": "PENDING",
    "payment_receipt": "PAIDPICKEDUP",
    "payment_refund": "PAIDPICKEDUP",
    "withdrawn": "REJECTED",
    "changes_needed": "UPLOADED",
    "changes_expired": "REJECTED",
}
#: What the job records when the student withdrew it or never sent the corrected file (issue 13).
REASONS_FOR = {
    "rejected": {"reasons": ["Walls too thin", "Not scaled correctly"], "other": "The base is 0.2 mm thick."},
    "withdrawn": {
        "reasons": ["Quote declined by the student"], "other": "Too expensive for a test piece",
        "cancelled": True, "declined": True, "by_student": True,
    },
    "changes_expired": {"reasons": ["Walls too thin"], "other": "Make the base 2 mm thick.", "no_answer": True},
}  # fmt: skip
#: The outbox row's context of the messages that carry one.
EXTRA_FOR = {
    "quote": {"token": TOKEN, "expires_at": "2026-11-29T20:30:00"},
    "changes_needed": {
        "token": TOKEN, "expires_at": "2026-12-04T20:30:00",
        "reasons": ["Walls too thin"], "other": "Make the base 2 mm thick.",
    },
    "changes_expired": {"requested_at": "2026-11-20T18:00:00"},
}  # fmt: skip

#: The payment row each receipt is about: the pickup's charge (by card), and a refund of part of it.
PAYMENTS = {
    "payment_receipt": Payment(
        job_id=JOB_ID, charged_usd=Decimal("4.00"), list_usd=Decimal("4.00"), method="CARD", kind="CHARGE",
        recorded_by="Alex Rivera",
    ),
    "payment_refund": Payment(
        job_id=JOB_ID, charged_usd=Decimal("-1.50"), method="CASH", kind="REFUND",
        reason="A support broke off; we reprinted it", recorded_by="Alex Rivera",
    ),
}  # fmt: skip


def fixed_job(template: str, **overrides: object) -> Job:
    quoted = template not in ("receipt", "rejected", "changes_needed", "changes_expired")
    values: dict[str, object] = {
        "id": JOB_ID,
        "student_name": "Jane Doe",
        "student_email": "jane.doe@example.edu",
        "original_filename": "phone stand v2.stl",
        "display_name": "JaneDoe_Filament_TrueRed_a1b2c3",
        "material": "Filament",
        "color": "True Red",
        "printer": "Prusa MK4S",
        "weight_g": 42.0 if quoted else None,
        "time_hours": 2.5 if quoted else None,
        "cost_usd": Decimal("4.20") if quoted else None,
        "status": STATUS_FOR[template],
        "reject_reasons": REASONS_FOR.get(template),
    }
    values.update(overrides)
    return Job(**values)


def context_for(
    template: str,
    *,
    final: bool = False,
    catalog=DEFAULT_CATALOG,
    job: Job | None = None,
    payment: Payment | None = None,
    extra: dict | None = None,  # type: ignore[type-arg]
) -> dict:  # type: ignore[no-untyped-def,type-arg]
    return message_context(
        template,
        job=job or fixed_job(template),
        simple_id="a1b2c3",
        catalog=catalog,
        links=LINKS,
        extra=extra or EXTRA_FOR.get(template) or {"final": final, "balance_usd": "2.50"},
        completed_at=COMPLETED,
        charged_usd="4.00",
        payment=payment or PAYMENTS.get(template),
    )


CASES = [(t, False) for t in TEMPLATES] + [("pickup_reminder", True)]


def _case_name(template: str, final: bool) -> str:
    return f"{template}_final" if final else template


def _check_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path.name}: run with PRINTLAB_UPDATE_SNAPSHOTS=1 and review it"
    assert actual == path.read_text(encoding="utf-8"), (
        f"{path.name} changed; review, then refresh the snapshot"
    )


@pytest.mark.parametrize(("template", "final"), CASES, ids=[_case_name(t, f) for t, f in CASES])
def test_text_snapshot(template, final):
    rendered = render(template, context_for(template, final=final))
    _check_snapshot(f"{_case_name(template, final)}.txt", f"Subject: {rendered.subject}\n\n{rendered.text}")


@pytest.mark.parametrize(("template", "final"), CASES, ids=[_case_name(t, f) for t, f in CASES])
def test_html_snapshot(template, final):
    rendered = render(template, context_for(template, final=final))
    _check_snapshot(f"{_case_name(template, final)}.html", rendered.html)


def test_every_outbox_template_can_be_rendered():
    assert set(TEMPLATES) == set(outbox.TEMPLATES)
    assert set(render_module.LAB_TEMPLATES) == set(outbox.LAB_TEMPLATES)
    assert set(render_module.STUDENT_TEMPLATES) == set(outbox.STUDENT_TEMPLATES)


def _sign_in_email():  # type: ignore[no-untyped-def]
    context = student_message_context(
        "sign_in_link",
        catalog=DEFAULT_CATALOG,
        links=LINKS,
        extra={"token": TOKEN, "expires_at": "2026-11-29T20:30:00", "minutes": 15},
    )
    return render("sign_in_link", context)


def test_the_sign_in_link_email_snapshot():
    rendered = _sign_in_email()
    _check_snapshot("sign_in_link.txt", f"Subject: {rendered.subject}\n\n{rendered.text}")
    _check_snapshot("sign_in_link.html", rendered.html)


def test_the_sign_in_link_email_carries_its_link_its_expiry_in_the_labs_time_and_the_lab():
    rendered = _sign_in_email()
    link = f"https://print.example.edu/my/sign-in/{TOKEN}"
    assert link in rendered.text and f'href="{link}"' in rendered.html
    assert "Sunday, November 29, 2026 at 2:30 PM CST" in rendered.text  # 20:30 UTC in Chicago
    assert "15 minutes" in rendered.text and "https://print.example.edu/my/sign-in\n" in rendered.text
    lab = DEFAULT_CATALOG.lab
    for needed in (lab.name, lab.pickup_location, lab.contact_email):
        assert needed in rendered.text and needed in rendered.html.replace("&amp;", "&")
    assert "/status/" not in rendered.text  # about no one job


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_message_carries_the_lab_the_job_and_its_status_link(template):
    rendered = render(template, context_for(template))
    lab = DEFAULT_CATALOG.lab
    for body in (rendered.text, rendered.html.replace("&amp;", "&")):
        for needed in (lab.name, lab.pickup_location, lab.opening_hours, lab.contact_email, "a1b2c3"):
            assert needed in body, f"{template}: {needed!r} missing"
        links = re.findall(r"https://print\.example\.edu/status/[^\s\"<]+", body)
        assert links, f"{template}: no status link"
        assert {read_reference(SECRET, link.rsplit("/", 1)[1]) for link in links} == {JOB_ID}
        assert "Jane" in body and "Doe" not in body  # greeted by first name; the email is theirs only
    assert "a1b2c3" in rendered.subject and "\n" not in rendered.subject


def test_the_quote_links_to_its_confirm_page_and_gives_the_expiry_in_the_labs_time_zone():
    rendered = render("quote", context_for("quote"))
    confirm = f"https://print.example.edu/confirm/{TOKEN}"
    assert confirm in rendered.text and f'href="{confirm}"' in rendered.html
    assert "Sunday, November 29, 2026 at 2:30 PM CST" in rendered.text  # 20:30 UTC in Chicago
    assert "$4.20" in rendered.subject
    berlin = DEFAULT_CATALOG.with_changes(lab=LabDetails(time_zone="Europe/Berlin"))
    assert (
        "Sunday, November 29, 2026 at 9:30 PM CET"
        in render("quote", context_for("quote", catalog=berlin)).text
    )


def test_the_rejection_lists_every_reason_and_links_a_fresh_submission():
    rendered = render("rejected", context_for("rejected"))
    for reason in ("Walls too thin", "Not scaled correctly", "The base is 0.2 mm thick."):
        assert f"  - {reason}" in rendered.text and f"<li>{reason}</li>" in rendered.html
    assert "https://print.example.edu/submit" in rendered.text


def test_a_rejection_without_recorded_reasons_still_makes_sense():
    # An admin override to Rejected (with "email the student") records no reasons.
    job = fixed_job("rejected", reject_reasons=None)
    rendered = render("rejected", context_for("rejected", job=job))
    assert "because:" not in rendered.text and "we'll tell you why" in rendered.text
    assert "<ul" not in rendered.html and "we'll tell you why" in rendered.html


def test_needs_changes_says_what_to_fix_and_links_the_reply_page_until_its_day():
    rendered = render("changes_needed", context_for("changes_needed"))
    reply = f"https://print.example.edu/replace/{TOKEN}"
    assert reply in rendered.text and f'href="{reply}"' in rendered.html
    assert "  - Walls too thin" in rendered.text and "  - Make the base 2 mm thick." in rendered.text
    assert "Friday, December 4, 2026" in rendered.text


def test_a_withdrawn_request_is_worded_as_the_students_own_doing():
    declined = render("withdrawn", context_for("withdrawn"))
    assert declined.subject == "You declined the quote (job a1b2c3)"
    assert "Too expensive for a test piece" in declined.text
    job = fixed_job("withdrawn", reject_reasons={"reasons": ["Cancelled by the student"], "cancelled": True})
    cancelled = render("withdrawn", context_for("withdrawn", job=job))
    assert cancelled.subject == "You cancelled your 3D print request (job a1b2c3)"
    assert "You cancelled your 3D print request" in cancelled.text


def test_the_corrected_files_receipt_says_so():
    rendered = render("receipt", context_for("receipt", extra={"replaced": True}))
    assert rendered.subject == "We received your corrected file (job a1b2c3)"
    assert "We've received your corrected file" in rendered.text


def test_pickup_messages_give_place_hours_and_the_hold_period():
    ready = render("ready_for_pickup", context_for("ready_for_pickup"))
    assert "30 days" in ready.text and "Sunday, December 20, 2026" in ready.text
    first = render("pickup_reminder", context_for("pickup_reminder"))
    last = render("pickup_reminder", context_for("pickup_reminder", final=True))
    assert first.subject.startswith("Reminder:") and last.subject.startswith("Last reminder:")
    assert "Friday, November 20, 2026" in first.text and "Sunday, December 20, 2026" in last.subject


def test_the_expired_quote_notice_says_how_to_get_a_fresh_link_without_the_old_token():
    rendered = render("quote_expired", context_for("quote_expired"))
    assert "fresh link" in rendered.text and "/confirm/" not in rendered.text
    assert "/status/" in rendered.text  # the one link that still works


def test_the_payment_receipt_shows_the_amount_charged():
    rendered = render("payment_receipt", context_for("payment_receipt"))
    assert "Paid:       $4.00" in rendered.text and "$4.00" in rendered.subject


def test_student_data_is_escaped_in_html_and_kept_verbatim_in_text():
    job = fixed_job("receipt", original_filename='<script>alert("x")</script>.stl', student_name="<b>Eve</b>")
    rendered = render("receipt", context_for("receipt", job=job))
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert "<b>Eve</b>" not in rendered.html and "&lt;b&gt;Eve&lt;/b&gt;" in rendered.html
    assert '<script>alert("x")</script>.stl' in rendered.text


def test_a_missing_value_is_an_error_not_a_blank():
    with pytest.raises(KeyError):
        message_context(
            "quote", job=fixed_job("quote"), simple_id="a1b2c3", catalog=DEFAULT_CATALOG, links=LINKS
        )
    with pytest.raises(ValueError, match="completed"):
        message_context(
            "ready_for_pickup",
            job=fixed_job("ready_for_pickup"),
            simple_id="a1b2c3",
            catalog=DEFAULT_CATALOG,
            links=LINKS,
        )


def test_times_in_the_labs_zone_across_daylight_saving():
    assert (
        lab_datetime(datetime(2026, 7, 1, 17, 5), "America/Chicago")
        == "Wednesday, July 1, 2026 at 12:05 PM CDT"
    )
    assert (
        lab_datetime(datetime(2026, 1, 1, 5, 59), "America/Chicago")
        == "Wednesday, December 31, 2025 at 11:59 PM CST"
    )
    assert lab_date(datetime(2026, 3, 8, 5, 0), "America/Chicago") == "Saturday, March 7, 2026"


def test_the_built_message_is_multipart_alternative_with_stable_headers():
    rendered = render("receipt", context_for("receipt"))
    message = build_message(
        rendered,
        sender="Makerspace 3D Print Lab <makerspace@example.edu>",
        reply_to="makerspace@example.edu",
        recipient="jane.doe@example.edu",
        message_id="<printlab.7.abc@print.example.edu>",
        date=datetime(2026, 11, 26, 15, 0),
        template="receipt",
        outbox_id=7,
    )
    assert message.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]  # the last is the one mail programs prefer
    assert message["Message-ID"] == "<printlab.7.abc@print.example.edu>"
    assert message["Reply-To"] == "makerspace@example.edu"
    assert message["Date"] == "Thu, 26 Nov 2026 15:00:00 +0000"
    body = message.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage) and "Opening hours: Mon–Fri 9:00–17:00" in body.get_content()


def test_the_quote_carries_the_staff_message_escaped_in_html_and_verbatim_in_text():
    context = context_for("quote")
    plain = render("quote", context)
    assert "A note from the lab staff" not in plain.text  # no message: no heading either
    context = message_context(
        "quote", job=fixed_job("quote"), simple_id="a1b2c3", catalog=DEFAULT_CATALOG, links=LINKS,
        extra={"token": TOKEN, "expires_at": "2026-11-29T20:30:00",
               "message": 'Scaled ×25.4 — it was in inches.\n<img src=x onerror="alert(1)">'},
    )  # fmt: skip
    rendered = render("quote", context)
    assert "A note from the lab staff:\nScaled ×25.4 — it was in inches." in rendered.text
    assert '<img src=x onerror="alert(1)">' in rendered.text
    assert "<img" not in rendered.html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in rendered.html
    assert "Scaled ×25.4 — it was in inches." in rendered.html


def test_a_cancellation_is_worded_as_one_with_the_staff_reason():
    job = fixed_job(
        "rejected",
        reject_reasons={
            "reasons": [],
            "other": "The printer is out of resin <for weeks>.",
            "cancelled": True,
        },
    )
    rendered = render("rejected", context_for("rejected", job=job))
    assert rendered.subject == "Your 3D print job was cancelled (job a1b2c3)"
    assert "cancelled your print" in rendered.text and "can't print it as it is" not in rendered.text
    assert "The printer is out of resin <for weeks>." in rendered.text
    assert "&lt;for weeks&gt;" in rendered.html and "cancelled your print" in rendered.html
    assert "no longer works" in rendered.text and "https://print.example.edu/submit" in rendered.text


def test_an_edited_quote_says_it_replaces_the_earlier_one():
    context = message_context(
        "quote", job=fixed_job("quote"), simple_id="a1b2c3", catalog=DEFAULT_CATALOG, links=LINKS,
        extra={"token": TOKEN, "expires_at": "2026-11-29T20:30:00", "edited": True},
    )  # fmt: skip
    rendered = render("quote", context)
    assert rendered.subject == "Your new 3D print quote: $4.20 — please confirm (job a1b2c3)"
    for body in (rendered.text, rendered.html):
        assert "changed the quote for your print" in body and "earlier quote email no longer works" in body
        assert "Good news" not in body


def test_every_template_has_a_subject_outline_with_all_its_wordings():
    from printlab.services.mail.render import _SUBJECTS, subject_outline

    for template in _SUBJECTS:
        assert subject_outline(template)  # the Mail page's search reads these for every template
    assert "couldn't print" in subject_outline("rejected") and "cancelled" in subject_outline("rejected")
    assert "new 3D print quote" in subject_outline("quote")
