"""The student's quote page /confirm/<token>: GET only shows, POST confirms; every outcome, on both databases."""

from __future__ import annotations

import io
import re
import secrets
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, inspect, select
from werkzeug.serving import make_server

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.statuses import Status
from printlab.models import AnalysisState, Event, Job, JobAnalysis, OutboxMessage
from printlab.services.jobs import workflow
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor

from .factories import STAFF, actor, make_job, make_staff, quote_token, submit_job

ADMIN_PC = "ADMIN-PC"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- helpers -------------------------------------------------------------------------------------


def _row(session, job_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every column of the job, its event count and its email count: what "changes nothing" compares."""
    session.rollback()  # a fresh snapshot: SQLite and PostgreSQL both keep showing an open transaction's
    job = session.get(Job, job_id)
    columns = {c.key: getattr(job, c.key) for c in inspect(Job).mapper.column_attrs}
    events = session.scalar(select(func.count()).select_from(Event).where(Event.job_id == job_id))
    emails = session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.job_id == job_id)
    )
    session.rollback()
    return {**columns, "_events": events, "_emails": emails}


def _job(session, job_id: str) -> Job:  # type: ignore[no-untyped-def]
    """The job as committed now (ending the test session's transaction, whose snapshot may be old)."""
    session.rollback()
    return session.get(Job, job_id)  # type: ignore[return-value]


def _new_token(session, job_id: str) -> str:  # type: ignore[no-untyped-def]
    session.rollback()
    return quote_token(session, job_id)


def _get(client, url: str, status: int = 200):  # type: ignore[no-untyped-def]
    response = client.get(url)
    return _checked(response, status)


def _post(client, url: str, token: str | None, status: int = 200):  # type: ignore[no-untyped-def]
    response = client.post(url, data={"csrf_token": token} if token else {})
    return _checked(response, status)


def _checked(response, status: int):  # type: ignore[no-untyped-def]
    body = response.get_data(as_text=True)
    assert response.status_code == status, body
    assert "Traceback" not in body
    # The token is in the URL: it must not leak on through a Referer or stay in a cache.
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    return body


def _form_token(client) -> str:  # type: ignore[no-untyped-def]
    """A CSRF token for this client's session from another page's form (for links that show none)."""
    return _csrf(client.get("/submit").get_data(as_text=True))


def _csrf(body: str) -> str:
    match = CSRF_FIELD.search(body)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def _pending(session, storage, *, approved_at=None):  # type: ignore[no-untyped-def]
    """A PENDING job approved at `approved_at` (default now) and the token from its quote email."""
    make_staff(session)
    job = submit_job(session, storage, now=approved_at - timedelta(hours=1) if approved_at else None)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2, now=approved_at)
    return job.id, quote_token(session, job.id)


def _analyse(session, job_id: str) -> None:  # type: ignore[no-untyped-def]
    """Finish the job's model analysis with a thumbnail, as the worker's analysis task leaves it."""
    picture = io.BytesIO()
    Image.new("RGB", (192, 192), (47, 111, 189)).save(picture, "PNG")
    with write_transaction(session):
        analysis = session.get(JobAnalysis, job_id)
        analysis.state = AnalysisState.DONE
        analysis.results = {"triangles": 12, "watertight": True, "problems": []}
        analysis.thumbnail_png = picture.getvalue()
        analysis.analysed_at = utcnow()


def _long_expired(session, storage):  # type: ignore[no-untyped-def]
    """A PENDING job whose quote went out four days ago and which the sweep marked expired."""
    job_id, token = _pending(session, storage, approved_at=utcnow() - timedelta(days=4))
    assert workflow.expire_quotes(session, storage) == 1
    return job_id, token


@pytest.fixture
def admin(session):  # type: ignore[no-untyped-def]
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, "admin-password-1", is_admin=True)
    return Actor(STAFF, ADMIN_PC)


# -- GET: the quote ------------------------------------------------------------------------------


