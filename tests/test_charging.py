"""Charging on SQLite and PostgreSQL: payment methods, account codes, discounts and waivers, refunds and
corrections as new rows, the balance, the receipts, and every refusal changing nothing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from printlab.clock import utcnow
from printlab.domain import charging
from printlab.domain.history import admin_log_sentence, job_event_sentence
from printlab.domain.statuses import Status
from printlab.models import AccountCode, AdminLogEntry, Event, Job, OutboxMessage, Payment
from printlab.services import mail
from printlab.services.errors import NotAllowed, StaleJob, ValidationError
from printlab.services.jobs import payments, refunds, resend, workflow
from printlab.services.jobs.status_change import Expected
from printlab.services.lab import account_codes, workstations
from printlab.services.lab.actors import Actor
from printlab.services.mail.render import Links
from printlab.services.mail.transport import SmtpTransport
from printlab.services.upkeep import sweeps

from .factories import STAFF, actor, make_job, make_staff
from .mail_server import SmtpServer

ADMIN_PC = "ADMIN-PC"


@pytest.fixture
def admin(session) -> Actor:  # type: ignore[no-untyped-def]
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, "admin-password-123", is_admin=True)
    return Actor(STAFF, ADMIN_PC)


@pytest.fixture
def codes(session, admin) -> None:  # type: ignore[no-untyped-def]
    account_codes.add_code(session, "eng-1042", "Engineering — senior design", by=admin)
    account_codes.add_code(session, "ART-2019", "Art — 2019 exhibition", by=admin)
    account_codes.set_active(session, "ART-2019", False, by=admin)


def rows(session, job_id: str) -> list[Payment]:  # type: ignore[no-untyped-def]
    session.expire_all()
    return list(session.scalars(select(Payment).where(Payment.job_id == job_id).order_by(Payment.id)))


def counts(session, job_id: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Payments, events and emails of the job: a refused change leaves all three as they were."""
    session.expire_all()
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model).where(model.job_id == job_id))
        for model in (Payment, Event, OutboxMessage)
    )


def pickup(session, storage, job, **fields):  # type: ignore[no-untyped-def]
    values = {"weighed_g": 40, **fields}  # 40 g of filament at $0.10/g: $4.00
    return workflow.record_pickup(session, storage, job.id, actor=actor(), **values)


# -- the pickup ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["CASH", "CARD", "CAMPUS_CARD"])
def test_each_method_is_recorded_on_the_payment_and_in_the_event(session, storage, method):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, job, method=method, payment_reference="R-7")
    (row,) = rows(session, job.id)
    assert (row.method, row.kind, row.charged_usd, row.list_usd, row.discount_usd) == (
        method, "CHARGE", Decimal("4.00"), Decimal("4.00"), None,
    )  # fmt: skip
    assert row.account_code is None and row.reason is None
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert event.details["payment"]["method"] == method
    assert "Jane" not in str(event.details)
    sentence = job_event_sentence(event.event_type, event.details, event.triggered_by)
    assert f"paid $4.00 by {charging.METHODS[method]}" in sentence


def test_the_method_is_required(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    before = counts(session, job.id)
    with pytest.raises(ValidationError) as caught:
        pickup(session, storage, job)
    assert caught.value.errors == {"method": "Choose how the student paid."}
    with pytest.raises(ValidationError):
        pickup(session, storage, job, method="BITCOIN")
    assert counts(session, job.id) == before
    assert session.get(Job, job.id).status == Status.COMPLETED.value  # type: ignore[union-attr]


def test_an_internal_transfer_names_an_active_account_code(session, storage, codes):
    job = make_job(session, storage, Status.COMPLETED)
    before = counts(session, job.id)
    for typed, message in [
        ("", "Choose the account code the transfer is charged to."),
        ("MATH-9999", "MATH-9999 isn't on the lab's list of account codes."),
        ("not a code!", "NOT A CODE! isn't on the lab's list of account codes."),
        ("ART-2019", "ART-2019 (Art — 2019 exhibition) is no longer in use; ask an admin, or choose another code."),
    ]:  # fmt: skip
        with pytest.raises(ValidationError) as caught:
            pickup(session, storage, job, method="ACCOUNT", account_code=typed)
        assert caught.value.errors == {"account_code": message}
    assert counts(session, job.id) == before

    pickup(session, storage, job, method="ACCOUNT", account_code="eng-1042")
    (row,) = rows(session, job.id)
    assert (row.method, row.account_code, row.charged_usd) == ("ACCOUNT", "ENG-1042", Decimal("4.00"))
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    sentence = job_event_sentence(event.event_type, event.details, event.triggered_by)
    assert "paid $4.00 by Internal transfer (account code) ENG-1042" in sentence


def test_a_code_is_ignored_for_other_methods(session, storage, codes):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, job, method="CASH", account_code="ENG-1042")
    assert rows(session, job.id)[0].account_code is None


