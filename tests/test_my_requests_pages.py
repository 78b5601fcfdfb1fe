"""The "My requests" pages on both databases: asking for a link, opening it (GET shows, POST signs in),
the list, signing out, CSRF, bad input, refused links and the prefilled submission form."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import OutboxMessage, StudentSession, StudentSignInLink
from printlab.services.students import sign_in
from printlab.web.my.signed_in import COOKIE

from .factories import make_job

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
JANE = "jane.doe@example.edu"


def csrf(client, page: str = "/my/sign-in") -> str:  # type: ignore[no-untyped-def]
    found = CSRF_FIELD.search(client.get(page).get_data(as_text=True))
    assert found, f"{page} has no form"
    return found.group(1)


def ask(client, email: str, status: int = 200) -> str:  # type: ignore[no-untyped-def]
    response = client.post("/my/sign-in", data={"csrf_token": csrf(client), "student_email": email})
    body = response.get_data(as_text=True)
    assert response.status_code == status, body[:500]
    assert "Traceback" not in body
    assert response.headers["Cache-Control"] == "no-store"
    return body


def newest_token(session, email: str = JANE) -> str:  # type: ignore[no-untyped-def]
    session.rollback()
    row = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.template == "sign_in_link", OutboxMessage.recipient == email)
        .order_by(OutboxMessage.id.desc())
    ).first()
    session.rollback()
    assert row is not None
    return row.context["token"]


def rows(session, model) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    number = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return int(number or 0)


def signed_in(client, session, email: str = JANE):  # type: ignore[no-untyped-def]
    ask(client, email)
    token = newest_token(session, email)
    page = client.get(f"/my/sign-in/{token}")
    assert page.status_code == 200
    answer = client.post(
        f"/my/sign-in/{token}", data={"csrf_token": CSRF_FIELD.search(page.get_data(as_text=True)).group(1)}
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/my")
    return answer


# -- asking --------------------------------------------------------------------------------------


def test_every_student_page_links_to_my_requests(client, session, storage):
    job = make_job(session, storage)
    from printlab.services.jobs.references import make_reference

    reference = make_reference(client.application.config["SECRET_KEY"], job.id)
    for page in ("/", "/submit", f"/status/{reference}"):
        body = client.get(page).get_data(as_text=True)
        assert 'href="/my"' in body and "See my requests" in body, page


def test_my_requests_without_signing_in_asks_for_the_address(client):
    answer = client.get("/my")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/my/sign-in")
    body = client.get("/my/sign-in").get_data(as_text=True)
    assert "Your email address" in body and "Email me a sign-in link" in body


def test_asking_without_the_forms_csrf_token_is_refused(client, session):
    answer = client.post("/my/sign-in", data={"student_email": JANE})
    assert answer.status_code == 400 and "Form expired" in answer.get_data(as_text=True)
    assert rows(session, StudentSignInLink) == 0 and rows(session, OutboxMessage) == 0


@pytest.mark.parametrize(
    ("typed", "message"),
    [("", "Enter your email address."), ("jane@", "Enter a valid email address"), ("j\u202ene@x.edu", "")],
)
def test_a_bad_address_gets_a_clear_message_and_sends_nothing(client, session, typed, message):
    body = ask(client, typed, 422)
    assert 'aria-invalid="true"' in body and "field-error" in body
    assert message in body
    assert rows(session, StudentSignInLink) == 0 and rows(session, OutboxMessage) == 0


def test_the_answer_is_the_same_for_an_address_with_jobs_and_one_without(client, session, storage):
    make_job(session, storage, student_email=JANE)
    known = ask(client, JANE)
    unknown = ask(client, "nobody.here@example.edu")
    assert "Check your email" in known
    assert known.replace(JANE, "ADDRESS") == unknown.replace("nobody.here@example.edu", "ADDRESS")
    assert rows(session, OutboxMessage) == 3  # the job's receipt and two sign-in links


def test_the_sixth_link_in_an_hour_for_one_address_is_refused_with_when_to_ask_again(client, session):
    for _ in range(sign_in.LINKS_PER_HOUR):
        ask(client, JANE)
    body = ask(client, "Jane.Doe@example.edu", 429)
    assert "several links to this address" in body and re.search(r"after \d\d:\d\d", body)
    assert rows(session, StudentSignInLink) == sign_in.LINKS_PER_HOUR


def test_one_browser_may_ask_ten_times_an_hour(client, session):
    for number in range(10):
        ask(client, f"student{number}@example.edu")
    body = ask(client, "student11@example.edu", 429)
    assert "Too many links" in body
    assert rows(session, StudentSignInLink) == 10


# -- the link ------------------------------------------------------------------------------------


def test_opening_the_link_shows_a_button_and_only_the_post_signs_in(client, session, storage):
    make_job(session, storage, Status.PENDING, student_email=JANE)
    ask(client, JANE)
    token = newest_token(session)
    for _ in range(2):  # a mail scanner, then the student
        page = client.get(f"/my/sign-in/{token}")
        assert page.status_code == 200 and "Sign in" in page.get_data(as_text=True)
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert rows(session, StudentSession) == 0
    answer = client.post(f"/my/sign-in/{token}", data={"csrf_token": csrf(client, f"/my/sign-in/{token}")})
    assert answer.status_code == 303
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=2592000" in cookie  # 30 days
    raw = cookie.split(";", 1)[0].split("=", 1)[1]
    session.rollback()
    stored = session.scalars(select(StudentSession.token_hash)).all()
    assert raw not in stored and len(stored) == 1  # only its hash is kept
    body = client.get("/my").get_data(as_text=True)
    assert "My requests" in body and JANE in body and "Confirm your quote" in body


def test_posting_the_link_without_csrf_is_refused_and_uses_nothing(client, session):
    ask(client, JANE)
    token = newest_token(session)
    assert client.post(f"/my/sign-in/{token}").status_code == 400
    assert sign_in.link_state(session, token) == sign_in.LinkState.USABLE


def test_a_replayed_link_gets_a_clear_page_with_a_way_to_ask_again(client, app, session):
    signed_in(client, session)
    token = newest_token(session)
    other = app.test_client()
    page = other.get(f"/my/sign-in/{token}")
    body = page.get_data(as_text=True)
    assert page.status_code == 410 and "already been used" in body and "Email me a sign-in link" in body
    answer = other.post(f"/my/sign-in/{token}", data={"csrf_token": CSRF_FIELD.search(body).group(1)})
    assert answer.status_code == 410 and COOKIE not in answer.headers.get("Set-Cookie", "")
    assert rows(session, StudentSession) == 1


def test_an_expired_link_and_a_tampered_one_get_clear_pages(client, session):
    sign_in.request_link(session, JANE, now=utcnow() - timedelta(minutes=16))
    expired = newest_token(session)
    page = client.get(f"/my/sign-in/{expired}")
    assert page.status_code == 410 and "has expired" in page.get_data(as_text=True)
    ask(client, JANE)
    fresh = newest_token(session)
    tampered = fresh[:-2] + ("AA" if not fresh.endswith("AA") else "BB")
    page = client.get(f"/my/sign-in/{tampered}")
    body = page.get_data(as_text=True)
    assert page.status_code == 404 and "isn't valid" in body and "Email me a sign-in link" in body
    assert client.get("/my/sign-in/%00").status_code == 404


# -- signed in -----------------------------------------------------------------------------------


def test_the_list_shows_only_the_students_own_jobs_with_links_to_their_status_pages(client, session, storage):
    mine = make_job(session, storage, Status.COMPLETED, student_email="Jane.Doe@example.edu")
    make_job(session, storage, student_email="sam.chen@example.edu", student_name="Sam Chen")
    signed_in(client, session)
    body = client.get("/my").get_data(as_text=True)
    assert (mine.display_name or "").rsplit("_", 1)[1] in body
    assert "Ready for pickup — $" in body and "to pay" in body
    assert "Sam Chen" not in body and "sam.chen" not in body
    (status_link,) = re.findall(r'href="(/status/[^"]+)"', body)
    assert "Ready for pickup" in client.get(status_link).get_data(as_text=True)


def test_a_signed_in_students_form_is_filled_from_their_last_job(client, session, storage):
    make_job(session, storage, student_email=JANE, class_number="ME 2110", discipline="Engineering")
    assert 'value="Jane Doe"' not in client.get("/submit").get_data(as_text=True)
    signed_in(client, session)
    body = client.get("/submit").get_data(as_text=True)
    assert 'value="Jane Doe"' in body and f'value="{JANE}"' in body and 'value="ME 2110"' in body
    assert "<option selected>Engineering</option>" in body


def test_a_signed_in_student_without_jobs_sees_an_empty_list_and_their_address_in_the_form(client, session):
    signed_in(client, session, "new.student@example.edu")
    assert "No print requests from this address yet" in client.get("/my").get_data(as_text=True)
    assert 'value="new.student@example.edu"' in client.get("/submit").get_data(as_text=True)


def test_sign_out_ends_this_browser(client, session):
    signed_in(client, session)
    answer = client.post("/my/sign-out", data={"csrf_token": csrf(client, "/my")})
    assert answer.status_code == 303 and f"{COOKIE}=;" in answer.headers["Set-Cookie"]
    assert client.get("/my").status_code == 303
    assert "signed out" in client.get("/my/sign-in").get_data(as_text=True)


def test_sign_out_everywhere_ends_the_other_browsers_too(client, app, session):
    signed_in(client, session)
    phone = app.test_client()
    signed_in(phone, session)
    assert phone.get("/my").status_code == 200
    answer = client.post("/my/sign-out-everywhere", data={"csrf_token": csrf(client, "/my")})
    assert answer.status_code == 303
    assert client.get("/my").status_code == 303 and phone.get("/my").status_code == 303


def test_signing_out_without_csrf_is_refused(client, session):
    signed_in(client, session)
    assert client.post("/my/sign-out").status_code == 400
    assert client.post("/my/sign-out-everywhere").status_code == 400
    assert client.get("/my").status_code == 200