def test_get_shows_the_quote_and_changes_nothing(client, session, storage):
    job_id, token = _pending(session, storage)
    _analyse(session, job_id)
    before = _row(session, job_id)

    body = _get(client, f"/confirm/{token}")
    _get(client, f"/confirm/{token}")  # a scanner and then the student: still nothing changes
    # Asking a link that still works for a new one just shows the quote again.
    assert "Your print quote" in _post(client, f"/confirm/{token}/new-link", _csrf(body))

    assert _row(session, job_id) == before
    job = _job(session, job_id)
    assert "Your print quote: $" in body
    for shown in (
        job.original_filename,
        "Prusa MK4S",
        "True Red",
        "Filament",
        "42.0 g",
        "about 2.5 h",
        f"${job.cost_usd:.2f}",
    ):
        assert shown in body, shown
    assert f"we will print it and you pay ${job.cost_usd:.2f} when you collect it" in body
    assert f'<form method="post" action="/confirm/{token}">' in body
    assert _csrf(body)
    assert 'type="submit" class="primary" id="confirm-button"' in body
    thumbnail = re.search(r'<img class="thumbnail" src="([^"]+)"[^>]*alt="Preview of ([^"]+)"', body)
    assert thumbnail and thumbnail.group(2) == job.original_filename
    image = client.get(thumbnail.group(1))
    assert image.status_code == 200 and image.mimetype == "image/png"


# -- POST: confirm -------------------------------------------------------------------------------


def test_post_confirms_once_and_a_second_post_changes_nothing(client, session, storage):
    job_id, token = _pending(session, storage)
    csrf = _csrf(_get(client, f"/confirm/{token}"))

    body = _post(client, f"/confirm/{token}", csrf)

    assert "Thanks, your print is confirmed" in body
    assert "What happens next" in body
    link = re.search(r'href="(/status/[^"]+)" id="status-link"', body)
    assert link
    status_page = client.get(link.group(1))
    assert status_page.status_code == 200
    assert "Queued for printing" in status_page.get_data(as_text=True)
    job = _job(session, job_id)
    assert job.status == Status.READYTOPRINT.value
    assert job.student_confirmed
    events = session.scalars(select(Event.event_type).where(Event.job_id == job_id)).all()
    assert events.count("StudentConfirmed") == 1
    templates = session.scalars(select(OutboxMessage.template).where(OutboxMessage.job_id == job_id)).all()
    assert "confirmed" in templates
    after_first = _row(session, job_id)

    again = _post(client, f"/confirm/{token}", csrf)  # a double click, or the back button and again

    assert "You've already confirmed this quote" in again
    assert "<strong>Queued for printing</strong>" in again
    assert "Nothing was changed" in again
    assert "Confirm: print it" not in again  # no second Confirm button
    assert _row(session, job_id) == after_first