def test_a_discount_is_taken_off_the_list_price_with_its_reason(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, job, method="CARD", discount_usd="1.255", reason="Returning student  ")
    (row,) = rows(session, job.id)
    # $1.255 rounds half-up to $1.26
    assert (row.list_usd, row.discount_usd, row.charged_usd, row.reason) == (
        Decimal("4.00"), Decimal("1.26"), Decimal("2.74"), "Returning student",
    )  # fmt: skip
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert event.details["payment"]["discount_usd"] == "1.26"
    sentence = job_event_sentence(event.event_type, event.details, event.triggered_by)
    assert "paid $2.74 by Card terminal (price $4.00, $1.26 off — Returning student)" in sentence


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        pytest.param(
            {"method": "CASH", "discount_usd": "4.01", "reason": "Too generous"},
            {"discount_usd": "The discount ($4.01) is more than the price ($4.00)."},
            id="discount larger than the price",
        ),
        pytest.param(
            {"method": "CASH", "discount_usd": "4.00", "reason": "All of it"},
            {
                "discount_usd": "A discount of the whole price is a waiver: choose Waiver as the payment method."
            },
            id="the whole price without Waiver",
        ),
        pytest.param(
            {"method": "CASH", "discount_usd": "-1"},
            {"discount_usd": "The discount can't be negative."},
            id="negative discount",
        ),
        pytest.param(
            {"method": "CASH", "discount_usd": "lots"},
            {"discount_usd": "The discount must be a number written in digits, like 42.5"},
            id="not a number",
        ),
        pytest.param(
            {"method": "CASH", "discount_usd": "1.00"},
            {"reason": "Give the reason for the discount."},
            id="discount without a reason",
        ),
        pytest.param(
            {"method": "WAIVER", "reason": "   "},
            {"reason": "Give the reason for the waiver, e.g. the course that covers its students' prints."},
            id="waiver without a reason",
        ),
    ],
)
def test_a_bad_discount_or_a_missing_reason_is_refused_and_nothing_is_written(
    session, storage, fields, errors
):
    job = make_job(session, storage, Status.COMPLETED)
    before = counts(session, job.id)
    with pytest.raises(ValidationError) as caught:
        pickup(session, storage, job, **fields)
    assert caught.value.errors == errors
    assert counts(session, job.id) == before
    assert session.get(Job, job.id).status == Status.COMPLETED.value  # type: ignore[union-attr]


def test_a_waiver_takes_off_the_whole_price(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, job, method="WAIVER", discount_usd="0.50", reason="Course ARCH 4010 covers it")
    (row,) = rows(session, job.id)
    assert (row.list_usd, row.discount_usd, row.charged_usd) == (
        Decimal("4.00"),
        Decimal("4.00"),
        Decimal("0"),
    )
    assert payments.balance(session, job.id).paid_usd == Decimal("0.00")  # type: ignore[union-attr]
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    sentence = job_event_sentence(event.event_type, event.details, event.triggered_by)
    assert "paid $0.00 by Waiver (price $4.00, waived — Course ARCH 4010 covers it)" in sentence


def test_revert_after_a_discounted_pickup_brings_the_balance_to_zero(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, job, method="CARD", discount_usd="1.50", reason="Staff member's print")
    workflow.revert(session, storage, job.id, actor=actor(), reason="Wrong job picked up")
    charge, reversal = rows(session, job.id)
    assert reversal.kind == "REVERSAL" and reversal.charged_usd == Decimal("-2.50")
    assert (reversal.refund_of, reversal.method) == (charge.id, "CARD")
    assert payments.balance(session, job.id).paid_usd == Decimal("0.00")  # type: ignore[union-attr]


# -- refunds and corrections ------------------------------------------------------------------------


def refund(session, storage, job_id, **fields):  # type: ignore[no-untyped-def]
    values = {"kind": "REFUND", "method": "CASH", "reason": "Print had a defect", **fields}
    return refunds.refund_or_correct(session, storage, job_id, actor=actor(), **values)


