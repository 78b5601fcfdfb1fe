"""Submissions are limited per email address and per browser, under a much higher ceiling per client
address (a classroom or campus NAT is one address); a refusal keeps the form and says when to try again."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from printlab import config as config_module
from printlab.clock import to_lab_time, utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.models import Job, LabSetting
from printlab.services.lab import workstations

from .factories import STAFF, form, make_staff, set_per_hour
from .test_submission_retry import CUBE_BYTES, OTHER, held_token, send

PASSWORD = "a-long-password-1"
SEND_AGAIN = re.compile(r"You can send again after (\d\d):(\d\d)\.")


def make_app(lab_env, **env):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env | env))


@pytest.fixture
def web(lab_env):  # type: ignore[no-untyped-def]
    app = make_app(lab_env)
    yield app
    app.extensions["printlab"].engine.dispose()


def browser(app, address: str = "192.0.2.10"):  # type: ignore[no-untyped-def]
    """A new browser (its own cookies) at a client address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def jobs(session) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    return session.scalar(select(func.count()).select_from(Job)) or 0


def model(n: int) -> tuple[bytes, str]:
    """A different file each time (the duplicate rule would refuse the same one from the same email):
    the cube with its own 80-byte binary STL header."""
    return f"model {n}".encode().ljust(80, b" ") + CUBE_BYTES[80:], f"model{n}.stl"


def assert_refused_with_the_form_kept(answer, email: str) -> str:  # type: ignore[no-untyped-def]
    page = answer.get_data(as_text=True)
    assert answer.status_code == 429, page[:1500]
    assert "You've sent as many models as we take in an hour" in page
    assert f'value="{email}"' in page  # the answers are kept
    assert "Your answers and your file are kept below." in page
    found = SEND_AGAIN.search(page)
    assert found, "the page doesn't say when to try again"
    # Within the hour to come, in the lab's time.
    now = to_lab_time(utcnow(), DEFAULT_CATALOG.lab.time_zone)
    shown = now.replace(hour=int(found.group(1)), minute=int(found.group(2)), second=0, microsecond=0)
    if shown < now - timedelta(minutes=1):
        shown += timedelta(days=1)
    assert now < shown <= now + timedelta(minutes=61), (found.group(0), now)
    return held_token(page)


def test_one_email_address_is_limited_whichever_browser_it_comes_from(web, session):
    set_per_hour(session, 2)
    for n in range(2):
        assert send(browser(web, f"192.0.2.{n}"), form(), model(n)).status_code == 303
    refused = send(browser(web, "192.0.2.9"), form(student_email="Jane.Doe@example.edu "), model(9))
    assert_refused_with_the_form_kept(refused, "Jane.Doe@example.edu ")
    assert jobs(session) == 2
    # Someone else is not held back by it.
    assert (
        send(browser(web, "192.0.2.9"), form(student_email="sam@example.edu"), model(10)).status_code == 303
    )


def test_one_browser_is_limited_whichever_email_it_types(web, session):
    set_per_hour(session, 2)
    student = browser(web)
    for n in range(2):
        assert send(student, form(student_email=f"s{n}@example.edu"), model(n)).status_code == 303
    refused = send(student, form(student_email="s9@example.edu"), model(9))
    assert_refused_with_the_form_kept(refused, "s9@example.edu")
    assert jobs(session) == 2
    # The next student at the same address (another browser) goes through.
    assert send(browser(web), form(student_email="s10@example.edu"), model(10)).status_code == 303


def test_a_classroom_behind_one_address_is_not_locked_out(web, session):
    # 25 students on one campus NAT address: each their own browser and email.
    for n in range(25):
        answer = send(browser(web, "198.51.100.7"), form(student_email=f"student{n}@example.edu"), model(n))
        assert answer.status_code == 303, (n, answer.status_code)
    assert jobs(session) == 25


