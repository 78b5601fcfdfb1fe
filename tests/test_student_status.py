"""The student's status page: student words for every status, the progress steps, what was paid,
automatic-check notes that give way to the staff decision, times in the lab's time zone, and the
button that emails a fresh quote link; on both databases."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.domain.student_messages import masked_email, progress
from printlab.models import Event, Job, OutboxMessage, Task
from printlab.services.files import model_analysis
from printlab.services.jobs import quote_links, workflow
from printlab.services.jobs.references import make_reference
from printlab.services.views.student_status import student_view

from .factories import actor, make_job, make_staff, quote_token, submit_job

SECRET = "test-secret-key-that-is-long-enough-0123456789"  # the `lab_env` fixture's key
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
STAFF_WORDS = (
    "Uploaded",
    "Pending",
    "Ready to Print",
    "Paid &amp; Picked Up",
    "Paid & Picked Up",
    "Rejected",
)

STUDENT_WORDS = {
    Status.UPLOADED: "Waiting for review",
    Status.PENDING: "Quote ready — please confirm",
    Status.READYTOPRINT: "Queued for printing",
    Status.PRINTING: "Printing",
    Status.COMPLETED: "Ready for pickup",
    Status.PAIDPICKEDUP: "Picked up",
    Status.REJECTED: "Not printed",
    Status.ARCHIVED: "Closed",
}

#: The step a job is on, counted from 0, and how many steps its progress shows.
CURRENT_STEP = {
    Status.UPLOADED: (0, 6),
    Status.PENDING: (1, 6),
    Status.READYTOPRINT: (2, 6),
    Status.PRINTING: (3, 6),
    Status.COMPLETED: (4, 6),
    Status.PAIDPICKEDUP: (5, 6),
    Status.REJECTED: (1, 2),
    Status.ARCHIVED: (1, 2),  # make_job archives a rejected job
}


def _view(session, job_id: str):  # type: ignore[no-untyped-def]
    session.rollback()
    return student_view(session, session.get(Job, job_id), DEFAULT_CATALOG)


def _status_url(job_id: str) -> str:
    return f"/status/{make_reference(SECRET, job_id)}"


def _csrf(body: str) -> str:
    match = CSRF_FIELD.search(body)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def _quotes(session, job_id: str) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    session.rollback()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.job_id == job_id, OutboxMessage.template == "quote")
            .order_by(OutboxMessage.id)
        )
    )


def _analysed(session, storage, model: str):  # type: ignore[no-untyped-def]
    """An Uploaded job whose model the real analysis task has checked, as the worker would."""
    make_staff(session)
    job = submit_job(session, storage, model)
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    return job


# -- the read model ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
def test_every_status_is_said_in_student_words_with_one_current_step(session, storage, status):
    job = make_job(session, storage, status)

    view = _view(session, job.id)

    assert view.status_label == STUDENT_WORDS[status]
    current, count = CURRENT_STEP[status]
    assert len(view.steps) == count
    assert [s.state for s in view.steps] == ["done"] * current + ["current"] + ["upcoming"] * (
        count - current - 1
    )
    for step in view.steps:
        assert step.label not in ("Uploaded", "Pending", "Ready to Print", "Paid & Picked Up", "Rejected")


def test_a_rejected_job_stops_at_review_with_not_printed(session, storage):
    view = _view(session, make_job(session, storage, Status.REJECTED).id)

    assert [(s.label, s.state) for s in view.steps] == [("Review", "done"), ("Not printed", "current")]


def test_a_job_the_lab_cancelled_says_so_to_the_student(session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    workflow.cancel(session, storage, job.id, actor=actor(), reason="The printer for this colour is broken")

    view = _view(session, job.id)

    assert view.status_label == "Cancelled by the lab"
    assert "cancelled" in view.explanation and "reason is below" in view.explanation
    assert view.reject_reasons == ["The printer for this colour is broken"]
    assert [(s.label, s.state) for s in view.steps][-1] == ("Cancelled by the lab", "current")
    assert view.milestones[-1].label == "Cancelled by the lab"


def test_after_pickup_the_page_shows_what_was_paid_not_the_quote(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)  # quoted 42 g ($4.20), weighed 40 g

    view = _view(session, job.id)

    assert view.quote is not None and view.quote["cost"] == "$4.20"
    assert view.paid == "$4.00"
    assert view.paid_at is not None


def test_a_reverted_pickup_shows_no_payment_and_a_kept_quote_shows_the_quote(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    workflow.revert(session, storage, job.id, actor=actor(), reason="Wrong job")
    assert _view(session, job.id).paid is None  # the payment was reversed

    workflow.record_pickup(
        session, storage, job.id, actor=actor(), method="CASH", keep_quote=True, payment_reference="R-2"
    )

    assert _view(session, job.id).paid == "$4.20"


def test_before_pickup_nothing_is_paid(session, storage):
    assert _view(session, make_job(session, storage, Status.COMPLETED).id).paid is None


def test_automatic_check_notes_show_until_staff_decide(session, storage):
    job = _analysed(session, storage, "stl_binary_nonwatertight_teapot.stl")

    waiting = _view(session, job.id)
    assert waiting.check_notes and any("holes" in note for note in waiting.check_notes)
    assert not waiting.staff_decided

    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2)
    workflow.confirm(session, storage, quote_token(session, job.id))
    workflow.start_printing(session, storage, job.id, actor=actor())
    printing = _view(session, job.id)

    assert printing.staff_decided
    assert printing.check_notes == []


def test_a_rejection_replaces_the_automatic_verdict(session, storage):
    job = _analysed(session, storage, "stl_binary_20mm_xyz_cube.stl")
    assert _view(session, job.id).check_notes == []  # a clean model: "No problems found."
    assert not _view(session, job.id).staff_decided

    workflow.reject(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])

    view = _view(session, job.id)
    assert view.staff_decided and view.check_notes == []
    assert view.reject_reasons == ["Walls too thin"]


def test_the_students_address_is_shown_masked(session, storage):
    job = make_job(session, storage, Status.PENDING, student_email="jane.doe@uni.edu")

    assert _view(session, job.id).email_hint == "j***@uni.edu"


# -- the pages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.UPLOADED, Status.PENDING, Status.PRINTING, Status.PAIDPICKEDUP])
def test_the_status_page_speaks_student_words_with_a_stepper(client, session, storage, status):
    job = make_job(session, storage, status)

    response = client.get(_status_url(job.id))
    body = response.get_data(as_text=True)

    assert response.status_code == 200
    assert f"<h1>Job {_view(session, job.id).simple_id}: {STUDENT_WORDS[status]}</h1>" in body
    for staff_word in STAFF_WORDS:
        assert f">{staff_word}<" not in body and f": {staff_word}" not in body, staff_word
    assert body.count('aria-current="step"') == 1
    assert re.search(r'<ol class="stepper"[^>]*aria-label="[^"]+"', body)
    # The link is a capability: it stays out of caches and Referer headers.
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_the_status_page_after_pickup_shows_the_amount_paid(client, session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)

    body = client.get(_status_url(job.id)).get_data(as_text=True)

    assert "Paid" in body and "$4.00" in body
    assert "$4.20" not in body


def test_a_rejected_page_has_no_green_verdict_and_a_printed_one_no_holes_warning(client, session, storage):
    rejected = _analysed(session, storage, "stl_binary_20mm_xyz_cube.stl")
    workflow.reject(session, storage, rejected.id, actor=actor(), reasons=["Walls too thin"])
    holes = _analysed(session, storage, "stl_binary_nonwatertight_teapot.stl")
    assert "The mesh has holes" in client.get(_status_url(holes.id)).get_data(as_text=True)
    workflow.approve(session, storage, holes.id, actor=actor(), weight_g=42, time_hours=2.2)
    workflow.confirm(session, storage, quote_token(session, holes.id))
    workflow.start_printing(session, storage, holes.id, actor=actor())
    workflow.complete(session, storage, holes.id, actor=actor())

    rejected_page = client.get(_status_url(rejected.id)).get_data(as_text=True)
    printed_page = client.get(_status_url(holes.id)).get_data(as_text=True)
    analysis_block = client.get(_status_url(holes.id) + "/analysis").get_data(as_text=True)

    assert "No problems found" not in rejected_page
    assert 'class="ok"' not in rejected_page
    assert "Walls too thin" in rejected_page
    assert "Estimated cost" not in rejected_page  # the staff decision stands; the check's guess goes
    for page in (printed_page, analysis_block):
        assert "holes" not in page
        assert "No problems found" not in page


def test_times_on_the_student_pages_are_in_the_lab_time_zone(client, session, storage):
    make_staff(session)
    sent = datetime(2026, 11, 26, 20, 5)  # 14:05 in Chicago (CST)
    job = submit_job(session, storage, now=sent)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2, now=sent)
    reference = make_reference(SECRET, job.id)
    token = quote_token(session, job.id)

    submitted = client.get(f"/submit/done/{reference}").get_data(as_text=True)
    status = client.get(f"/status/{reference}").get_data(as_text=True)
    quote = client.get(f"/confirm/{token}").get_data(as_text=True)

    for page in (submitted, status, quote):
        assert "26 Nov 2026 14:05 CST" in page
        assert "20:05" not in re.sub(r'datetime="[^"]*"', "", page)  # UTC only for machines
    assert '<time datetime="2026-11-26T20:05:00Z">26 Nov 2026 14:05 CST</time>' in status
    for page in (status, quote):
        assert "29 Nov 2026 14:05 CST" in page  # the link works for 72 hours


# -- a fresh quote link from the status page -----------------------------------------------------


def _pending_for_hours(session, storage, hours: float):  # type: ignore[no-untyped-def]
    """A Pending job whose quote was emailed `hours` ago."""
    make_staff(session)
    approved = utcnow() - timedelta(hours=hours)
    job = submit_job(session, storage, now=approved - timedelta(minutes=30), student_email="jane.doe@uni.edu")
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2, now=approved)
    return job.id, quote_token(session, job.id)


def test_the_status_page_emails_a_fresh_quote_link_and_never_shows_it(client, session, storage):
    job_id, old = _pending_for_hours(session, storage, 2)
    url = _status_url(job_id)
    page = client.get(url).get_data(as_text=True)
    assert f'action="{url}/new-link"' in page
    assert "j***@uni.edu" in page

    sent = client.post(f"{url}/new-link", data={"csrf_token": _csrf(page)})
    assert sent.status_code == 303 and sent.headers["Location"].endswith(url)
    after = client.get(url)
    body = after.get_data(as_text=True)

    assert "We sent a new link to j***@uni.edu" in body
    quotes = _quotes(session, job_id)
    assert len(quotes) == 2
    assert quotes[-1].recipient == "jane.doe@uni.edu"
    new = quotes[-1].context["token"]
    assert new != old
    for answer in (sent, after):
        text = answer.get_data(as_text=True)
        assert new not in text and old not in text and "/confirm/" not in text
        assert answer.headers["Referrer-Policy"] == "no-referrer"
    session.rollback()
    assert quote_links.find_by_token(session, old) is None  # the old link stopped working
    events = session.scalars(select(Event.event_type).where(Event.job_id == job_id)).all()
    assert events.count("QuoteResent") == 1
    assert session.get(Job, job_id).status == Status.PENDING.value


def test_a_second_fresh_link_within_the_hour_is_refused_and_sends_nothing(client, session, storage):
    job_id, _old = _pending_for_hours(session, storage, 2)
    url = _status_url(job_id)
    csrf = _csrf(client.get(url).get_data(as_text=True))
    assert client.post(f"{url}/new-link", data={"csrf_token": csrf}).status_code == 303

    again = client.post(f"{url}/new-link", data={"csrf_token": csrf})

    body = again.get_data(as_text=True)
    assert again.status_code == 429
    assert "less than an hour ago" in body and 'role="alert"' in body
    assert len(_quotes(session, job_id)) == 2
    assert "/confirm/" not in body


def test_the_fresh_link_needs_the_form_token_and_a_pending_job(client, session, storage):
    job_id, _old = _pending_for_hours(session, storage, 2)
    url = _status_url(job_id)
    csrf = _csrf(client.get(url).get_data(as_text=True))
    assert client.post(f"{url}/new-link", data={}).status_code == 400
    assert len(_quotes(session, job_id)) == 1

    printing = make_job(session, storage, Status.PRINTING, student_email="sam@uni.edu")
    printing_url = _status_url(printing.id)
    assert "new-link" not in client.get(printing_url).get_data(as_text=True)
    refused = client.post(f"{printing_url}/new-link", data={"csrf_token": csrf})

    assert refused.status_code == 303 and refused.headers["Location"].endswith(printing_url)
    assert len(_quotes(session, printing.id)) == 1
    forged = client.post(
        f"/status/{make_reference('another-secret-key-long-enough-00000', job_id)}/new-link",
        data={"csrf_token": csrf},
    )
    assert forged.status_code == 404
    assert len(_quotes(session, job_id)) == 1


def test_fresh_links_from_the_status_page_are_rate_limited_per_address(client, session, storage):
    job_id, _old = _pending_for_hours(session, storage, 2)
    url = _status_url(job_id)
    csrf = _csrf(client.get(url).get_data(as_text=True))
    for _ in range(20):  # the confirm page's posts count against the same allowance
        client.post("/confirm/not-a-real-token", data={"csrf_token": csrf})

    refused = client.post(f"{url}/new-link", data={"csrf_token": csrf})

    assert refused.status_code == 429
    assert "Too many tries" in refused.get_data(as_text=True)
    assert len(_quotes(session, job_id)) == 1


# -- the pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("jane.doe@uni.edu", "j***@uni.edu"),
        ("j@uni.edu", "j***@uni.edu"),
        ("a+b@c@uni.edu", "a***@uni.edu"),  # the domain is after the last @
        ("", "your email address"),
        ("no-at-sign", "your email address"),
    ],
)
def test_masked_email_shows_only_the_first_letter_and_the_domain(address, shown):
    assert masked_email(address) == shown


def test_an_archived_pickup_shows_every_step_done_up_to_picked_up():
    steps = progress(Status.ARCHIVED, Status.PAIDPICKEDUP)

    assert [s.state for s in steps] == ["done"] * 5 + ["current"]
    assert [s.label for s in progress(Status.ARCHIVED)] == ["Review", "Closed"]
