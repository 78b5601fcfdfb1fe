"""In Chromium: an admin opens the Mail page of the embedded setup and follows the links in the mail folder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services import mail
from printlab.services.jobs import quote_links
from printlab.services.lab.workstations import add_workstation
from printlab.services.mail.render import Links
from printlab.services.mail.transport import FolderTransport

from .factories import make_job, make_staff

# The embedded setup (no SMTP server, mail in a folder) is the SQLite one.
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("backend", ["sqlite"])]

PASSWORD = "front-desk-password"


@pytest.fixture
def live_server(lab_env: dict[str, str]) -> Iterator[tuple[str, Any]]:
    from printlab.web.app import create_app

    app = create_app({"TESTING": True}, config=config_module.load(lab_env))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    thread.join(10)
    app.extensions["printlab"].engine.dispose()


def test_an_admin_follows_the_links_of_a_mail_folder_message(session, storage, lab_env, live_server, browser):
    base, _app = live_server
    add_workstation(session, "FrontDesk", PASSWORD, is_admin=True)
    make_staff(session)
    job = make_job(session, storage, Status.PENDING)
    # The worker of the embedded setup: no SMTP server, so the folder; links point at this server.
    mailer = mail.Mailer(
        transport=FolderTransport(Path(lab_env["PRINTLAB_MAIL_DIR"])),
        links=Links(base, lab_env["PRINTLAB_SECRET_KEY"]),
        mail_from=None,
        identity="browser-test:1:mail",
    )
    assert mail.deliver_due(session, mailer).sent == 2  # receipt and quote

    page = browser.new_page()
    page.goto(f"{base}/login?next=/admin/mail")
    page.fill("#workstation", "FrontDesk")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/admin/mail")

    rows = page.locator("#mail-folder tbody tr")
    assert rows.count() == 2
    assert "quote" in rows.nth(0).inner_text().lower()  # newest first
    assert "We received your 3D print request" in rows.nth(1).inner_text()

    rows.nth(0).locator("a").click()
    page.wait_for_selector("#mail-body")
    confirm = page.locator('#mail-body a[href*="/confirm/"]')
    status = page.locator('#mail-body a[href*="/status/"]')
    assert confirm.count() == 1 and status.count() == 1
    token = confirm.get_attribute("href").rsplit("/confirm/", 1)[1]  # type: ignore[union-attr]
    session.rollback()
    assert quote_links.find_by_token(session, token).id == job.id

    status.click()
    page.wait_for_url(f"{base}/status/**")
    assert job.id[:6] in page.inner_text("main")
    page.go_back()

    confirm.click()
    page.wait_for_url(f"{base}/confirm/**")
    assert page.locator("main button", has_text="Confirm").count() == 1  # the quote page, not yet confirmed
    session.rollback()
    assert session.get(Job, job.id).status == Status.PENDING  # looking changes nothing

    page.go_back()
    page.click("text=Show the HTML version")
    page.wait_for_selector("text=Review and confirm the quote")
    page.click("text=See your job's status")
    page.wait_for_url(f"{base}/status/**")
    assert job.id[:6] in page.inner_text("main")
    page.close()
