"""The admin Mail page in Chromium at desktop and phone width: search, paging back and forth, and the Details toggle that holds the technical fields."""

from __future__ import annotations

import re
from typing import Any

import pytest

from printlab.clock import utcnow
from printlab.models import OutboxMessage, OutboxStatus
from printlab.services.lab import workstations

from .conftest import DESKTOP, PASSWORD, PHONE, Live, sign_in

pytestmark = pytest.mark.browser

ADMIN_PC = "ADMIN-PC"
TEMPLATES = ["receipt", "quote", "ready_for_pickup", "pickup_reminder", "payment_receipt"]


def add_emails(live: Live, count: int) -> None:
    """Emails of no job, already sent or cancelled (the worker leaves them alone), and three failed."""
    rows = []
    for i in range(count):
        sent = i % 2 == 0
        rows.append(
            OutboxMessage(
                template=TEMPLATES[i % len(TEMPLATES)],
                recipient=f"student.{i}@a-rather-long-campus-domain.example.edu",
                status=OutboxStatus.SENT if sent else OutboxStatus.CANCELLED,
                sent_at=utcnow() if sent else None,
                message_id=f"<printlab.{i}.0123456789abcdef@printlab.test>" if sent else None,
                claimed_by=f"lab-server:{4000 + i}:mail" if sent else None,
                last_error=None if sent else "A newer quote link replaced it.",
            )
        )
    for i in range(3):
        rows.append(
            OutboxMessage(
                template="quote",
                recipient=f"bounced.{i}@example.edu",
                status=OutboxStatus.FAILED,
                attempts=7,
                last_error="550 5.1.1 no such user here",
            )
        )
    with live.session.begin():
        live.session.add_all(rows)


def list_rows(page: Any) -> Any:
    return page.locator("section[aria-labelledby=emails-heading] tbody tr")


def no_sideways_scroll(page: Any) -> None:
    wide, seen = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert wide <= seen, f"the page is {wide} px wide in a {seen} px viewport"


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_mail_page_searches_pages_and_keeps_technical_fields_behind_details(live, open_tab, viewport):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    add_emails(live, 40)
    tab = open_tab("admin-mail", viewport)
    sign_in(tab, live, ADMIN_PC)
    page = tab.page
    tab.go(f"{live.url}/admin/mail")
    no_sideways_scroll(page)
    width = "desktop" if viewport == DESKTOP else "phone"
    tab.screenshot(f"admin-mail-{width}")

    # Plain columns: who, which email in words, its state, when in the lab's time zone.
    rows = list_rows(page)
    assert rows.count() == 25
    first = rows.first
    assert re.search(
        r"(Receipt|Quote|Ready for pickup|Pickup reminder|Payment receipt) email", first.inner_text()
    )
    assert re.search(r"\d{2}:\d{2} C[SD]T", first.locator("td[data-label=When]").inner_text())
    page_text = page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body")
    assert "ready_for_pickup" not in page_text and "CANCELLED" not in page_text
    # The Message-ID and worker are there, but only once Details is opened.
    sent_row = rows.filter(
        has=page.locator("td[data-label=State]", has_text=re.compile(r"^\s*Sent\s*$"))
    ).first
    message_id = sent_row.locator("dd.mono").first
    assert not message_id.is_visible()
    sent_row.get_by_text("Details").click()
    expect_visible = message_id.inner_text()
    assert message_id.is_visible() and expect_visible.startswith("<printlab.")
    assert "lab-server:" in sent_row.inner_text()
    no_sideways_scroll(page)
    tab.screenshot(f"admin-mail-details-{width}")

    # Paging: older, then back to the newest.
    with page.expect_navigation():
        page.get_by_role("link", name="Older →").click()
    tab.audit()
    assert list_rows(page).count() == 43 - 25
    assert page.get_by_role("link", name="Older →").count() == 0
    with page.expect_navigation():
        page.get_by_role("link", name="← Newer").click()
    tab.audit()
    assert list_rows(page).count() == 25 and page.get_by_role("link", name="← Newer").count() == 0

    # Search: an email's name and a state, then an address.
    page.get_by_label("Find by address, subject or email").fill("pickup")
    page.get_by_label("State").select_option(label="Sent")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    tab.audit()
    found = list_rows(page)
    emails = {t.strip() for t in found.locator("td[data-label=Email]").all_inner_texts()}
    assert found.count() == 8  # of 40: every fifth is each pickup email, every second one sent
    assert all(re.match(r"(Ready for pickup|Pickup reminder) email", e) for e in emails)
    assert set(found.locator("td[data-label=State]").all_inner_texts()) == {"Sent"}
    no_sideways_scroll(page)
    tab.screenshot(f"admin-mail-search-{width}")

    page.get_by_label("Find by address, subject or email").fill("student.17@")
    page.get_by_label("State").select_option(label="Any")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    tab.audit()
    assert list_rows(page).count() == 1 and "student.17@" in list_rows(page).first.inner_text()
    assert "Not sent — no longer needed" in list_rows(page).first.inner_text()