def test_a_refund_is_a_new_negative_row_with_its_event_and_receipt(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)  # paid $4.00 by card terminal
    version = session.get(Job, job.id).updated_at  # type: ignore[union-attr]
    row = refund(session, storage, job.id, amount_usd="2", payment_reference="TILL-9")
    charge, added = rows(session, job.id)
    assert added.id == row.id
    assert (added.kind, added.charged_usd, added.method, added.refund_of, added.reason) == (
        "REFUND", Decimal("-2.00"), "CASH", charge.id, "Print had a defect",
    )  # fmt: skip
    assert (added.recorded_by, added.payment_reference) == (STAFF, "TILL-9")
    assert charge.charged_usd == Decimal("4.00")  # the pickup's row is as it was
    assert payments.balance(session, job.id).paid_usd == Decimal("2.00")  # type: ignore[union-attr]
    fresh = session.get(Job, job.id)
    assert fresh.status == Status.PAIDPICKEDUP.value and fresh.updated_at > version  # type: ignore[union-attr]
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert (event.event_type, event.details["amount_usd"], event.details["balance_usd"]) == (
        "PaymentRefunded", "-2.00", "2.00",
    )  # fmt: skip
    assert (
        job_event_sentence(event.event_type, event.details, event.triggered_by)
        == f"Refunded $2.00 by {STAFF} (Cash) — Print had a defect"
    )
    (email,) = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.job_id == job.id, OutboxMessage.template == "payment_refund"
        )
    ).all()
    assert email.context == {"payment_id": row.id, "balance_usd": "2.00"}


def test_a_refund_larger_than_the_balance_is_refused_and_nothing_is_written(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    refund(session, storage, job.id, amount_usd="3.00")  # $1.00 left
    before = counts(session, job.id)
    version = session.get(Job, job.id).updated_at  # type: ignore[union-attr]
    with pytest.raises(ValidationError) as caught:
        refund(session, storage, job.id, amount_usd="1.01")
    assert caught.value.errors == {"amount_usd": "A refund of $1.01 is more than the job's balance of $1.00."}
    for typed in ("0", "-1", "", "abc"):
        with pytest.raises(ValidationError):
            refund(session, storage, job.id, amount_usd=typed)
    assert counts(session, job.id) == before
    assert session.get(Job, job.id).updated_at == version  # type: ignore[union-attr]
    refund(session, storage, job.id, amount_usd="1.00")  # exactly the balance
    assert payments.balance(session, job.id).paid_usd == Decimal("0.00")  # type: ignore[union-attr]


def test_corrections_go_either_way_but_never_below_zero(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)  # $4.00
    refund(session, storage, job.id, kind="CORRECTION", amount_usd="-0.50", reason="Weighed with the raft")
    refund(
        session,
        storage,
        job.id,
        kind="CORRECTION",
        amount_usd="1.25",
        method="CARD",
        reason="Forgot the supports",
    )
    assert payments.balance(session, job.id).paid_usd == Decimal("4.75")  # type: ignore[union-attr]
    kinds = [(p.kind, p.charged_usd) for p in rows(session, job.id)]
    assert kinds == [
        ("CHARGE", Decimal("4.00")),
        ("CORRECTION", Decimal("-0.50")),
        ("CORRECTION", Decimal("1.25")),
    ]
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert job_event_sentence(event.event_type, event.details, event.triggered_by) == (
        f"Payment corrected by $1.25 by {STAFF} (Card terminal) — Forgot the supports"
    )
    before = counts(session, job.id)
    with pytest.raises(ValidationError) as caught:
        refund(session, storage, job.id, kind="CORRECTION", amount_usd="-4.76")
    assert caught.value.errors == {
        "amount_usd": "A correction of -$4.76 would take the job's balance of $4.75 below $0.00."
    }
    with pytest.raises(ValidationError, match="changes nothing"):
        refund(session, storage, job.id, kind="CORRECTION", amount_usd="0")
    assert counts(session, job.id) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reason": "  "}, "reason"),
        ({"method": None}, "method"),
        ({"method": "WAIVER"}, "method"),
        ({"kind": "REVERSAL"}, "kind"),
        ({"method": "ACCOUNT", "account_code": "NOPE-1"}, "account_code"),
        ({"method": "ACCOUNT", "account_code": "ART-2019"}, "account_code"),
    ],
)
def test_a_refund_needs_a_reason_a_method_and_a_usable_code(session, storage, codes, fields, field):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    before = counts(session, job.id)
    with pytest.raises(ValidationError) as caught:
        refund(session, storage, job.id, amount_usd="1.00", **fields)
    assert field in caught.value.errors
    assert counts(session, job.id) == before