def test_one_address_has_a_much_higher_ceiling(lab_env, session):
    app = make_app(lab_env, PRINTLAB_SUBMIT_RATE_LIMIT="3 per hour")
    try:
        for n in range(3):
            answer = send(
                browser(app, "198.51.100.7"), form(student_email=f"student{n}@example.edu"), model(n)
            )
            assert answer.status_code == 303
        refused = send(browser(app, "198.51.100.7"), form(student_email="student3@example.edu"), model(3))
        assert_refused_with_the_form_kept(refused, "student3@example.edu")
        assert (
            send(browser(app, "198.51.100.8"), form(student_email="s4@example.edu"), model(4)).status_code
            == 303
        )
        assert jobs(session) == 4
    finally:
        app.extensions["printlab"].engine.dispose()


def test_failed_attempts_do_not_count(web, session):
    set_per_hour(session, 1)
    student = browser(web)
    for _ in range(3):
        assert send(student, form(student_name="J"), model(0)).status_code == 422
    assert send(student, form(), model(0)).status_code == 303


def test_an_admin_raises_the_limit_and_the_refused_student_sends_the_kept_file(web, session):
    make_staff(session)
    workstations.add_workstation(session, "ADMIN-PC", PASSWORD, is_admin=True)
    set_per_hour(session, 1)
    student = browser(web)
    assert send(student, form(student_email="a@example.edu"), model(0)).status_code == 303
    refused = send(student, form(student_email="b@example.edu"), (OTHER.read_bytes(), OTHER.name))
    token = assert_refused_with_the_form_kept(refused, "b@example.edu")
    assert f"Your file <strong>{OTHER.name}</strong> is kept" in refused.get_data(as_text=True)

    admin = web.test_client()
    assert admin.post("/login", data={"workstation": "ADMIN-PC", "password": PASSWORD}).status_code == 303
    page = admin.get("/admin/catalog").get_data(as_text=True)
    assert 'name="submissions_per_hour"' in page and 'value="1"' in page
    bad = admin.post("/admin/catalog/submissions", data={"acting_as": STAFF, "submissions_per_hour": "0"})
    assert bad.status_code == 422
    saved = admin.post("/admin/catalog/submissions", data={"acting_as": STAFF, "submissions_per_hour": "30"})
    assert saved.status_code == 303
    session.rollback()
    assert session.get(LabSetting, "submissions_per_hour").value == 30

    retried = send(student, form(student_email="b@example.edu"), held=token)
    assert retried.status_code == 303, retried.get_data(as_text=True)[:1500]
    session.rollback()
    job = session.scalars(select(Job).where(Job.student_email == "b@example.edu")).one()
    assert job.original_filename == OTHER.name


def test_the_time_to_send_again_is_when_the_hour_of_the_first_submission_ends(web, session):
    set_per_hour(session, 1)
    student = browser(web)
    before = utcnow()
    assert send(student, form(), model(0)).status_code == 303
    after = utcnow()
    refused = send(student, form(student_email="b@example.edu"), model(1))

    def shown(moment: datetime) -> str:  # an hour on, in whole seconds, rounded up to the minute
        moment = (moment + timedelta(hours=1)).replace(microsecond=0)
        if moment.second:
            moment = moment.replace(second=0) + timedelta(minutes=1)
        return to_lab_time(moment, DEFAULT_CATALOG.lab.time_zone).strftime("%H:%M")

    found = SEND_AGAIN.search(refused.get_data(as_text=True))
    # The limiter's window ends on a whole second, up to two after the first hit: a hit in the last
    # seconds of a minute may so free the student only in the next one, which the page then names.
    late = after + timedelta(seconds=2)
    assert found and f"{found.group(1)}:{found.group(2)}" in {shown(before), shown(after), shown(late)}


def test_the_limiter_never_sees_the_email_address(web, session, caplog):
    set_per_hour(session, 1)
    assert send(browser(web, "192.0.2.1"), form(), model(0)).status_code == 303
    with caplog.at_level("DEBUG"):
        refused = send(browser(web, "192.0.2.2"), form(), model(1))
    assert refused.status_code == 429
    assert "ratelimit" in caplog.text  # the limiter did log the refusal, with its key
    assert "jane.doe" not in caplog.text.lower()
