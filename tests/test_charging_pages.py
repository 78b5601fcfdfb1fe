"""Charging through the pages (both databases): the pickup dialog's payment fields, the refund dialog,
the job page's payment ledger, and the admin page that keeps the account codes."""

from __future__ import annotations

from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import AccountCode, AdminLogEntry, Job, Payment
from printlab.services.lab import account_codes

from . import test_admin_pages, test_staff_pages
from .factories import STAFF, make_job
from .test_admin_pages import ACTING, STAFF_PC, signed_in
from .test_staff_pages import _flash, act, field_errors, fresh, hidden_fields, text

# The signed-in clients of the staff and admin page tests.
staffed = test_staff_pages.staffed
staff_client = test_staff_pages.staff_client
web = test_admin_pages.web


def _add_codes(session) -> None:  # type: ignore[no-untyped-def]
    account_codes.add_code(session, "ENG-1042", "Engineering — senior design")
    account_codes.add_code(session, "ART-2019", "Art — 2019 exhibition")
    account_codes.set_active(session, "ART-2019", False)


def test_the_pickup_dialog_offers_the_methods_and_only_active_codes(staff_client, session, storage):
    _add_codes(session)
    job = make_job(session, storage, Status.COMPLETED)
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/record_pickup"))
    for label in ("Cash", "Card terminal", "Campus card", "Internal transfer (account code)", "Waiver"):
        assert f"<span>{label}</span>" in dialog
    assert "ENG-1042 · Engineering — senior design" in dialog and "ART-2019" not in dialog
    assert "CAMPUS_CARD" not in dialog.replace('value="CAMPUS_CARD"', "")  # codes only as form values


def test_a_pickup_by_internal_transfer_with_a_discount(staff_client, session, storage):
    _add_codes(session)
    job = make_job(session, storage, Status.COMPLETED)
    missing = act(staff_client, job.id, "record_pickup", acting_as=STAFF, weighed_g="40")
    assert missing.status_code == 422 and field_errors(missing) == {"method": "Choose how the student paid."}
    retired = act(
        staff_client, job.id, "record_pickup", acting_as=STAFF, weighed_g="40", method="ACCOUNT",
        account_code="ART-2019",
    )  # fmt: skip
    assert "no longer in use" in field_errors(retired)["account_code"]
    fresh(session)
    assert session.scalars(select(Payment).where(Payment.job_id == job.id)).all() == []

    page = _flash(
        staff_client,
        act(
            staff_client, job.id, "record_pickup", acting_as=STAFF, weighed_g="40", method="ACCOUNT",
            account_code="ENG-1042", discount_usd="1.50", reason="Course ARCH 4010 covers part of it",
        ),
    )  # fmt: skip
    assert "Record pickup and payment: done" in page
    ledger = page[page.index('id="ledger"') :].split("</table>", 1)[0]
    for shown in (
        "Payment at pickup",
        "$2.50",
        "Internal transfer (account code) ENG-1042",
        "discount $1.50 off $4.00",
        "Course ARCH 4010 covers part of it",
    ):
        assert shown in ledger
    assert "ACCOUNT" not in ledger.replace("(account code)", "") and "CHARGE" not in ledger


