"""Browser harness: the real app with its worker thread on a loopback port, and headless Chromium pages that audit themselves."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from printlab import config as config_module
from printlab.models import Job, OutboxMessage, OutboxStatus
from printlab.services.files.storage import Storage
from printlab.services.jobs.references import make_reference
from printlab.services.lab import workstations

from ..factories import STAFF, make_staff

SCREENSHOTS = Path("/tmp")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}
PASSWORD = "a-long-password-1"
OTHER_STAFF = "Sam Chen"
INACTIVE_STAFF = "Old Timer"


@pytest.fixture
def backend() -> str:
    """Browser flows run on SQLite (the embedded setup); a test may parametrize `backend` to add PostgreSQL."""
    return "sqlite"


# -- the live server ---------------------------------------------------------------------------


@dataclass
class Live:
    """The running app: its address, storage, and a database session for arranging and checking."""

    url: str
    app: Any
    storage: Storage
    session: Session
    worker_threads: list[threading.Thread] = field(default_factory=list)

    @contextmanager
    def worker_paused(self) -> Iterator[None]:
        """Hold the in-process worker (no analysis, no email) until the block ends."""
        worker = self.app.extensions["printlab.worker"]
        worker.stop()
        for thread in self.worker_threads:
            thread.join(10)
            assert not thread.is_alive(), "the worker did not stop"
        try:
            yield
        finally:
            worker.stop_event.clear()
            self.worker_threads = [worker.start_thread()]

    def reference(self, job_id: str) -> str:
        return make_reference(self.app.extensions["printlab"].config.secret_key, job_id)

    def status_url(self, job_id: str) -> str:
        return f"{self.url}/status/{self.reference(job_id)}"

    def fresh(self) -> Session:
        self.session.rollback()
        self.session.expire_all()
        return self.session

    def newest_job(self) -> Job:
        job = self.fresh().scalars(select(Job).order_by(Job.created_at.desc())).first()
        assert job is not None, "no job was created"
        return job

    def quote_link(self, job_id: str, timeout: float = 20) -> str:
        """The confirm link of the job's newest quote email, read from the mail folder the worker writes.

        The worker thread delivers the outbox row (and then scrubs the raw token from it), so the
        link is taken from the delivered message, as the student would click it, on this server.
        """
        return self.emailed_link(job_id, "quote", "/confirm/", timeout)

    def emailed_link(self, job_id: str, template: str, path: str, timeout: float = 20) -> str:
        """The link starting with `path` in the job's newest `template` email, as delivered."""
        mail_dir = self.app.extensions["printlab"].config.mail_dir
        deadline = time.monotonic() + timeout
        while True:
            row = (
                self.fresh()
                .scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.job_id == job_id, OutboxMessage.template == template)
                    .order_by(OutboxMessage.id.desc())
                )
                .first()
            )
            assert row is not None, f"no {template} email in the outbox"
            if row.status == OutboxStatus.SENT and row.message_id:
                for found_path in sorted(mail_dir.glob("*.eml")):
                    message = BytesParser(policy=policy.default).parsebytes(found_path.read_bytes())
                    if message["Message-ID"] == row.message_id:
                        body = message.get_body(("plain",))
                        assert body is not None
                        found = re.search(re.escape(path) + r"([A-Za-z0-9_-]+)", body.get_content())
                        assert found, f"no {path} link in {found_path.name}"
                        return f"{self.url}{path}{found.group(1)}"
            assert row.status != OutboxStatus.FAILED, row.last_error
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the {template} email was not delivered to {mail_dir} (status {row.status})"
                )
            time.sleep(0.2)


@pytest.fixture
def live(lab_env: dict[str, str], session: Session, storage: Storage) -> Iterator[Live]:
    """The real app (TESTING off, so the in-process worker analyses uploads), served on 127.0.0.1."""
    from printlab.web.app import create_app

    env = {**lab_env, "PRINTLAB_SUBMIT_RATE_LIMIT": "500 per hour"}
    before = set(threading.enumerate())
    app = create_app(config=config_module.load(env))
    worker_threads = [t for t in threading.enumerate() if t not in before]
    assert app.extensions.get("printlab.worker") is not None, "the in-process worker did not start"
    make_staff(session)
    make_staff(session, OTHER_STAFF)
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    workstations.add_workstation(session, "LAB-PC-2", PASSWORD)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="printlab-test-server", daemon=True)
    thread.start()
    live = Live(f"http://127.0.0.1:{server.server_port}", app, storage, session, worker_threads)
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(10)
        app.extensions["printlab.worker"].stop()
        for worker in live.worker_threads:
            worker.join(10)
        session.rollback()
        app.extensions["printlab"].engine.dispose()


# -- Chromium ----------------------------------------------------------------------------------


#: Run on every page a test visits: labels, alt text, one h1, lang="en", unique ids.
AUDIT_JS = """() => {
  const problems = [];
  if (document.documentElement.getAttribute("lang") !== "en") problems.push('html lang is not "en"');
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 elements`);
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    const named = (el.labels && el.labels.length > 0) || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`${el.tagName.toLowerCase()} #${el.id || "(no id)"} name=${el.name} has no label`);
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`img ${img.getAttribute("src")} has no alt`);
  }
  const seen = new Set();
  for (const el of document.querySelectorAll("[id]")) {
    if (seen.has(el.id)) problems.push(`id "${el.id}" is used more than once`);
    seen.add(el.id);
  }
  return problems;
}"""


