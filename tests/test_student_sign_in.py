"""Signing a student in by an emailed link, on both databases: single use, expiry, replay, tampering,
revocation, rate limits, and the same answer (and the same work) for an address with no jobs."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from printlab.clock import utcnow
from printlab.db import session_factory
from printlab.domain.statuses import Status
from printlab.models import OutboxMessage, OutboxStatus, StudentSession, StudentSignInLink
from printlab.services import mail
from printlab.services.errors import ValidationError
from printlab.services.jobs.quote_links import hash_token
from printlab.services.jobs.references import read_reference
from printlab.services.mail.render import Links
from printlab.services.mail.transport import SmtpTransport
from printlab.services.students import sign_in
from printlab.services.students.sign_in import LinkRefused, LinkState, TooManyLinks
from printlab.services.upkeep import sweeps
from printlab.services.views.my_requests import last_answers, my_requests

from .factories import make_job, submit_job
from .mail_server import SmtpServer

SECRET = "test-secret-key-that-is-long-enough-0123456789"
JANE = "jane.doe@example.edu"


def link_token(session, email: str = JANE) -> str:  # type: ignore[no-untyped-def]
    """The raw token of the newest sign-in email to `email`, as the student receives it."""
    session.rollback()
    row = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.template == "sign_in_link", OutboxMessage.recipient == email)
        .order_by(OutboxMessage.id.desc())
    ).first()
    session.rollback()
    assert row is not None and row.context
    return row.context["token"]


def count(session, model) -> int:  # type: ignore[no-untyped-def]
    session.rollback()
    number = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return int(number or 0)


# -- asking for a link ---------------------------------------------------------------------------


def test_a_link_is_emailed_and_only_its_hash_is_stored(session):
    now = utcnow()
    assert sign_in.request_link(session, "  Jane.Doe@Example.EDU ", now=now) == JANE
    token = link_token(session)
    (link,) = session.scalars(select(StudentSignInLink)).all()
    assert link.token_hash == hash_token(token) and token not in link.token_hash
    assert link.email == JANE and link.used_at is None
    assert link.expires_at == now + timedelta(minutes=15)
    (message,) = session.scalars(select(OutboxMessage)).all()
    assert (message.template, message.recipient, message.job_id) == ("sign_in_link", JANE, None)
    assert len(token) >= 43  # 256 bits


@pytest.mark.parametrize(
    "typed", ["", "   ", "jane@", "not an email", "jane@example", "j\x00@x.edu", "a" * 95 + "@x.edu"]
)
def test_a_bad_address_is_refused_with_a_message_and_writes_nothing(session, typed):
    with pytest.raises(ValidationError) as refused:
        sign_in.request_link(session, typed)
    assert set(refused.value.errors) == {"student_email"}
    assert count(session, StudentSignInLink) == 0 and count(session, OutboxMessage) == 0


def test_an_address_without_jobs_gets_the_same_answer_and_the_same_work(session, storage, engine):
    make_job(session, storage, student_email=JANE)
    statements: list[str] = []

    def note(_conn, _cursor, statement, _params, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(statement)

    answers, work = [], []
    for address in (JANE, "nobody.here@example.edu"):
        session.rollback()
        statements.clear()
        event.listen(engine, "before_cursor_execute", note)
        try:
            answers.append(sign_in.request_link(session, address) == address)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        work.append(list(statements))
    assert answers == [True, True]
    assert work[0] == work[1]  # the same statements, in the same order: nothing looks at jobs
    assert not any(re.search(r"\bjob\b", statement) for statement in work[0])  # no read of the job table
    assert count(session, StudentSignInLink) == 2
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "sign_in_link")).all()
    assert sorted(r.recipient for r in rows) == sorted([JANE, "nobody.here@example.edu"])


def test_five_links_an_hour_per_address_then_a_clear_refusal(session):
    start = utcnow()
    for minute in range(sign_in.LINKS_PER_HOUR):
        # the address counts whatever its case
        sign_in.request_link(
            session, JANE.upper() if minute % 2 else JANE, now=start + timedelta(minutes=minute)
        )
    with pytest.raises(TooManyLinks) as refused:
        sign_in.request_link(session, JANE, now=start + timedelta(minutes=30))
    assert refused.value.retry_at == start + timedelta(hours=1)
    assert count(session, StudentSignInLink) == sign_in.LINKS_PER_HOUR  # the refused one wrote nothing
    sign_in.request_link(
        session, "someone.else@example.edu", now=start + timedelta(minutes=30)
    )  # others unaffected
    sign_in.request_link(session, JANE, now=start + timedelta(hours=1, seconds=1))  # the first one aged out


# -- using the link ------------------------------------------------------------------------------


def test_a_link_signs_in_once_and_a_replay_is_refused(session):
    now = utcnow()
    sign_in.request_link(session, JANE, now=now)
    token = link_token(session)
    assert sign_in.link_state(session, token, now=now) == LinkState.USABLE
    assert sign_in.link_state(session, token, now=now) == LinkState.USABLE  # looking doesn't use it
    signed = sign_in.sign_in(session, token, now=now + timedelta(minutes=1))
    assert signed.email == JANE and signed.expires_at == now + timedelta(minutes=1, days=30)
    assert sign_in.signed_in_as(session, signed.session_token, now=now) == JANE
    (stored,) = session.scalars(select(StudentSession)).all()
    assert stored.token_hash == hash_token(signed.session_token)
    with pytest.raises(LinkRefused) as replayed:
        sign_in.sign_in(session, token, now=now + timedelta(minutes=2))
    assert replayed.value.state == LinkState.USED
    assert sign_in.link_state(session, token, now=now) == LinkState.USED
    assert count(session, StudentSession) == 1


def test_a_link_expires_after_fifteen_minutes(session):
    now = utcnow()
    sign_in.request_link(session, JANE, now=now)
    token = link_token(session)
    almost = now + timedelta(minutes=15) - timedelta(seconds=1)
    assert sign_in.link_state(session, token, now=almost) == LinkState.USABLE
    assert sign_in.link_state(session, token, now=now + timedelta(minutes=15)) == LinkState.EXPIRED
    with pytest.raises(LinkRefused) as refused:
        sign_in.sign_in(session, token, now=now + timedelta(minutes=15))
    assert refused.value.state == LinkState.EXPIRED
    assert count(session, StudentSession) == 0
    sign_in.sign_in(session, token, now=almost)  # one second earlier it still worked


def test_a_tampered_or_made_up_link_is_invalid(session):
    sign_in.request_link(session, JANE)
    token = link_token(session)
    changed = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (changed, token + "x", token[:-1], "", "x" * 5000, "made-up-token"):
        assert sign_in.link_state(session, bad) == LinkState.INVALID
        with pytest.raises(LinkRefused) as refused:
            sign_in.sign_in(session, bad)
        assert refused.value.state == LinkState.INVALID
    assert count(session, StudentSession) == 0
    sign_in.sign_in(session, token)  # the real one is untouched


def test_two_browsers_opening_the_same_link_at_once_sign_in_once(engine, session):
    sign_in.request_link(session, JANE)
    token = link_token(session)
    sessions = session_factory(engine)
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def use() -> None:
        with sessions() as own:
            start.wait()
            try:
                sign_in.sign_in(own, token)
                outcomes.append("signed in")
            except LinkRefused as exc:
                outcomes.append(exc.state.value)

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["signed in", "used"]
    assert count(session, StudentSession) == 1


# -- sessions ------------------------------------------------------------------------------------


def _signed_in(session, email: str = JANE, now=None) -> str:  # type: ignore[no-untyped-def]
    now = now or utcnow()
    sign_in.request_link(session, email, now=now)
    return sign_in.sign_in(session, link_token(session, email), now=now).session_token


def test_a_session_lasts_thirty_days(session):
    now = utcnow()
    browser = _signed_in(session, now=now)
    assert sign_in.signed_in_as(session, browser, now=now + timedelta(days=30, seconds=-1)) == JANE
    assert sign_in.signed_in_as(session, browser, now=now + timedelta(days=30)) is None
    assert sign_in.signed_in_as(session, browser[:-1] + "Z", now=now) is None
    assert sign_in.signed_in_as(session, None) is None and sign_in.signed_in_as(session, "") is None


def test_sign_out_ends_this_browser_only(session):
    laptop, phone = _signed_in(session), _signed_in(session)
    sign_in.sign_out(session, laptop)
    assert sign_in.signed_in_as(session, laptop) is None
    assert sign_in.signed_in_as(session, phone) == JANE
    sign_in.sign_out(session, laptop)  # again: nothing happens
    sign_in.sign_out(session, "never-issued")


def test_sign_out_everywhere_ends_every_session_of_the_address_and_no_one_elses(session):
    laptop, phone = _signed_in(session), _signed_in(session)
    other = _signed_in(session, "sam.chen@example.edu")
    assert sign_in.sign_out_everywhere(session, phone) == 2
    assert sign_in.signed_in_as(session, laptop) is None and sign_in.signed_in_as(session, phone) is None
    assert sign_in.signed_in_as(session, other) == "sam.chen@example.edu"
    assert sign_in.sign_out_everywhere(session, phone) == 0  # an ended session ends nothing more
    assert sign_in.sign_out_everywhere(session, "never-issued") == 0


def test_the_sweep_forgets_spent_links_and_ended_sessions(session, storage):
    long_ago = utcnow() - timedelta(days=3)
    old = _signed_in(session, now=long_ago)
    live = _signed_in(session)
    sign_in.request_link(session, "sam.chen@example.edu")  # unused, still valid
    sign_in.sign_out(session, old, now=long_ago + timedelta(hours=1))
    assert count(session, StudentSignInLink) == 3 and count(session, StudentSession) == 2
    report = sweeps.run_sweeps(session, storage)
    assert report.errors == [] and report.sign_ins_forgotten == 2  # the old link and the old session
    assert count(session, StudentSignInLink) == 2 and count(session, StudentSession) == 1
    assert sign_in.signed_in_as(session, live) == JANE
    assert sign_in.forget_spent(session) == 0


# -- the email -----------------------------------------------------------------------------------


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    server = SmtpServer().start()
    yield server
    server.stop()


def _mailer(smtp):  # type: ignore[no-untyped-def]
    return mail.Mailer(
        transport=SmtpTransport(smtp.settings()),
        links=Links("http://printlab.test", SECRET),
        mail_from=None,
        identity="test-host:1:mail-a",
    )


def test_the_sign_in_email_carries_the_link_and_its_token_is_scrubbed_once_sent(session, smtp):
    sign_in.request_link(session, JANE)
    token = link_token(session)
    assert mail.deliver_due(session, _mailer(smtp)).sent == 1
    (received,) = smtp.inbox.messages()
    assert received.message["To"] == JANE
    assert received.message["Subject"] == "Your link to see your 3D print requests at Makerspace 3D Print Lab"
    assert f"http://printlab.test/my/sign-in/{token}" in received.text
    assert f'href="http://printlab.test/my/sign-in/{token}"' in received.html
    assert "15 minutes" in received.text
    session.rollback()
    (row,) = session.scalars(select(OutboxMessage)).all()
    assert row.status == OutboxStatus.SENT and "token" not in (row.context or {})


def test_a_link_that_expired_before_it_could_be_sent_is_not_sent(session, smtp):
    sign_in.request_link(session, JANE, now=utcnow() - timedelta(minutes=20))
    report = mail.deliver_due(session, _mailer(smtp))
    assert (report.sent, report.cancelled) == (0, 1)
    assert smtp.inbox.messages() == []
    session.rollback()
    (row,) = session.scalars(select(OutboxMessage)).all()
    assert row.status == OutboxStatus.CANCELLED and "token" not in (row.context or {})


# -- the list ------------------------------------------------------------------------------------


def test_my_requests_lists_the_addresses_jobs_newest_first_ignoring_case(session, storage):
    start = utcnow() - timedelta(hours=3)
    first = make_job(session, storage, Status.COMPLETED, student_email=JANE)
    second = submit_job(
        session,
        storage,
        "obj_fandisk.obj",
        now=start + timedelta(hours=1),
        student_email="Jane.Doe@Example.edu",
    )
    make_job(session, storage, student_email="sam.chen@example.edu")
    found = my_requests(session, "JANE.DOE@example.edu", SECRET)
    # newest first: the second was submitted two hours ago, the first just now
    assert [r.simple_id for r in found.requests] == [
        (job.display_name or "").rsplit("_", 1)[1] for job in (first, second)
    ]
    assert [read_reference(SECRET, r.reference) for r in found.requests] == [first.id, second.id]
    by_file = {r.file_name: r for r in found.requests}
    assert set(by_file) == {"stl_binary_20mm_xyz_cube.stl", "obj_fandisk.obj"}
    ready = by_file["stl_binary_20mm_xyz_cube.stl"]
    assert ready.status_label == "Ready for pickup"
    assert ready.next_step.startswith("Ready for pickup — $") and ready.next_step.endswith(" to pay")
    assert ready.price is not None and ready.price.startswith("Quote $")
    waiting = by_file["obj_fandisk.obj"]
    assert (waiting.status_label, waiting.price) == ("Waiting for review", None)
    assert found.more is False


def test_my_requests_is_newest_first_and_says_what_was_paid(session, storage):
    older = make_job(session, storage, Status.PAIDPICKEDUP, student_email=JANE)
    newer = make_job(session, storage, Status.PENDING, student_email=JANE, color="Blue")
    found = my_requests(session, JANE, SECRET).requests
    assert [r.status for r in found] == [Status.PENDING, Status.PAIDPICKEDUP]
    assert found[0].next_step == "Confirm your quote"
    assert found[1].price is not None and found[1].price.startswith("Paid $")
    assert found[1].next_step == "Nothing more to do"
    assert {older.id, newer.id}  # both made through the real workflow


def test_the_form_is_filled_from_the_newest_job(session, storage):
    assert last_answers(session, JANE) is None
    submit_job(session, storage, student_email=JANE, class_number="ME 2110")
    submit_job(
        session, storage, "obj_fandisk.obj", now=utcnow() + timedelta(seconds=5),
        student_email=JANE, student_name="Jane Q. Doe", discipline="Architecture", class_number="ARCH 4010",
    )  # fmt: skip
    answers = last_answers(session, "Jane.Doe@example.edu")
    assert answers is not None
    assert (answers.student_name, answers.student_email, answers.discipline, answers.class_number) == (
        "Jane Q. Doe", JANE, "Architecture", "ARCH 4010",
    )  # fmt: skip