def test_a_refund_to_an_account_code_and_on_an_archived_job(session, storage, codes):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    workflow.archive(session, storage, job.id, actor=Actor.system())  # the retention sweep
    refund(session, storage, job.id, amount_usd="4", method="ACCOUNT", account_code="ENG-1042")
    assert rows(session, job.id)[-1].account_code == "ENG-1042"
    assert payments.balance(session, job.id).paid_usd == Decimal("0.00")  # type: ignore[union-attr]


def test_only_a_paid_job_can_be_refunded(session, storage):
    job = make_job(session, storage, Status.COMPLETED)
    with pytest.raises(ValidationError, match="Only a paid job"):
        refund(session, storage, job.id, amount_usd="1")
    assert counts(session, job.id)[0] == 0


def test_a_refund_from_a_stale_page_is_refused(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    seen = Expected(Status.PAIDPICKEDUP, session.get(Job, job.id).updated_at)  # type: ignore[union-attr]
    refund(session, storage, job.id, amount_usd="1", expected=seen)  # moves the version on
    before = counts(session, job.id)
    with pytest.raises(StaleJob):
        refund(session, storage, job.id, amount_usd="1", expected=seen)
    assert counts(session, job.id) == before
    assert payments.balance(session, job.id).paid_usd == Decimal("3.00")  # type: ignore[union-attr]


def test_the_database_refuses_editing_or_deleting_a_payment(session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    (row,) = rows(session, job.id)
    row.charged_usd = Decimal("0.01")
    with pytest.raises(Exception, match="append-only"):
        session.commit()
    session.rollback()
    assert rows(session, job.id)[0].charged_usd == Decimal("4.00")


# -- account codes -------------------------------------------------------------------------------


def test_account_codes_are_checked_unique_and_logged(session, admin):
    added = account_codes.add_code(session, "  grant-nsf-2231 ", "  NSF   grant 2231 ", by=admin)
    assert (added.code, added.name, added.is_active, added.added_by) == (
        "GRANT-NSF-2231", "NSF grant 2231", True, STAFF,
    )  # fmt: skip
    for code, name, field in [
        ("GRANT-NSF-2231", "Again", "code"),
        ("X", "Too short", "code"),
        ("A" * 41, "Too long", "code"),
        ("ENG--1", "Double dash", "code"),
        ("-ENG", "Leading dash", "code"),
        ("ENG 1042", "Space", "code"),
        ("ENG-1", "", "name"),
        ("ENG-1", "n" * 201, "name"),
    ]:
        with pytest.raises(ValidationError) as caught:
            account_codes.add_code(session, code, name, by=admin)
        assert field in caught.value.errors, code
    assert [c.code for c in account_codes.list_codes(session)] == ["GRANT-NSF-2231"]
    account_codes.set_active(session, "grant-nsf-2231", False, by=admin)
    assert account_codes.list_codes(session, active_only=True) == []
    account_codes.set_active(session, "GRANT-NSF-2231", True, by=admin)
    log = list(session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id)))
    sentences = [admin_log_sentence(e.action, e.details, e.triggered_by) for e in log]
    assert sentences[-3:] == [
        f"Account code GRANT-NSF-2231 (NSF grant 2231) added by {STAFF}",
        f"Account code GRANT-NSF-2231 (NSF grant 2231) taken out of use by {STAFF}",
        f"Account code GRANT-NSF-2231 (NSF grant 2231) put back in use by {STAFF}",
    ]


def test_only_an_admin_workstation_keeps_the_account_codes(session):
    make_staff(session)
    with pytest.raises(NotAllowed):
        account_codes.add_code(session, "ENG-1042", "Engineering", by=actor())
    assert session.get(AccountCode, "ENG-1042") is None


# -- the receipts, through a real SMTP server ----------------------------------------------------------


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def mailer(smtp) -> mail.Mailer:  # type: ignore[no-untyped-def]
    return mail.Mailer(
        transport=SmtpTransport(smtp.settings()),
        links=Links("http://printlab.test", "test-secret-key-that-is-long-enough-0123456789"),
        mail_from=None,
        identity="test-host:1:mail-a",
    )