def test_the_refund_dialog_records_a_refund_and_refuses_too_much(staff_client, session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)  # $4.00 by card terminal
    page = text(staff_client.get(f"/jobs/{job.id}"))
    more = page.split('<details class="more-actions">', 1)[1].split("</details>", 1)[0]
    assert "Refund or correct the payment" in more
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/refund"))
    assert "Paid so far: <strong>$4.00</strong>" in dialog and 'value="WAIVER"' not in dialog

    too_much = act(
        staff_client, job.id, "refund", acting_as=STAFF, kind="REFUND", amount_usd="5", method="CASH",
        reason="Print had a defect",
    )  # fmt: skip
    assert too_much.status_code == 422
    assert field_errors(too_much) == {
        "amount_usd": "A refund of $5.00 is more than the job's balance of $4.00."
    }
    no_reason = act(staff_client, job.id, "refund", acting_as=STAFF, amount_usd="1", method="CASH")
    assert "reason" in field_errors(no_reason)
    fresh(session)
    assert len(session.scalars(select(Payment).where(Payment.job_id == job.id)).all()) == 1

    page = _flash(
        staff_client,
        act(
            staff_client, job.id, "refund", acting_as=STAFF, kind="REFUND", amount_usd="2", method="CASH",
            reason="Print had a defect",
        ),
    )  # fmt: skip
    assert "Refund or correct the payment: done" in page
    assert f"Refunded $2.00 by {STAFF} (Cash) — Print had a defect" in page  # the History
    ledger = page[page.index('id="ledger"') :].split("</table>", 1)[0]
    assert "Refund" in ledger and "-$2.00" in ledger and "<strong>$2.00</strong>" in ledger  # the balance
    fresh(session)
    assert session.get(Job, job.id).status == Status.PAIDPICKEDUP.value  # type: ignore[union-attr]


def test_a_refund_from_a_stale_dialog_is_refused(staff_client, session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    dialog = staff_client.get(f"/jobs/{job.id}/act/refund").get_data(as_text=True)
    seen = hidden_fields(dialog)
    fields = {"acting_as": STAFF, "kind": "REFUND", "amount_usd": "1", "method": "CASH", "reason": "Defect"}
    assert staff_client.post(f"/jobs/{job.id}/act/refund", data={**seen, **fields}).status_code == 303
    again = staff_client.post(f"/jobs/{job.id}/act/refund", data={**seen, **fields})
    assert again.status_code == 409 and "changed by" in text(again)
    fresh(session)
    assert len(session.scalars(select(Payment).where(Payment.job_id == job.id)).all()) == 2


# -- the admin page --------------------------------------------------------------------------------


def test_admins_add_and_retire_account_codes(web, session):
    client = signed_in(web)
    page = client.get("/admin/account-codes").get_data(as_text=True)
    assert 'href="/admin/account-codes" aria-current="page"' in page and "No account codes yet." in page

    bad = client.post("/admin/account-codes", data={**ACTING, "code": "ENG 1042!", "name": ""})
    assert bad.status_code == 422
    body = bad.get_data(as_text=True)
    assert "An account code is 2 to 40 letters and digits" in body and "Give the code&#39;s name" in body
    assert session.scalars(select(AccountCode)).all() == []

    added = client.post("/admin/account-codes", data={**ACTING, "code": "eng-1042", "name": "Engineering"})
    assert added.status_code == 303
    assert "Added account code ENG-1042" in client.get(added.headers["Location"]).get_data(as_text=True)
    again = client.post("/admin/account-codes", data={**ACTING, "code": "ENG-1042", "name": "Twice"})
    assert again.status_code == 422 and "ENG-1042 is already on the list." in again.get_data(as_text=True)

    off = client.post("/admin/account-codes/ENG-1042/active", data={**ACTING, "active": "0"})
    assert "no longer offered at pickup" in client.get(off.headers["Location"]).get_data(as_text=True)
    fresh(session)
    assert session.get(AccountCode, "ENG-1042").is_active is False  # type: ignore[union-attr]
    assert (
        client.post("/admin/account-codes/NOPE-1/active", data={**ACTING, "active": "1"}).status_code == 404
    )
    actions = [e.action for e in session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id))]
    assert actions[-2:] == ["AccountCodeAdded", "AccountCodeDeactivated"]
    log = client.get("/admin/log").get_data(as_text=True)
    assert f"Account code ENG-1042 (Engineering) taken out of use by {STAFF}" in log


def test_only_admin_workstations_keep_account_codes(web, session):
    client = signed_in(web, STAFF_PC)
    assert client.get("/admin/account-codes").status_code == 403
    assert client.post("/admin/account-codes", data={**ACTING, "code": "X-1", "name": "x"}).status_code == 403
    fresh(session)
    assert session.get(AccountCode, "X-1") is None
