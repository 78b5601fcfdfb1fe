"""'See my requests' in Chromium on a desktop and a 375 px phone: ask for a link, open it from the mail
folder, sign in, see the list, open a job, sign out."""

from __future__ import annotations

import re
import time
from email import policy
from email.parser import BytesParser

import pytest
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import OutboxMessage, OutboxStatus

from ..factories import make_job
from .conftest import DESKTOP, PHONE, Live, Tab

pytestmark = pytest.mark.browser

JANE = "jane.doe@example.edu"


def link_from_the_mail_folder(live: Live, email: str, after_id: int, timeout: float = 20) -> str:
    """The sign-in link of the newest email to `email` (outbox id above `after_id`), read from the
    .eml file the worker wrote, as the student would click it."""
    mail_dir = live.app.extensions["printlab"].config.mail_dir
    deadline = time.monotonic() + timeout
    while True:
        row = (
            live.fresh()
            .scalars(
                select(OutboxMessage)
                .where(
                    OutboxMessage.template == "sign_in_link",
                    OutboxMessage.recipient == email,
                    OutboxMessage.id > after_id,
                )
                .order_by(OutboxMessage.id.desc())
            )
            .first()
        )
        if row is not None and row.status == OutboxStatus.SENT and row.message_id:
            for path in sorted(mail_dir.glob("*.eml")):
                message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
                if message["Message-ID"] == row.message_id:
                    body = message.get_body(("plain",))
                    assert body is not None
                    found = re.search(r"https?://\S+(/my/sign-in/[A-Za-z0-9_-]+)", body.get_content())
                    assert found, f"no sign-in link in {path.name}"
                    return f"{live.url}{found.group(1)}"
        assert row is None or row.status != OutboxStatus.FAILED, row.last_error
        assert time.monotonic() < deadline, f"no sign-in email reached {mail_dir}"
        time.sleep(0.2)


def newest_outbox_id(live: Live) -> int:
    return live.fresh().scalar(select(OutboxMessage.id).order_by(OutboxMessage.id.desc()).limit(1)) or 0


def fits(tab: Tab, width: int) -> None:
    scroll = tab.page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{tab.page.url} scrolls sideways at {width} px: {scroll}"


def test_a_student_signs_in_by_email_link_sees_their_requests_and_signs_out(live: Live, open_tab):
    with live.worker_paused():  # the quote's token is read from the outbox before the worker sends it
        quoted = make_job(live.session, live.storage, Status.PENDING, student_email=JANE)
        ready = make_job(
            live.session, live.storage, Status.COMPLETED, model="obj_fandisk.obj", student_email=JANE
        )
        make_job(live.session, live.storage, student_email="sam.chen@example.edu", student_name="Sam Chen")
    simple = {job.id: (job.display_name or "").rsplit("_", 1)[1] for job in (quoted, ready)}

    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        tab = open_tab(f"student-{name}", viewport)
        page = tab.page
        tab.go(live.url)
        page.get_by_role("link", name="See my requests").click()
        page.wait_for_url(f"{live.url}/my/sign-in")
        tab.audit()
        fits(tab, viewport["width"])

        # A typo first: a clear message next to the field, nothing sent.
        page.get_by_label("Your email address").fill("jane.doe@")
        before = newest_outbox_id(live)
        page.get_by_role("button", name="Email me a sign-in link").click()
        page.wait_for_load_state("domcontentloaded")
        tab.audit()
        assert "Enter a valid email address" in page.locator("#student_email-error").inner_text()
        assert newest_outbox_id(live) == before

        page.get_by_label("Your email address").fill(JANE)
        page.get_by_role("button", name="Email me a sign-in link").click()
        page.get_by_role("heading", name="Check your email").wait_for()
        tab.audit()
        fits(tab, viewport["width"])

        link = link_from_the_mail_folder(live, JANE, before)
        tab.go(link)
        fits(tab, viewport["width"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live.url}/my")
        tab.audit()
        fits(tab, viewport["width"])
        tab.screenshot(f"my-requests-{name}")

        cards = page.locator(".my-requests .card")
        assert cards.count() == 2  # Sam's job isn't Jane's
        titles = cards.locator(".card-title").all_inner_texts()
        assert titles == [
            f"Job {simple[ready.id]}: Ready for pickup",
            f"Job {simple[quoted.id]}: Quote ready — please confirm",
        ]  # newest first
        steps = cards.locator(".next-step").all_inner_texts()
        assert (
            re.fullmatch(r"Ready for pickup — \$\d+\.\d\d to pay", steps[0])
            and steps[1] == "Confirm your quote"
        )
        assert cards.locator("img.card-thumb").count() == 2  # the worker drew both thumbnails

        # A job opens on its status page; the form is filled in from the last job.
        cards.nth(1).get_by_role("link").click()
        page.wait_for_url(re.compile(r"/status/"))
        tab.audit()
        assert page.get_by_role("heading", level=1).inner_text().startswith(f"Job {simple[quoted.id]}")
        tab.go(f"{live.url}/submit")
        assert page.get_by_label("Full name").input_value() == "Jane Doe"
        assert page.get_by_label("Email").input_value() == JANE

        # The link was used up: opening it again says so and offers a new one.
        tab.go(link)
        assert "already been used" in page.get_by_role("heading", level=1).inner_text()

        tab.go(f"{live.url}/my")
        page.get_by_role("button", name="Sign out", exact=True).click()
        page.wait_for_url(f"{live.url}/my/sign-in")
        tab.audit()
        assert "signed out" in page.locator(".flashes").inner_text()
        tab.go(f"{live.url}/my")
        assert page.url == f"{live.url}/my/sign-in"