def _received(smtp, template):  # type: ignore[no-untyped-def]
    return [m for m in smtp.inbox.messages() if m.message["X-PrintLab-Template"] == template]


def test_the_receipt_shows_method_price_discount_and_reason(session, storage, smtp, mailer, codes):
    job = make_job(session, storage, Status.COMPLETED)
    pickup(
        session, storage, job, method="ACCOUNT", account_code="ENG-1042", discount_usd="1.00",
        reason="Senior design teams get $1 off",
    )  # fmt: skip
    mail.deliver_due(session, mailer)
    (receipt,) = _received(smtp, "payment_receipt")
    for line in (
        "  Price:      $4.00",
        "  Discount:   $1.00",
        "  Paid:       $3.00",
        "  Paid by:    Internal transfer to account ENG-1042",
        "The discount was given because: Senior design teams get $1 off",
    ):
        assert line in receipt.text
    assert "Receipt: $3.00" in receipt.message["Subject"]
    assert "Senior design teams get $1 off" in receipt.html and "ENG-1042" in receipt.html


def test_a_waiver_receipt_and_a_refund_receipt(session, storage, smtp, mailer):
    waived = make_job(session, storage, Status.COMPLETED)
    pickup(session, storage, waived, method="WAIVER", reason="Course ARCH 4010 covers its students' prints")
    paid = make_job(
        session, storage, Status.PAIDPICKEDUP, student_email="sam@example.edu", student_name="Sam Lee"
    )
    refund(session, storage, paid.id, amount_usd="1.50", method="CARD", reason="The print had a defect")
    mail.deliver_due(session, mailer)
    receipts = {m.recipients[0]: m for m in _received(smtp, "payment_receipt")}
    waiver = receipts["jane.doe@example.edu"]
    assert "  Waived:     $4.00" in waiver.text and "  Paid:       $0.00" in waiver.text
    assert "The price was waived because: Course ARCH 4010 covers its students' prints" in waiver.text
    (refunded,) = _received(smtp, "payment_refund")
    assert refunded.recipients == ("sam@example.edu",)
    assert "Refund: $1.50 for your 3D print" in refunded.message["Subject"]
    for line in (
        "We have refunded $1.50",
        "  Refunded:   $1.50",
        "  Paid back:  Card terminal",
        "  You paid:   $2.50 in all",
        "Why: The print had a defect",
    ):
        assert line in refunded.text


def test_a_correction_receipt_says_what_changed(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    refund(
        session,
        storage,
        job.id,
        kind="CORRECTION",
        amount_usd="0.75",
        method="CARD",
        reason="Supports missed",
    )
    mail.deliver_due(session, mailer)
    (message,) = _received(smtp, "payment_refund")
    assert message.message["Subject"].startswith("Your 3D print payment was corrected")
    assert "  Charged:    $0.75" in message.text and "  You paid:   $4.75 in all" in message.text


def test_pickup_reminders_say_what_is_owed(session, storage, smtp, mailer):
    owed = make_job(session, storage, Status.COMPLETED)
    free = make_job(session, storage, Status.COMPLETED, student_email="free@example.edu")
    free_row = session.get(Job, free.id)
    free_row.cost_usd = Decimal("0.00")  # a lab whose minimum charge is $0 prints a tiny part for free
    session.commit()
    later = utcnow() + timedelta(days=8)
    assert sweeps.send_pickup_reminders(session, now=later) == 2
    mail.deliver_due(session, mailer, now=later)
    reminders = {m.recipients[0]: m for m in _received(smtp, "pickup_reminder")}
    assert "You pay $4.20 at pickup" in reminders["jane.doe@example.edu"].text
    assert "There is nothing to pay." in reminders["free@example.edu"].text
    assert "You pay" not in reminders["free@example.edu"].text
    assert owed.id != free.id


def test_a_receipt_sent_again_after_a_refund_shows_the_pickup_and_its_method(session, storage, smtp, mailer):
    job = make_job(session, storage, Status.PAIDPICKEDUP)  # $4.00 by card terminal
    refund(session, storage, job.id, amount_usd="1.00")
    mail.deliver_due(session, mailer)
    resend.resend(session, storage, job.id, "payment_receipt", staff=STAFF)
    mail.deliver_due(session, mailer)
    first, again = _received(smtp, "payment_receipt")
    for message in (first, again):
        assert "  Paid:       $4.00" in message.text and "  Paid by:    Card terminal" in message.text