def test_an_already_confirmed_link_shows_the_current_status(client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    token = quote_token(session, job.id)
    before = _row(session, job.id)

    shown = _get(client, f"/confirm/{token}")
    posted = _post(client, f"/confirm/{token}", _form_token(client))

    for body in (shown, posted):
        assert "You've already confirmed this quote" in body
        assert "<strong>Printing</strong>" in body
    assert _row(session, job.id) == before


def test_a_post_without_the_csrf_token_is_refused(client, session, storage):
    job_id, token = _pending(session, storage)
    _get(client, f"/confirm/{token}")  # the session exists; only the form field is missing
    before = _row(session, job_id)

    body = _post(client, f"/confirm/{token}", None, status=400)
    _post(client, f"/confirm/{token}", "forged-token", status=400)

    assert "Form expired" in body
    assert _row(session, job_id) == before


# -- expired links and fresh ones ----------------------------------------------------------------


def test_expired_link_explains_and_a_new_one_works_while_the_old_one_stops(client, session, storage):
    job_id, old = _long_expired(session, storage)
    before = _row(session, job_id)

    page = _get(client, f"/confirm/{old}")
    assert "This quote link has expired" in page
    assert "nothing has been printed" in page
    assert f'action="/confirm/{old}/new-link"' in page
    assert "Confirm: print it" not in page
    csrf = _csrf(page)
    assert "This quote link has expired" in _post(client, f"/confirm/{old}", csrf)
    assert _row(session, job_id) == before  # neither the page nor a POST confirmed it

    body = _post(client, f"/confirm/{old}/new-link", csrf)

    assert "We've emailed you a new link" in body
    assert "The link you used to get here no longer works" in body
    new = _new_token(session, job_id)
    assert new != old
    assert not _job(session, job_id).is_confirmation_expired
    quotes = session.scalars(
        select(OutboxMessage).where(OutboxMessage.job_id == job_id, OutboxMessage.template == "quote")
    ).all()
    assert len(quotes) == 2

    assert "This link isn't valid" in _get(client, f"/confirm/{old}", status=404)
    _post(client, f"/confirm/{old}", csrf, status=404)
    assert "Your print quote" in _get(client, f"/confirm/{new}")
    assert "Thanks, your print is confirmed" in _post(client, f"/confirm/{new}", csrf)
    assert _job(session, job_id).status == Status.READYTOPRINT.value


def test_a_second_new_link_within_the_hour_is_refused_with_a_clear_message(client, session, storage):
    job_id, old = _long_expired(session, storage)
    csrf = _csrf(_get(client, f"/confirm/{old}"))
    _post(client, f"/confirm/{old}/new-link", csrf)
    new = _new_token(session, job_id)
    # The fresh link lapses too (the sweep, run as if three days had passed) while the hour isn't up.
    assert workflow.expire_quotes(session, storage, now=utcnow() + timedelta(days=3, hours=1)) == 1
    before = _row(session, job_id)

    body = _post(client, f"/confirm/{new}/new-link", csrf, status=429)

    assert "We can't send another link yet" in body
    assert "less than an hour ago" in body
    assert 'role="alert"' in body
    assert _row(session, job_id) == before
    assert _new_token(session, job_id) == new


# -- links that are not valid --------------------------------------------------------------------


def test_an_unknown_link_is_a_plain_404(client, session, storage):
    job_id, _real = _pending(session, storage)
    before = _row(session, job_id)
    csrf = _form_token(client)

    for token in (secrets.token_urlsafe(32), "x", "A" * 500, "%00", "café-☃", _real[:-1]):
        shown = _get(client, f"/confirm/{token}", status=404)
        posted = _post(client, f"/confirm/{token}", csrf, status=404)
        renewed = _post(client, f"/confirm/{token}/new-link", csrf, status=404)
        for body in (shown, posted, renewed):
            assert "This link isn't valid" in body
            for detail in ("expired", "confirmed", "Pending", "Jane", "$"):
                assert detail not in body, (token, detail)
    assert _row(session, job_id) == before


def test_a_token_never_moves_a_job_that_is_not_pending(client, session, storage, admin):
    job_id, token = _pending(session, storage)
    csrf = _csrf(_get(client, f"/confirm/{token}"))
    workflow.override_status(session, storage, job_id, actor=admin, target="UPLOADED", reason="Re-slice")
    before = _row(session, job_id)

    assert "This link isn't valid" in _get(client, f"/confirm/{token}", status=404)
    _post(client, f"/confirm/{token}", csrf, status=404)
    _post(client, f"/confirm/{token}/new-link", csrf, status=404)

    assert _row(session, job_id) == before
    assert before["status"] == Status.UPLOADED.value

    # A confirmed job sent back by an admin: its old link shows where it is and moves nothing.
    confirmed = make_job(session, storage, Status.READYTOPRINT, student_email="sam.lee@example.edu")
    old_link = quote_token(session, confirmed.id)
    workflow.override_status(
        session, storage, confirmed.id, actor=admin, target="UPLOADED", reason="Re-slice"
    )
    before = _row(session, confirmed.id)

    body = _post(client, f"/confirm/{old_link}", csrf)

    assert "Nothing was changed" in body
    assert "<strong>Waiting for review</strong>" in body
    assert _row(session, confirmed.id) == before


def test_posts_are_rate_limited_per_address(client, session, storage):
    job_id, token = _pending(session, storage)
    csrf = _csrf(_get(client, f"/confirm/{token}"))
    for _ in range(20):
        _post(client, "/confirm/not-a-real-token", csrf, status=404)

    body = _post(client, f"/confirm/{token}", csrf, status=429)
    _post(client, f"/confirm/{token}/new-link", csrf, status=429)

    assert "Too many tries" in body
    assert "models" not in body  # not the submission form's message
    assert _job(session, job_id).status == Status.PENDING.value
    assert "Your print quote" in _get(client, f"/confirm/{token}")  # reading is never limited


# -- in a real browser, on a phone-sized screen --------------------------------------------------


@pytest.fixture
def live_url(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"])  # the page, not the database, is under test here
def test_confirming_on_a_phone_with_the_keyboard_only(live_url, session, storage, browser):
    job_id, token = _pending(session, storage)
    _analyse(session, job_id)
    context = browser.new_context(viewport={"width": 375, "height": 812})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live_url}/confirm/{token}")

        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        assert page.evaluate("document.querySelector('img.thumbnail').naturalWidth") > 0
        for _ in range(15):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "confirm-button":
                break
        else:
            pytest.fail("the Confirm button can't be reached with the Tab key")
        page.screenshot(path="/tmp/printlab-confirm-375.png", full_page=True)
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('Thanks, your print is confirmed')")
        page.screenshot(path="/tmp/printlab-confirmed-375.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
    finally:
        context.close()
    assert errors == []
    assert _job(session, job_id).status == Status.READYTOPRINT.value