@dataclass
class Tab:
    """A Chromium page that records script errors and the pages it went to, each of which a test audits."""

    page: Any
    name: str
    errors: list[str] = field(default_factory=list)
    visited: set[str] = field(default_factory=set)
    navigations: list[str] = field(default_factory=list)
    audited: set[str] = field(default_factory=set)
    findings: dict[str, list[str]] = field(default_factory=dict)

    def go(self, url: str) -> Any:
        response = self.page.goto(url)
        self.audit()
        return response

    def audit(self) -> None:
        """Check the page now shown; problems are collected and fail the test at the end."""
        self.page.wait_for_load_state("domcontentloaded")
        where = _page_key(self.page.url)
        problems = self.page.evaluate(AUDIT_JS)
        if problems:
            self.findings.setdefault(where, [])
            self.findings[where].extend(p for p in problems if p not in self.findings[where])
        self.audited.add(where)

    def screenshot(self, name: str) -> Path:
        path = SCREENSHOTS / f"printlab-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def _page_key(url: str) -> str:
    parts = urlsplit(url)
    return parts.path


def _navigated(tab: Tab, url: str) -> None:
    tab.visited.add(_page_key(url))
    tab.navigations.append(url)


def _record_console(tab: Tab, message: Any) -> None:
    # Refused resources (409 from a lock, 404 favicon) are answers the page handles; CSP refusals
    # and script errors are bugs.
    if message.type == "error" and "Failed to load resource" not in message.text:
        tab.errors.append(f"console: {message.text}")


@pytest.fixture
def open_tab(browser: Any) -> Iterator[Callable[..., Tab]]:
    """Open a page in a fresh browser context (its own cookies: one context per person or computer)."""
    opened: list[tuple[Any, Tab]] = []

    def open_(name: str = "tab", viewport: dict[str, int] | None = None, **options: Any) -> Tab:
        context = browser.new_context(viewport=viewport or DESKTOP, **options)
        context.set_default_timeout(15_000)
        page = context.new_page()
        tab = Tab(page, name)
        page.on("pageerror", lambda error: tab.errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: _record_console(tab, message))
        page.on("framenavigated", lambda frame: frame == page.main_frame and _navigated(tab, frame.url))
        opened.append((context, tab))
        return tab

    yield open_
    problems = []
    for context, tab in opened:
        unaudited = {url for url in tab.visited - tab.audited if url not in ("", "/", "about:blank")}
        if unaudited:
            problems.append(f"{tab.name}: pages visited but not audited: {sorted(unaudited)}")
        for where, found in tab.findings.items():
            problems.append(f"{tab.name}: accessibility on {where}: {found}")
        if tab.errors:
            problems.append(f"{tab.name}: script errors: {tab.errors}")
        context.close()
    if problems:
        pytest.fail("\n".join(problems))


# -- shared steps ------------------------------------------------------------------------------


def sign_in(tab: Tab, live: Live, workstation: str = "LAB-PC-1") -> None:
    """Sign a lab computer in through /login, starting from the dashboard as staff do."""
    page = tab.page
    tab.go(f"{live.url}/dashboard")
    assert urlsplit(page.url).path == "/login"
    page.get_by_label("Workstation").fill(workstation)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live.url}/dashboard")
    tab.audit()
    assert page.locator(".workstation").inner_text().startswith(workstation)


def act_as(tab: Tab, name: str = STAFF) -> None:
    """Choose who is acting in the page header, once for this browser tab."""
    tab.page.locator("#acting-as-choice").select_option(name)


def choose_acting_as(tab: Tab, name: str = STAFF) -> None:
    """Pick "Acting as" for an action form (its dialog, or its own page) and wait for the lock answer."""
    page = tab.page
    dialog = page.locator("dialog#action-dialog")
    header = page.locator("#acting-as-choice")
    if not dialog.count() and header.count() and header.input_value() == name:
        # Chosen earlier in this tab: the page took the lock for that name as it opened.
        page.wait_for_load_state("networkidle")
        return
    with page.expect_response(lambda r: r.url.endswith("/lock") and r.request.method == "POST"):
        if dialog.count():
            dialog.locator("#acting_as").select_option(name)
        else:
            act_as(tab, name)


def submit_model(
    tab: Tab, live: Live, model: Path, *, name: str = "Jane Doe", email: str = "jane.doe@example.edu"
) -> Job:
    """A student sends `model` through /submit (filament, True Red, Prusa MK4S); returns the new job."""
    page = tab.page
    tab.go(f"{live.url}/submit")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Discipline").select_option("Engineering")
    page.get_by_label("Class number").fill("ME 2110")
    page.get_by_label("Filament").check()
    page.get_by_label("Color").select_option("True Red")
    page.get_by_label("Printer").select_option("Prusa MK4S")
    page.get_by_label("Model file").set_input_files(model)
    page.locator("#acknowledged_minimum_charge").check()
    page.get_by_role("button", name="Send my model").click()
    page.wait_for_url(re.compile(r"/submit/done/"))
    tab.audit()
    return live.newest_job()


def milestones(tab: Tab) -> list[str]:
    """The "So far" list of the student's status page, labels only."""
    return [item.split(" — ", 1)[1] for item in tab.page.locator(".timeline li").all_inner_texts()]
