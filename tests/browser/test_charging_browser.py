"""Charging in Chromium, at a desk and on a phone: a pickup by internal transfer with a discount, then a
refund, with the job page's payment ledger and balance after each."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from printlab.domain.statuses import Status
from printlab.services.lab import account_codes

from ..factories import STAFF, make_job
from .conftest import DESKTOP, PHONE, Live, choose_acting_as, sign_in
from .test_lifecycle import open_action, open_job, send_action, status_pill

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_pickup_by_internal_transfer_with_a_discount_then_a_refund(live: Live, open_tab, viewport):
    session, storage = live.session, live.storage
    account_codes.add_code(session, "ARCH-4010", "Architecture — ARCH 4010 studio")
    account_codes.add_code(session, "ART-2019", "Art — 2019 exhibition")
    account_codes.set_active(session, "ART-2019", False)
    job = make_job(session, storage, Status.COMPLETED)  # quoted 42 g: $4.20
    staff = open_tab("LAB-PC-1", viewport)
    page = staff.page
    sign_in(staff, live)
    open_job(staff, live, job)

    open_action(staff, "Record pickup and payment")
    choose_acting_as(staff, STAFF)
    page.get_by_label("Weighed grams").fill("40")
    expect(page.locator("#final-output")).to_have_text("$4.00")
    page.get_by_label("Internal transfer (account code)").check()
    codes = page.locator("#account_code option").all_inner_texts()
    assert codes == ["Choose a code", "ARCH-4010 · Architecture — ARCH 4010 studio"]  # not the retired one
    page.locator("#account_code").select_option("ARCH-4010")
    page.get_by_label("Discount in $").fill("5")
    staff.screenshot("pickup-with-discount")
    with page.expect_navigation():
        page.locator("#action-submit").click()
    # A discount larger than the price is refused with its message, and nothing is recorded.
    expect(page.locator("#discount_usd-error")).to_have_text(
        "The discount ($5.00) is more than the price ($4.00)."
    )
    staff.audit()
    expect(page.get_by_label("Internal transfer (account code)")).to_be_checked()  # what was typed stays
    page.get_by_label("Discount in $").fill("1.50")
    page.get_by_label("Reason for a discount or waiver").fill(
        "Course ARCH 4010 covers part of its students' prints"
    )
    send_action(staff, "Record pickup and payment")
    assert status_pill(staff) == "Paid & Picked Up"
    ledger = page.locator("#ledger")
    expect(ledger).to_contain_text("Internal transfer (account code) ARCH-4010")
    expect(ledger).to_contain_text("discount $1.50 off $4.00")
    expect(page.locator("#balance")).to_contain_text("$2.50")
    staff.screenshot("ledger-after-pickup")

    open_action(staff, "Refund or correct the payment")  # "Acting as" stays chosen for this tab
    expect(page.locator("#balance-now")).to_contain_text("$2.50")
    page.get_by_label("Amount in $").fill("3")
    page.get_by_label("Cash").check()
    page.get_by_label("Reason", exact=True).fill("Print had a defect")
    with page.expect_navigation():
        page.locator("#action-submit").click()
    expect(page.locator("#amount_usd-error")).to_have_text(
        "A refund of $3.00 is more than the job's balance of $2.50."
    )
    staff.audit()
    page.get_by_label("Amount in $").fill("2")
    send_action(staff, "Refund or correct the payment")
    expect(ledger.locator("tbody tr")).to_have_count(2)
    expect(ledger.locator("tbody tr").nth(1)).to_contain_text("Refund")
    expect(ledger.locator("tbody tr").nth(1)).to_contain_text("-$2.00")
    expect(ledger.locator("tfoot")).to_contain_text("$0.50")
    expect(page.locator(".timeline")).to_contain_text(
        re.compile(r"Refunded \$2\.00 by .+ \(Cash\) — Print had a defect")
    )
    assert status_pill(staff) == "Paid & Picked Up"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"the job page is {width} px wide"
    staff.screenshot("ledger-after-refund")
