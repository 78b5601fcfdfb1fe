"""Every page state at 375 px and 1366 px: none is wider than the window, none has an axe-core violation.

The states are a table (`STATES`): each is a function that builds what the page needs through the
services and factories and returns its address, registered with `@page_state(...)`; an optional
`then` step acts on the page (sends a form, clicks a button) to reach states a plain visit can't.
One server, one browser context per width and person (a student, an admin workstation), and every
finding of every state collected into one failure message. To cover a new page, add a function.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from printlab.clock import to_lab_time, utcnow
from printlab.domain.campus import CampusIdentity
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.domain.submission import validate_submission
from printlab.models import (
    AccountCode,
    Job,
    LabPrinter,
    OutboxMessage,
    OutboxStatus,
    Payment,
    PrintRun,
    PrintRunState,
)
from printlab.services.jobs import job_desk, printing, refunds, student_actions, submissions, workflow
from printlab.services.lab import account_codes, campus, pins, workstations
from printlab.services.lab import staff as staff_service
from printlab.services.lab.actors import Student
from printlab.services.printers import fleet
from printlab.services.students import sign_in as student_sign_in
from printlab.web.jobs.actions import ACTIONS

from ..conftest import MODELS, SLICED
from ..factories import STAFF, actor, form, make_job, make_staff, quote_token
from ..fleet_factories import make_poll, make_run
from ..servers import OctoPrintServer, free_port
from .conftest import OTHER_STAFF, PASSWORD, Live, Tab, sign_in

pytestmark = pytest.mark.browser

#: axe-core from npm (package.json at the repository root; `make test` runs `npm ci` for it).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {375: {"width": 375, "height": 812}, 1366: {"width": 1366, "height": 768}}
ADMIN_PC = "ADMIN-PC"
#: A folder to keep a full-page screenshot of every state in, to look at them (unset: none are taken).
SHOTS = os.environ.get("PRINTLAB_PAGE_SHOTS", "")
#: While working on a page: only the states whose names contain this (unset: every state).
ONLY = os.environ.get("PRINTLAB_PAGE_STATES", "")

#: 60 characters and more, with no space to break at in the stored names made from them.
LONG_STUDENT = "Maximiliana Alexandrina Wolfeschlegelsteinhausen-Bergerdorff"
LONG_FILE = "robotics_team_gripper_bracket_left_arm_revision_seven_final_FINAL_v2.stl"
LONG_STAFF = "Bartholomew Montgomery-Fitzwilliam Jr."


# -- the table of page states ------------------------------------------------------------------


@dataclass(frozen=True)
class PageState:
    """One page as a person sees it: who looks, how it is reached, what HTTP status it answers."""

    name: str
    url: Callable[[Site], str]
    #: "student": no sign-in; "staff": an admin workstation (it sees every staff page); "desk": a lab
    #: computer that isn't an admin workstation.
    who: str = "staff"
    status: int = 200
    #: Acts on the page once shown; returns the response of the page it led to (None: still the same page).
    then: Callable[[Site, Tab], Any] | None = None


STATES: list[PageState] = []


def page_state(
    name: str, *, who: str = "staff", status: int = 200, then: Callable[[Site, Tab], Any] | None = None
) -> Callable[[Callable[[Site], str]], Callable[[Site], str]]:
    """Register the decorated function (Site → URL) as a page state."""

    def register(url: Callable[[Site], str]) -> Callable[[Site], str]:
        STATES.append(PageState(name, url, who, status, then))
        return url

    return register


@dataclass
class Site:
    """The running app and the jobs the states share; builds them the first time a state asks."""

    live: Live
    tmp: Path
    #: The tests' real OctoPrint, which the Printers page's "Test connection" reaches.
    octoprint: OctoPrintServer
    jobs: dict[Any, Job] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    #: The printer records the Printers page states share, by role ("octoprint", "unreachable", …).
    printers: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"{self.live.url}{path}"

    def made(self, key: Any, build: Callable[[], Job], *, fresh: bool = False) -> Job:
        """The job `build` makes, once per `key` (every call when `fresh`), analysed by the worker.

        The worker waits while the job is made: a quote's raw confirm token is read from the outbox
        before the worker sends the email (and scrubs the token from its row).
        """
        if fresh:
            key = (key, len(self.jobs))
        if key not in self.jobs:
            with self.live.worker_paused():
                self.jobs[key] = build()
        return self.analysed(self.jobs[key])

    def job(self, status: Status, *, fresh: bool = False) -> Job:
        """A job in `status` of a student with a long name who sent a file with a long name.

        One job serves every state that asks for the status, unless `fresh` (for a state that uses
        the job up, such as confirming its quote): then each call makes a new one.
        """
        return self.made(status, lambda: self._make(status), fresh=fresh)

    def quoted(self, *, expired: bool = False, confirmed: bool = False, fresh: bool = False) -> Job:
        """A Pending job whose confirm link is known; quoted 80 hours ago and run out when `expired`;
        confirmed through that link when `confirmed`."""

        def build() -> Job:
            session, storage = self.live.session, self.live.storage
            if not expired:
                job = self._make(Status.PENDING)
            else:
                job = self._make(Status.UPLOADED)
                ago = utcnow() - timedelta(hours=80)
                workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2, now=ago)
                self.tokens[job.id] = quote_token(session, job.id)
                workflow.expire_quotes(session, storage)
            if confirmed:
                workflow.confirm(session, storage, self.tokens[job.id])
            return job

        return self.made(("quoted", expired, confirmed), build, fresh=fresh)

    def sliced(self) -> Job:
        """An Uploaded job with a sliced file added by staff (a second long name on the page)."""

        def build() -> Job:
            job = self._make(Status.UPLOADED)
            with open(SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", "rb") as handle:
                job_desk.attach_file(
                    self.live.session, self.live.storage, job.id, handle, "gripper_sliced.gcode",
                    actor=actor(), max_bytes=50 * 1024 * 1024,
                )  # fmt: skip
            return job

        return self.made("sliced", build)

    def waiting(self, *, fresh: bool = False) -> Job:
        """An Uploaded job staff asked to be fixed ("needs changes"); its reply token is kept."""

        def build() -> Job:
            job = self._make(Status.UPLOADED)
            student_actions.request_changes(
                self.live.session, self.live.storage, job.id, actor=actor(),
                reasons=["Walls too thin"], other_reason="Make the base of the bracket at least 2 mm thick.",
            )  # fmt: skip
            message = self.live.session.scalars(
                select(OutboxMessage).where(
                    OutboxMessage.job_id == job.id, OutboxMessage.template == "changes_needed"
                )
            ).one()
            self.tokens[f"reply-{job.id}"] = message.context["token"]
            return job

        return self.made("waiting", build, fresh=fresh)

    def resubmitted(self) -> Job:
        """A job sent as the corrected version of a rejected one."""

        def build() -> Job:
            earlier = self._make(Status.REJECTED)
            with open(MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl", "rb") as handle:
                received = self.live.storage.receive(handle, 50 * 1024 * 1024)
            from printlab.domain.catalog import DEFAULT_CATALOG
            from printlab.domain.submission import validate_submission
            from printlab.services.jobs import submissions

            from ..factories import form

            submission, _ = validate_submission(
                form(student_name=LONG_STUDENT, student_email=earlier.student_email),
                LONG_FILE,
                DEFAULT_CATALOG,
            )
            assert submission is not None
            return submissions.submit(
                self.live.session, self.live.storage, submission, received, resubmission_of=earlier.id
            )

        return self.made("resubmitted", build)

    def reply_url(self, job: Job) -> str:
        return self.url(f"/replace/{self.tokens[f'reply-{job.id}']}")

    def _make(self, status: Status) -> Job:
        model = self.tmp / LONG_FILE
        if not model.exists():
            shutil.copyfile(MODELS / "stl_binary_20mm_xyz_cube.stl", model)
        job = make_job(
            self.live.session, self.live.storage, status, model=model, student_name=LONG_STUDENT,
            student_email=f"maximiliana.wolfeschlegelsteinhausen.{len(self.jobs)}@example.edu",
        )  # fmt: skip
        if status == Status.PENDING:
            self.tokens[job.id] = quote_token(self.live.session, job.id)
        return job

    def analysed(self, job: Job) -> Job:
        """Wait until the worker has analysed the job's model, so the page shows its final form."""
        deadline = time.monotonic() + 30
        while True:
            fresh = self.live.fresh().get(Job, job.id)
            assert fresh is not None
            if fresh.analysis is not None and fresh.analysis.state != "PENDING":
                return fresh
            assert time.monotonic() < deadline, f"job {job.id} was not analysed"
            time.sleep(0.1)

    def confirm_url(self, job: Job) -> str:
        return self.url(f"/confirm/{self.tokens[job.id]}")

    def mail_delivered(self) -> list[str]:
        """The mail folder's message names, once the worker has sent every email waiting."""
        deadline = time.monotonic() + 20
        waiting = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status == OutboxStatus.PENDING)
        )
        while self.live.fresh().scalar(waiting):
            assert time.monotonic() < deadline, "the outbox was not delivered"
            time.sleep(0.1)
        mail_dir = self.live.app.extensions["printlab"].config.mail_dir
        return sorted(p.name for p in mail_dir.glob("*.eml") if not p.name.startswith("."))


def job_page(site: Site, job: Job) -> str:
    return site.url(f"/jobs/{job.id}")


# Student pages


@page_state("landing page", who="student")
def landing(site: Site) -> str:
    return site.url("/")


@page_state("submit form", who="student")
def submit_form(site: Site) -> str:
    return site.url("/submit")


def _send_the_form_unchecked(site: Site, tab: Tab) -> Any:
    """Send the form past its script's checks, with a long name and a wrong email, as a server sees it."""
    page = tab.page
    page.locator("#student_name").fill(LONG_STUDENT)
    page.locator("#student_email").fill("maximiliana.wolfeschlegelsteinhausen@")
    with page.expect_navigation() as navigation:
        page.locator("form[action$='/submit']").evaluate(
            "form => HTMLFormElement.prototype.submit.call(form)"
        )
    return navigation.value


@page_state("submit form with errors", who="student", status=422, then=_send_the_form_unchecked)
def submit_form_with_errors(site: Site) -> str:
    return site.url("/submit")


@page_state("submitted page", who="student")
def submitted(site: Site) -> str:
    return site.url(f"/submit/done/{site.live.reference(site.job(Status.UPLOADED).id)}")


for _status in Status:

    @page_state(f"student's status page, {_status.label}", who="student")
    def status_page(site: Site, status: Status = _status) -> str:
        return site.live.status_url(site.job(status).id)


@page_state("student's status page, cancelled by the lab", who="student")
def status_page_cancelled(site: Site) -> str:
    def build() -> Job:
        job = site._make(Status.READYTOPRINT)
        workflow.cancel(
            site.live.session, site.live.storage, job.id, actor=actor(), reason="The printer is broken"
        )
        return job

    return site.live.status_url(site.made("cancelled", build).id)


@page_state("student's status page, waiting for a corrected file", who="student")
def status_page_waiting(site: Site) -> str:
    return site.live.status_url(site.waiting().id)


@page_state("student's status page, a corrected version of a rejected job", who="student")
def status_page_resubmission(site: Site) -> str:
    return site.live.status_url(site.resubmitted().id)


@page_state("student's cancel step", who="student")
def cancel_step(site: Site) -> str:
    return site.live.status_url(site.job(Status.PENDING).id) + "/cancel"


def _cancel_my_request(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name="Yes, cancel my request").click()
    return navigation.value


@page_state("student's status page, cancelled by the student", who="student", then=_cancel_my_request)
def status_page_cancelled_by_student(site: Site) -> str:
    return site.live.status_url(site.job(Status.UPLOADED, fresh=True).id) + "/cancel"


def _cancel_after_staff_approved(site: Site, tab: Tab) -> Any:
    job_id = tab.page.url.rsplit("/", 2)[-2]
    from printlab.services.views.student_status import job_for_reference

    job = job_for_reference(site.live.fresh(), site.live.app.extensions["printlab"].config.secret_key, job_id)
    assert job is not None
    workflow.approve(site.live.session, site.live.storage, job.id, actor=actor(), weight_g=30, time_hours=1)
    return _cancel_my_request(site, tab)


@page_state(
    "student's cancel step, the job changed meanwhile",
    who="student",
    status=409,
    then=_cancel_after_staff_approved,
)
def cancel_step_stale(site: Site) -> str:
    return site.live.status_url(site.job(Status.UPLOADED, fresh=True).id) + "/cancel"


@page_state("submit form, a corrected file for a rejected job", who="student")
def submit_form_resubmission(site: Site) -> str:
    return site.url(f"/submit?after={site.live.reference(site.job(Status.REJECTED).id)}")


@page_state("corrected file: the form", who="student")
def replace_form(site: Site) -> str:
    return site.reply_url(site.waiting())


def _send_a_material_file(site: Site, tab: Tab) -> Any:
    tab.page.get_by_label("Your corrected model file").set_input_files(MODELS / "box.mtl")
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name="Send the corrected file").click()
    return navigation.value


@page_state(
    "corrected file: a file that isn't a model", who="student", status=422, then=_send_a_material_file
)
def replace_form_error(site: Site) -> str:
    return site.reply_url(site.waiting())


@page_state("corrected file: a link no longer waiting", who="student", status=410)
def replace_closed(site: Site) -> str:
    def build() -> Job:
        job = site.waiting(fresh=True)
        workflow.reject(
            site.live.session, site.live.storage, job.id, actor=actor(), reasons=["Walls too thin"]
        )
        return job

    job = site.made("waiting-rejected", build)
    return site.reply_url(job)


@page_state("corrected file: an unknown link", who="student", status=404)
def replace_unknown(site: Site) -> str:
    return site.url("/replace/this-link-was-never-sent-to-anyone")


def _find_by_job_number(site: Site, tab: Tab) -> Any:
    """A student types a job number into "Find my job" (which never shows a job by number alone)."""
    page = tab.page
    page.locator("#find-link").fill(site.live.reference(site.job(Status.UPLOADED).id)[:8])
    with page.expect_navigation() as navigation:
        page.locator("form[action$='/find-my-job'] button[type=submit]").click()
    return navigation.value


@page_state("landing page, find my job by number", who="student", status=422, then=_find_by_job_number)
def landing_find_job(site: Site) -> str:
    return site.url("/")


def _send_a_model_with_a_wrong_email(site: Site, tab: Tab) -> Any:
    """The whole form with its model but a wrong email, sent past the script: the file is kept."""
    page = tab.page
    page.locator("#student_name").fill(LONG_STUDENT)
    page.locator("#student_email").fill("maximiliana@")
    page.get_by_label("Discipline").select_option(index=1)
    page.get_by_label("Class number").fill("ME 2110")
    page.get_by_label("Filament").check()
    page.get_by_label("Color").select_option("True Red")
    page.get_by_label("Printer").select_option("Prusa MK4S")
    page.get_by_label("Model file").set_input_files(MODELS / "stl_binary_20mm_xyz_cube.stl")
    page.locator("#acknowledged_minimum_charge").check()
    with page.expect_navigation() as navigation:
        page.locator("form[action$='/submit']").evaluate(
            "form => HTMLFormElement.prototype.submit.call(form)"
        )
    return navigation.value


@page_state(
    "submit form, a mistake with the file kept",
    who="student",
    status=422,
    then=_send_a_model_with_a_wrong_email,
)
def submit_form_file_kept(site: Site) -> str:
    return site.url("/submit")


# -- a job in parts (issue 13) -----------------------------------------------------------------------

PART_MODELS = (
    ("stl_binary_20mm_xyz_cube.stl", 2),
    ("3mf_consortium_multiple_cylinders.3mf", 1),
    ("box.obj", 3),
)


def in_parts(site: Site) -> Job:
    """An Uploaded job of three long-named parts with copies, sent through the submission service."""

    def build() -> Job:
        storage = site.live.storage
        submission, errors = validate_submission(
            form(student_name=LONG_STUDENT, student_email="maximiliana.parts@example.edu"),
            LONG_FILE, DEFAULT_CATALOG,
        )  # fmt: skip
        assert submission is not None, errors
        parts = []
        for number, (name, copies) in enumerate(PART_MODELS, start=1):
            with open(MODELS / name, "rb") as handle:
                received = storage.receive(handle, 50 * 1024 * 1024)
            long_name = f"{LONG_FILE.rsplit('.', 1)[0]}_part_{number}.{name.rsplit('.', 1)[1]}"
            parts.append(submissions.NewPart(long_name, received, copies))
        return submissions.submit_parts(site.live.session, storage, submission, parts)

    return site.made("in parts", build)


def _choose_three_files(site: Site, tab: Tab) -> None:
    """The student chooses three files, then one more: the list shows each with its copies."""
    files = tab.page.locator("#file")
    files.set_input_files([MODELS / name for name, _copies in PART_MODELS])
    files.set_input_files(MODELS / "stl_binary_solid_header_trailing_byte_HalfDonut.stl")
    tab.page.locator("#parts-list .part-row").nth(3).wait_for()


@page_state("submit form, several files chosen with their copies", who="student", then=_choose_three_files)
def submit_form_parts(site: Site) -> str:
    return site.url("/submit")


def _send_parts_with_a_wrong_email(site: Site, tab: Tab) -> Any:
    """Three files with copies and a wrong email, sent past the script: the files are kept."""
    page = tab.page
    _choose_three_files(site, tab)
    page.locator("#student_name").fill(LONG_STUDENT)
    page.locator("#student_email").fill("maximiliana@")
    page.locator("#copies-0").fill("2")
    with page.expect_navigation() as navigation:
        page.locator("form[action$='/submit']").evaluate(
            "form => HTMLFormElement.prototype.submit.call(form)"
        )
    return navigation.value


@page_state(
    "submit form, a mistake with several files kept",
    who="student",
    status=422,
    then=_send_parts_with_a_wrong_email,
)
def submit_form_parts_kept(site: Site) -> str:
    return site.url("/submit")


@page_state("student's status page, a job in parts", who="student")
def status_page_parts(site: Site) -> str:
    return site.live.status_url(in_parts(site).id)


@page_state("job page, a job in parts")
def job_page_parts(site: Site) -> str:
    return job_page(site, in_parts(site))


@page_state("action page, approve a job in parts")
def approve_parts(site: Site) -> str:
    return site.url(f"/jobs/{in_parts(site).id}/act/approve")


def _open_approve_dialog(site: Site, tab: Tab) -> None:
    page = tab.page
    page.locator("a[data-action-dialog][href$='/act/approve']").click()
    page.locator("dialog#action-dialog[open] #approval-parts").wait_for()


@page_state("job page, approving a job in parts in its dialog", then=_open_approve_dialog)
def approve_parts_dialog(site: Site) -> str:
    return job_page(site, in_parts(site))


@page_state("confirm: the quote", who="student")
def confirm_quote(site: Site) -> str:
    return site.confirm_url(site.job(Status.PENDING))


def _confirm(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name=re.compile("^Confirm")).click()
    return navigation.value


@page_state("confirm: confirmed", who="student", then=_confirm)
def confirm_confirmed(site: Site) -> str:
    return site.confirm_url(site.quoted(fresh=True))


@page_state("confirm: already confirmed", who="student")
def confirm_already_confirmed(site: Site) -> str:
    return site.confirm_url(site.quoted(confirmed=True))


@page_state("confirm: expired", who="student")
def confirm_expired(site: Site) -> str:
    return site.confirm_url(site.quoted(expired=True))


@page_state("confirm: invalid link", who="student", status=404)
def confirm_invalid(site: Site) -> str:
    return site.url("/confirm/this-link-was-never-sent-to-anyone")


def _ask_for_a_new_link(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name="Send me a new link").click()
    return navigation.value


@page_state("confirm: new link sent", who="student", then=_ask_for_a_new_link)
def confirm_new_link_sent(site: Site) -> str:
    return site.confirm_url(site.quoted(expired=True, fresh=True))


def _my_email(site: Site) -> str:
    """The address of a student who sent a job (Pending, with a long file name), for "My requests"."""
    return site.job(Status.PENDING).student_email or ""


def _my_link(site: Site) -> str:
    """A fresh sign-in link for that student, its token read from the outbox before the worker sends it."""
    email = _my_email(site)
    with site.live.worker_paused():
        student_sign_in.request_link(site.live.session, email)
        token = (
            site.live.fresh()
            .scalars(
                select(OutboxMessage.context)
                .where(OutboxMessage.template == "sign_in_link", OutboxMessage.recipient == email)
                .order_by(OutboxMessage.id.desc())
            )
            .first()["token"]
        )
    site.tokens["my requests"] = token
    return site.url(f"/my/sign-in/{token}")


def _ask_for_a_sign_in_link(email: str) -> Callable[[Site, Tab], Any]:
    def send(site: Site, tab: Tab) -> Any:
        tab.page.get_by_label("Your email address").fill(email)
        with tab.page.expect_navigation() as navigation:
            tab.page.get_by_role("button", name="Email me a sign-in link").click()
        return navigation.value

    return send


@page_state("my requests: ask for a sign-in link", who="student")
def my_ask(site: Site) -> str:
    return site.url("/my/sign-in")


@page_state(
    "my requests: a mistake in the address", who="student", status=422,
    then=_ask_for_a_sign_in_link("maximiliana.wolfeschlegelsteinhausen@"),
)  # fmt: skip
def my_ask_mistake(site: Site) -> str:
    return site.url("/my/sign-in")


@page_state(
    "my requests: link sent", who="student",
    then=_ask_for_a_sign_in_link("maximiliana.alexandrina.wolfeschlegelsteinhausen-bergerdorff@example.edu"),
)  # fmt: skip
def my_link_sent(site: Site) -> str:
    return site.url("/my/sign-in")


@page_state("my requests: the sign-in link", who="student")
def my_sign_in_link(site: Site) -> str:
    return _my_link(site)


def _sign_in_with_the_link(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation(url=re.compile(r"/my$")) as navigation:
        tab.page.get_by_role("button", name="Sign in").click()
    return navigation.value


@page_state("my requests: the list", who="student", then=_sign_in_with_the_link)
def my_list(site: Site) -> str:
    return _my_link(site)


@page_state("my requests: the submit form, filled in from the last job", who="student")
def my_submit_form(site: Site) -> str:
    return site.url("/submit")


@page_state("my requests: a link already used", who="student", status=410)
def my_link_used(site: Site) -> str:
    return site.url(f"/my/sign-in/{site.tokens['my requests']}")


@page_state("my requests: a link that isn't valid", who="student", status=404)
def my_link_invalid(site: Site) -> str:
    return site.url("/my/sign-in/this-link-was-never-sent-to-anyone")


def _sign_out(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation(url=re.compile(r"/my/sign-in$")) as navigation:
        tab.page.get_by_role("button", name="Sign out", exact=True).click()
    return navigation.value


@page_state("my requests: signed out", who="student", then=_sign_out)
def my_signed_out(site: Site) -> str:
    return site.url("/my")


def _decline(site: Site, tab: Tab) -> Any:
    tab.page.get_by_label("Why not? (optional)").fill("Too expensive for a test piece")
    with tab.page.expect_navigation() as navigation:
        tab.page.get_by_role("button", name="Decline the quote").click()
    return navigation.value


@page_state("confirm: declined", who="student", then=_decline)
def confirm_declined(site: Site) -> str:
    return site.confirm_url(site.quoted(fresh=True))


@page_state("staff sign-in", who="student")
def sign_in_page(site: Site) -> str:
    return site.url("/login")


def _wrong_password(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.get_by_label("Workstation").fill("LAB-PC-2")
    page.get_by_label("Password").fill("not-the-password")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Sign in").click()
    return navigation.value


@page_state("staff sign-in, a wrong password", who="student", status=401, then=_wrong_password)
def sign_in_refused(site: Site) -> str:
    return site.url("/login")


@page_state("not found", who="student", status=404)
def not_found_student(site: Site) -> str:
    return site.url("/no-such-page")


# Staff pages

for _status in Status:

    @page_state(f"dashboard, {_status.label} tab")
    def dashboard_tab(site: Site, status: Status = _status) -> str:
        site.job(status)
        return site.url(f"/dashboard?status={status.value}")


@page_state("dashboard, late and overdue jobs")
def dashboard_late(site: Site) -> str:
    def build() -> Job:
        for hours in (60, 80):
            job = make_job(
                site.live.session, site.live.storage, student_name=f"Waited {hours} Hours",
                student_email=f"waited.{hours}@example.edu", now=utcnow() - timedelta(hours=hours),
            )  # fmt: skip
        return job

    site.made("late jobs", build)
    return site.url("/dashboard?status=UPLOADED&q=Waited")


@page_state("dashboard, a search that finds nothing")
def dashboard_empty(site: Site) -> str:
    return site.url("/dashboard?status=UPLOADED&q=nobody+by+this+name")


@page_state("dashboard, a search")
def dashboard_search(site: Site) -> str:
    site.job(Status.UPLOADED)
    return site.url("/dashboard?status=UPLOADED&q=Wolfeschlegelsteinhausen")


@page_state("job page, Uploaded with a sliced file added")
def job_with_sliced_file(site: Site) -> str:
    return job_page(site, site.sliced())


def _scroll_to_the_preview(site: Site, tab: Tab) -> None:
    tab.page.locator(".model-preview").scroll_into_view_if_needed()


@page_state("dashboard, waiting for the student")
def dashboard_waiting(site: Site) -> str:
    site.waiting()
    return site.url("/dashboard?status=UPLOADED&waiting=1")


@page_state("job page, waiting for the student's corrected file")
def job_page_waiting(site: Site) -> str:
    return job_page(site, site.waiting())


@page_state("job page, a resubmission of a rejected job")
def job_page_resubmission(site: Site) -> str:
    return job_page(site, site.resubmitted())


@page_state("job page, cancelled by the student")
def job_page_cancelled_by_student(site: Site) -> str:
    def build() -> Job:
        job = site._make(Status.PENDING)
        student_actions.cancel_by_student(
            site.live.session,
            site.live.storage,
            job.id,
            student=Student.by_status_link(job.id),
            expected=None,
        )
        return job

    return job_page(site, site.made("student-cancelled", build))


@page_state("job page, its 3D preview scrolled to", then=_scroll_to_the_preview)
def job_preview(site: Site) -> str:
    return job_page(site, site.job(Status.UPLOADED))


for _status in Status:

    @page_state(f"job page, {_status.label}")
    def job_in_status(site: Site, status: Status = _status) -> str:
        return job_page(site, site.job(status))


for _name, _spec in ACTIONS.items():

    @page_state(f"action page, {_spec.label}")
    def action_page(site: Site, name: str = _name) -> str:
        status = min(ACTIONS[name].statuses, key=list(Status).index)
        job = site.sliced() if status == Status.UPLOADED else site.job(status)  # approve: files to choose
        return site.url(f"/jobs/{job.id}/act/{name}")


def _approve_with_blanks(site: Site, tab: Tab) -> Any:
    """Send the approve form with no one acting and no weight, past the page's script."""
    page = tab.page
    page.locator("#weight_g").fill("")
    with page.expect_navigation() as navigation:
        page.locator("#action-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("action page, approve with errors", status=422, then=_approve_with_blanks)
def approve_with_errors(site: Site) -> str:
    return site.url(f"/jobs/{site.sliced().id}/act/approve")


def _with_account_codes(site: Site) -> None:
    """The lab's account codes (one out of use), once: the pickup and refund dialogs offer them."""
    session = site.live.session
    if session.get(AccountCode, "ENG-1042") is None:
        account_codes.add_code(session, "ENG-1042", "Engineering — senior design projects")
        account_codes.add_code(session, "GRANT-NSF-2231-RESEARCH-PRINTS", "NSF grant 2231 (research prints)")
        account_codes.add_code(session, "ART-2019", "Art — 2019 exhibition")
        account_codes.set_active(session, "ART-2019", False)


@page_state("action page, record pickup with account codes to choose")
def pickup_with_codes(site: Site) -> str:
    _with_account_codes(site)
    return site.url(f"/jobs/{site.job(Status.COMPLETED).id}/act/record_pickup")


def _pickup_with_a_bad_discount(site: Site, tab: Tab) -> Any:
    """Send a pickup by internal transfer with a discount larger than the price and no reason."""
    page = tab.page
    page.locator("#weighed_g").fill("40")
    page.get_by_label("Internal transfer (account code)").check()
    page.locator("#account_code").select_option("ENG-1042")
    page.locator("#discount_usd").fill("900")
    with page.expect_navigation() as navigation:
        page.locator("#action-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("action page, record pickup with errors", status=422, then=_pickup_with_a_bad_discount)
def pickup_with_errors(site: Site) -> str:
    return pickup_with_codes(site)


@page_state("job page, payments with a discount, a refund and a correction")
def job_with_ledger(site: Site) -> str:
    _with_account_codes(site)

    def build() -> Job:
        session, storage = site.live.session, site.live.storage
        job = site._make(Status.COMPLETED)
        workflow.record_pickup(
            session, storage, job.id, actor=actor(), method="ACCOUNT", weighed_g=40,
            account_code="GRANT-NSF-2231-RESEARCH-PRINTS", discount_usd="1.25",
            reason="Research group prints get a quarter off, agreed with the department in September",
            payment_reference="TRANSFER-2026-11-000123456789",
        )  # fmt: skip
        refunds.refund_or_correct(
            session, storage, job.id, actor=actor(), kind="REFUND", amount_usd="1.00", method="CASH",
            reason="One part had a defect",
        )  # fmt: skip
        refunds.refund_or_correct(
            session, storage, job.id, actor=actor(), kind="CORRECTION", amount_usd="0.25", method="CARD",
            reason="Supports weighed separately",
        )  # fmt: skip
        return job

    return job_page(site, site.made("ledger", build))


@page_state("admin account codes, with codes in and out of use")
def admin_account_codes(site: Site) -> str:
    _with_account_codes(site)
    return site.url("/admin/account-codes")


@page_state("admin campus sign-in: someone waiting, staff by group, a refused person, a mapped group")
def admin_campus(site: Site) -> str:
    session = site.live.session
    if not campus.list_people(session):
        campus.set_group_role(session, "makerspace-technicians-and-student-assistants", "STAFF")
        seen = [
            CampusIdentity("https://login.example", "w1", "Jo Park", "jo.park@uni.example", ("students",)),
            CampusIdentity("https://login.example", "s1", LONG_STAFF, "bartholomew.montgomery-fitzwilliam@uni.example",
                           ("makerspace-technicians-and-student-assistants",)),
            CampusIdentity("https://login.example", "r1", "Riley Quinn", None, ()),
        ]  # fmt: skip
        people = [campus.record_sign_in(session, identity) for identity in seen]
        campus.refuse(session, people[2].id)
    return site.url("/admin/campus")


def _with_a_pin(site: Site) -> None:
    if LONG_STAFF not in pins.names_with_pins(site.live.session):
        pins.set_pin(site.live.session, LONG_STAFF, "4719", by=actor(STAFF, ADMIN_PC))


@page_state("switch to me: a PIN form at a lab computer", who="desk")
def switch_person(site: Site) -> str:
    _with_a_pin(site)
    return site.url("/switch")


def _wrong_pin(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#switch-staff").select_option(LONG_STAFF)
    page.locator("#switch-pin").fill("0001")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Switch").click()
    return navigation.value


@page_state("switch to me: a wrong PIN", who="desk", status=401, then=_wrong_pin)
def switch_person_wrong(site: Site) -> str:
    _with_a_pin(site)
    return site.url("/switch")


def _right_pin(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#switch-staff").select_option(LONG_STAFF)
    page.locator("#switch-pin").fill("4719")
    with page.expect_navigation():
        page.get_by_role("button", name="Switch").click()
    return tab.go(site.url("/me/pin"))


@page_state("my PIN, switched in at a lab computer (then Done)", who="desk", then=_right_pin)
def my_pin(site: Site) -> str:
    _with_a_pin(site)
    return site.url("/switch")


def _done(site: Site, tab: Tab) -> Any:
    with tab.page.expect_navigation() as navigation:
        tab.page.locator("#signed-in-person + form").get_by_role("button", name="Done").click()
    return navigation.value


@page_state("dashboard with a person switched in, who presses Done", who="desk", then=_done)
def switched_back(site: Site) -> str:
    return site.url("/dashboard")


def _with_api_tokens(site: Site) -> None:
    """Tokens in use (one with a long name), one expired and one revoked, once."""
    from printlab.models import ApiToken
    from printlab.services.api import tokens

    session = site.live.session
    if session.scalar(select(func.count()).select_from(ApiToken)):
        return
    make_staff(session, LONG_STAFF)
    tokens.create(session, name="Finance office nightly sync", staff_name=STAFF, scope="read")
    tokens.create(session, name="Lobby screen", staff_name=LONG_STAFF, scope="write", rate_per_minute=600)
    old = tokens.create(session, name="Course platform (pilot)", staff_name=STAFF, scope="read", days=1)
    gone = tokens.create(session, name="Old signage", staff_name=STAFF, scope="read")
    tokens.revoke(session, gone.token.id)
    session.execute(
        ApiToken.__table__.update()
        .where(ApiToken.id == old.token.id)
        .values(expires_at=utcnow() - timedelta(days=2))
    )
    session.commit()


@page_state("admin API tokens: in use, expired and revoked")
def admin_api_tokens(site: Site) -> str:
    _with_api_tokens(site)
    return site.url("/admin/api-tokens")


def _make_a_token(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#acting-as-choice").select_option(STAFF)
    page.locator("#token-name").fill(f"{LONG_FILE[:60]} {time.time_ns()}")  # each width makes its own
    page.locator("#token-staff_name").select_option(STAFF)
    with page.expect_navigation() as navigation:
        page.locator("#add-token-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("admin API tokens, a new token shown once", then=_make_a_token)
def admin_api_tokens_made(site: Site) -> str:
    return admin_api_tokens(site)


def _make_a_token_badly(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#token-days").fill("0")
    with page.expect_navigation() as navigation:
        page.locator("#add-token-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("admin API tokens, the form with errors", status=422, then=_make_a_token_badly)
def admin_api_tokens_errors(site: Site) -> str:
    return admin_api_tokens(site)


def _with_webhooks(site: Site) -> int:
    """Webhook endpoints, once: one sending with a long name and address, one paused; the first with
    deliveries delivered, waiting, retrying, failed and sent twice. Returns the first one's id."""
    from printlab.models import WebhookDelivery, WebhookEndpoint
    from printlab.services.webhooks import endpoints, events

    session, secret = site.live.session, site.live.app.extensions["printlab"].config.secret_key
    found = session.scalar(select(WebhookEndpoint.id).order_by(WebhookEndpoint.id))
    if found is not None:
        return found
    long_url = (
        "https://127.0.0.1:9/" + "finance-integration/printlab-events-receiver" * 2 + "?source=makerspace"
    )
    first = endpoints.create(
        session, secret, name=f"Finance office ledger and {LONG_FILE[:40]}", url=long_url,
        chosen=["job.created", "job.status_changed", "payment.recorded", "printer.state_changed"], allow_private=True,
    ).endpoint  # fmt: skip
    paused = endpoints.create(
        session, secret, name="Lobby screen", url="https://127.0.0.1:9/screen", chosen=["printer.state_changed"],
        allow_private=True,
    ).endpoint  # fmt: skip
    endpoints.set_enabled(session, paused.id, False)
    job = site.made("webhooks", lambda: make_job(session, site.live.storage, Status.PAIDPICKEDUP))
    now = utcnow()
    rows = [events.queue(session, first.id, kind, data, now=now, job_id=job.id) for kind, data in (
        ("job.created", {"job": events.job_data(job)}),
        ("job.status_changed", {"job": events.job_data(job), "from": "PENDING", "to": "READYTOPRINT", "by": None}),
        ("payment.recorded", {"job": events.job_data(job), "payment": {"kind": "CHARGE", "amount_usd": "4.20"}}),
        ("printer.state_changed", {"printer": {"id": 1, "name": "Prusa MK4S"}, "from": "printing", "to": "error"}),
    )]  # fmt: skip
    rows.append(events.test_event(session, first.id, by=LONG_STAFF, now=now))
    events.test_event(session, paused.id, by=STAFF, now=now)
    session.flush()
    outcomes = [
        {"status": "DELIVERED", "attempts": 1, "delivered_at": now, "last_status_code": 204, "last_attempt_at": now},
        {"status": "DELIVERED", "attempts": 2, "delivered_at": now, "last_status_code": 200, "interrupted": True,
         "last_attempt_at": now},
        {"status": "PENDING", "attempts": 2, "last_attempt_at": now, "next_attempt_at": now + timedelta(minutes=5),
         "last_error": "The endpoint refused the connection (nothing is listening there)."},
        {"status": "FAILED", "attempts": 8, "last_attempt_at": now, "last_status_code": 500,
         "last_error": "The endpoint answered 500 (Internal Server Error)."},
    ]  # fmt: skip
    for row, values in zip(rows, outcomes, strict=False):
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**values))
    session.commit()
    return first.id


@page_state("admin webhooks: one sending with failures, one paused")
def admin_webhooks(site: Site) -> str:
    _with_webhooks(site)
    return site.url("/admin/webhooks")


def _add_an_endpoint(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#acting-as-choice").select_option(STAFF)
    page.locator("#add-name").fill(f"Course platform {time.time_ns()}")  # each width makes its own
    page.locator("#add-url").fill("https://127.0.0.1:9/course-platform/hooks")
    page.locator("#add-event-2").check()
    page.locator("#add-allow_private").check()
    with page.expect_navigation() as navigation:
        page.locator("#add-endpoint-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("admin webhooks, a new endpoint's secret shown once", then=_add_an_endpoint)
def admin_webhooks_added(site: Site) -> str:
    return admin_webhooks(site)


def _add_a_private_endpoint(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#add-name").fill("Signage")
    page.locator("#add-url").fill("https://10.0.0.8/hooks")
    with page.expect_navigation() as navigation:
        page.locator("#add-endpoint-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("admin webhooks, the form refusing a private address", status=422, then=_add_a_private_endpoint)
def admin_webhooks_errors(site: Site) -> str:
    return admin_webhooks(site)


@page_state("webhook endpoint: its delivery log")
def webhook_endpoint(site: Site) -> str:
    return site.url(f"/admin/webhooks/{_with_webhooks(site)}")


def _make_a_new_secret(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#acting-as-choice").select_option(STAFF)
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Make a new signing secret").click()
    return navigation.value


@page_state("webhook endpoint, a new signing secret shown once", then=_make_a_new_secret)
def webhook_endpoint_secret(site: Site) -> str:
    return webhook_endpoint(site)


@page_state("API reference", who="student")
def api_reference(site: Site) -> str:
    return site.url("/api/v1/reference")


def _with_printers(site: Site) -> dict[str, int]:
    """The lab's printer records, once: one on the tests' OctoPrint, one on OctoPrint at an address
    where nothing answers, one paused without a connection and one retired (Raise3D stays to add)."""
    if not site.printers:
        session, secret = site.live.session, site.live.app.extensions["printlab"].config.secret_key
        octoprint = {
            "connection": "OCTOPRINT",
            "address": site.octoprint.url,
            "api_key": site.octoprint.api_key,
        }
        site.printers["octoprint"] = fleet.add_printer(
            session, {"name": "Prusa MK4S", **octoprint}, secret=secret
        ).id
        nowhere = {
            "connection": "OCTOPRINT",
            "address": f"http://127.0.0.1:{free_port()}",
            "api_key": "key-0123456789",
        }
        site.printers["unreachable"] = fleet.add_printer(
            session, {"name": "Prusa XL", **nowhere}, secret=secret
        ).id
        retired = fleet.add_printer(session, {"name": "Formlabs Form 3", "connection": "NONE"}, secret=secret)
        fleet.set_state(session, retired.id, "RETIRED")
        site.printers["retired"] = retired.id
        paused = fleet.add_printer(session, {"name": "Formlabs Form 3", "connection": "NONE"}, secret=secret)
        fleet.set_state(session, paused.id, "PAUSED")
    return site.printers


def _stopped_by_the_printer(site: Site) -> Job:
    """A Printing job sent to the connected Prusa MK4S from PrintLab, whose printer then stopped it."""

    def build() -> Job:
        session, storage = site.live.session, site.live.storage
        printer_id = _with_printers(site)["octoprint"]
        job = site._make(Status.READYTOPRINT)
        # The run as "Start printing" records it; its first try far off, so the live worker leaves it.
        run = PrintRun(
            job_id=job.id, printer_id=printer_id, printer_name="Prusa MK4S", state="SENDING",
            source_file="x.gcode", printer_file="x_run.gcode", requested_by=STAFF,
            next_attempt_at=utcnow() + timedelta(days=1),
        )  # fmt: skip
        session.add(run)
        session.commit()
        workflow.start_printing(
            session, storage, job.id, actor=actor(), printer="Prusa MK4S", sent_run=run.id
        )
        printing.stop_run(
            session, run.id, "Heater decoupled on the nozzle: the temperature fell during the print."
        )
        return job

    return site.made("stopped-by-printer", build)


@page_state("job page, the printer stopped a print sent from PrintLab")
def job_page_printer_stopped(site: Site) -> str:
    return job_page(site, _stopped_by_the_printer(site))


@page_state("dashboard, Printing tab with a print the printer stopped")
def dashboard_printer_stopped(site: Site) -> str:
    _stopped_by_the_printer(site)
    return site.url("/dashboard?status=PRINTING")


@page_state("admin printers: connected, paused and retired, and the add form")
def admin_printers(site: Site) -> str:
    _with_printers(site)
    return site.url("/admin/printers")


def _add_a_printer_with_a_bad_address(site: Site, tab: Tab) -> Any:
    page = tab.page
    page.locator("#add-printer-form #name").select_option("Raise3D Pro 2 Plus")
    page.locator("#add-printer-form #connection").select_option("OCTOPRINT")
    page.locator("#add-printer-form #address").fill("ftp://raise3d.local")
    with page.expect_navigation() as navigation:
        page.locator("#add-printer-form").evaluate("form => HTMLFormElement.prototype.submit.call(form)")
    return navigation.value


@page_state("admin printers, the add form with errors", status=422, then=_add_a_printer_with_a_bad_address)
def admin_printers_errors(site: Site) -> str:
    return admin_printers(site)


def _test_connection_of(name: str) -> Callable[[Site, Tab], Any]:
    def test_it(site: Site, tab: Tab) -> Any:
        with tab.page.expect_navigation() as navigation:
            tab.page.get_by_role("button", name=f"Test connection of {name}").click()
        return navigation.value

    return test_it


@page_state("admin printers, a connection test that worked", then=_test_connection_of("Prusa MK4S"))
def admin_printers_tested(site: Site) -> str:
    return admin_printers(site)


@page_state("admin printers, a connection test that failed", then=_test_connection_of("Prusa XL"))
def admin_printers_test_failed(site: Site) -> str:
    return admin_printers(site)


@page_state("admin printer, editing one with a saved key")
def admin_printer_edit(site: Site) -> str:
    return site.url(f"/admin/printers/{_with_printers(site)['octoprint']}")


@page_state("admin printer, a retired one")
def admin_printer_retired(site: Site) -> str:
    return site.url(f"/admin/printers/{_with_printers(site)['retired']}")


def _with_board(site: Site) -> dict[str, Job]:
    """The board's rows, once, beside the Printers page's records: Prusa MK4S (on the tests' OctoPrint)
    printing a job at 61 % with 40 minutes left and two jobs in its queue, Prusa XL offline with a print
    it stopped, Formlabs Form 3 paused, Raise3D without a record. Polls and runs are written as the
    worker's poller and "Start printing" would write them."""
    if "board" not in site.tokens:
        records = _with_printers(site)
        session = site.live.session
        mk4s, xl = (
            session.get(LabPrinter, records["octoprint"]),
            session.get(LabPrinter, records["unreachable"]),
        )
        printing = site.job(Status.PRINTING)
        stopped = site.job(Status.PRINTING, fresh=True)
        session.execute(update(Job).where(Job.id == stopped.id).values(printer="Prusa XL"))
        session.commit()
        make_run(session, printing, mk4s, started_at=utcnow() - timedelta(minutes=50))
        make_run(session, stopped, xl, PrintRunState.STOPPED, message="Print cancelled on the printer")
        make_poll(
            session, mk4s, "printing", file=f"{printing.display_name}.gcode", progress=61.0, seconds_left=2400,
            temperatures=[{"heater": "tool0", "actual": 214.6, "target": 215}, {"heater": "bed", "actual": 60, "target": 60}],
        )  # fmt: skip
        make_poll(session, xl, "offline", message=f"The printer didn't answer at {xl.address}.")
        site.job(Status.READYTOPRINT)
        site.job(Status.READYTOPRINT, fresh=True)
        site.tokens["board"] = printing.id
    return {"printing": site.live.fresh().get(Job, site.tokens["board"])}  # type: ignore[dict-item]


@page_state("printer board: printing, offline, paused and not-connected lanes, with a queue")
def printer_board(site: Site) -> str:
    _with_board(site)
    return site.url("/printers")


def _move_from_a_stale_queue(site: Site, tab: Tab) -> Any:
    """The first "Move down" sent with a queue that lists a job no longer in it (as if another
    computer's change hadn't reached this page yet)."""
    form = tab.page.locator(".move-form").first
    form.locator('input[name="seen"]').evaluate("input => { input.value = input.value + ',gone' }")
    with tab.page.expect_navigation() as navigation:
        form.evaluate(
            """form => { const place = document.createElement("input"); place.type = "hidden";
                         place.name = "place"; place.value = "2"; form.appendChild(place);
                         HTMLFormElement.prototype.submit.call(form); }"""
        )
    return navigation.value


@page_state(
    "printer board, a move from a queue that changed meanwhile", status=409, then=_move_from_a_stale_queue
)
def printer_board_stale(site: Site) -> str:
    return printer_board(site)


@page_state("dashboard, Printing tab with a print's progress and a print the printer stopped")
def dashboard_printing_live(site: Site) -> str:
    _with_board(site)
    return site.url("/dashboard?status=PRINTING")


@page_state("student's status page, printing with the time left", who="student")
def status_printing_live(site: Site) -> str:
    return site.live.status_url(_with_board(site)["printing"].id)


@page_state("not found, signed in", status=404)
def not_found_staff(site: Site) -> str:
    return site.url("/jobs/no-such-job")


@page_state("not allowed: a lab computer on an admin page", who="desk", status=403)
def not_allowed(site: Site) -> str:
    return site.url("/admin/staff")


# Reports


@page_state("reports, last 90 days")
def reports_page(site: Site) -> str:
    for status in (Status.COMPLETED, Status.PAIDPICKEDUP, Status.REJECTED):
        site.job(status)  # a completed print, a pickup and a rejection to chart
    return site.url("/reports?period=90d")


@page_state("reports on a lab computer (no money)", who="desk")
def reports_page_desk(site: Site) -> str:
    site.job(Status.PAIDPICKEDUP)
    return site.url("/reports?period=this-semester")


@page_state("reports, custom dates ending before they start", status=400)
def reports_bad_period(site: Site) -> str:
    return site.url("/reports?period=custom&from=2026-03-15&to=2026-03-01")


# Admin pages

for _path in ("/admin", "/admin/staff", "/admin/workstations", "/admin/catalog", "/admin/log",
              "/admin/health", "/admin/retention"):  # fmt: skip

    @page_state(f"admin {_path}")
    def admin_page(site: Site, path: str = _path) -> str:
        return site.url(path)


@page_state("admin mail list")
def admin_mail(site: Site) -> str:
    site.job(Status.PENDING)
    site.mail_delivered()
    return site.url("/admin/mail")


@page_state("admin mail, a search")
def admin_mail_search(site: Site) -> str:
    site.job(Status.PENDING)
    site.mail_delivered()
    return site.url("/admin/mail?q=quote")


def _open_an_action_dialog(site: Site, tab: Tab) -> None:
    page = tab.page
    page.locator("a[data-action-dialog]").first.click()
    page.locator("dialog#action-dialog[open] form").wait_for()


@page_state("job page, an action open as a dialog", then=_open_an_action_dialog)
def job_with_dialog(site: Site) -> str:
    return job_page(site, site.job(Status.UPLOADED))


@page_state("admin mail, a message")
def admin_mail_message(site: Site) -> str:
    site.job(Status.PENDING)
    return site.url(f"/admin/mail/folder/{site.mail_delivered()[-1]}")


@page_state("admin integrity with findings")
def admin_integrity(site: Site) -> str:
    site.job(Status.UPLOADED)
    stray = site.live.storage.root / "Printing" / f"{LONG_STUDENT.replace(' ', '')}_stray_copy_of_a_model.stl"
    shutil.copy(MODELS / "stl_binary_20mm_xyz_cube.stl", stray)
    return site.url("/admin/integrity")


@page_state("admin override")
def admin_override(site: Site) -> str:
    return site.url(f"/admin/jobs/{site.job(Status.PENDING).id}/override")


@page_state("admin delete files")
def admin_delete_files(site: Site) -> str:
    return site.url(f"/admin/jobs/{site.sliced().id}/delete-files")


@page_state("exports for the finance office")
def exports_page(site: Site) -> str:
    return site.url("/reports/exports")


@page_state("exports, a period that ends before it starts", status=400)
def exports_backwards(site: Site) -> str:
    return site.url("/reports/export?kind=payments&format=csv&from=2026-11-30&to=2026-11-01")


@page_state("monthly statement per account code")
def statement_page(site: Site) -> str:
    session, job = site.live.session, site.job(Status.COMPLETED)
    if session.get(AccountCode, "ENG-1042-CAPSTONE-SPRING") is None:
        session.add(
            AccountCode(code="ENG-1042-CAPSTONE-SPRING", name="Mechanical Engineering senior capstone")
        )
        session.flush()
        charge = Payment(job_id=job.id, charged_usd=Decimal("123.45"), kind="CHARGE", method="ACCOUNT",
                         account_code="ENG-1042-CAPSTONE-SPRING", payment_reference="PO-2026-000017",
                         recorded_by=LONG_STAFF, workstation_id=ADMIN_PC)  # fmt: skip
        session.add(charge)
        session.flush()
        session.add(Payment(job_id=job.id, charged_usd=Decimal("-23.45"), kind="REFUND", refund_of=charge.id,
                            reason="Supports failed on the second plate; reprinted at no charge",
                            recorded_by=LONG_STAFF, workstation_id=ADMIN_PC))  # fmt: skip
        session.commit()
    return site.url(f"/reports/statement?month={to_lab_time(utcnow(), 'America/Chicago'):%Y-%m}")


@page_state("monthly statement, a month that can't be read", status=400)
def statement_bad_month(site: Site) -> str:
    return site.url("/reports/statement?month=2026-13")


# -- the runner --------------------------------------------------------------------------------

#: How far the page reaches past the window, and the elements that stick out furthest.
WIDTH_JS = """() => {
  const width = window.innerWidth;
  const scroll = document.documentElement.scrollWidth;
  if (scroll <= width) return {scroll, width, widest: []};
  const over = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    const spills = box.right > width + 1 || (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0
      && getComputedStyle(el).overflowX === "visible");
    if (spills && box.width > 0) over.push(el);
  }
  // The innermost elements that stick out are the ones to fix; their ancestors only carry them.
  const innermost = over.filter((el) => !over.some((other) => other !== el && el.contains(other)));
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.classList.length ? "." + [...el.classList].join(".") : "")
    + ` "${(el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 40)}"`
    + ` to ${Math.round(Math.max(el.getBoundingClientRect().right, el.getBoundingClientRect().left + el.scrollWidth))} px`;
  return {scroll, width, widest: innermost.slice(0, 3).map(describe)};
}"""

AXE_JS = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, help: v.help,
    targets: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
}"""


def settle(tab: Tab) -> None:
    """Let a 3D preview in view finish (loading or refusing): it adds buttons, and leaving mid-download
    leaves the test server's file open. One below the fold (on a phone) waits, as it does for a person,
    until it is scrolled to (the state "job page, its 3D preview scrolled to" does that)."""
    tab.page.wait_for_function(
        """() => [...document.querySelectorAll('.model-preview')].every((el) =>
             el.getBoundingClientRect().top >= window.innerHeight
             || ['ready', 'error', 'unsupported'].includes(el.dataset.previewState))"""
    )


def visit(site: Site, tab: Tab, state: PageState) -> list[str]:
    """Show the state in `tab`; what is wrong with it, in words."""
    response = tab.go(state.url(site))
    if state.then is not None:
        response = state.then(site, tab) or response
        tab.audit()
    problems = []
    if response is None or response.status != state.status:
        problems.append(f"answered {response.status if response else 'nothing'}, not {state.status}")
    settle(tab)
    measured = tab.page.evaluate(WIDTH_JS)
    if measured["scroll"] > measured["width"]:
        problems.append(
            f"{measured['scroll']} px wide in a {measured['width']} px window: {'; '.join(measured['widest'])}"
        )
    for violation in tab.page.evaluate(AXE_JS):
        problems.append(f"axe {violation['id']}: {violation['help']} — {', '.join(violation['targets'])}")
    if SHOTS:
        name = re.sub(r"[^a-z0-9]+", "-", f"{tab.name} {state.name}".lower()).strip("-")
        tab.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
    return [f"{urlsplit(tab.page.url).path}: {problem}" for problem in problems]


def test_every_page_state_fits_the_window_and_passes_axe(
    live: Live, open_tab: Any, tmp_path: Path, octoprint: OctoPrintServer
) -> None:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci` in the repository (`make test` does)")
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    make_staff(live.session, LONG_STAFF)
    staff_service.set_active(live.session, OTHER_STAFF, False, by=actor(STAFF, ADMIN_PC))
    site = Site(live, tmp_path, octoprint)
    failures: list[str] = []
    for width, viewport in WIDTHS.items():
        tabs = {who: open_tab(f"{who} {width} px", viewport) for who in ("student", "staff", "desk")}
        for tab in tabs.values():
            tab.page.context.add_init_script(path=str(AXE))  # in every page, before the page's own scripts
        sign_in(tabs["staff"], live, ADMIN_PC)
        sign_in(tabs["desk"], live, "LAB-PC-1")
        for state in STATES:
            if ONLY and ONLY not in state.name:
                continue
            try:
                problems = visit(site, tabs[state.who], state)
            except Exception as exc:  # one broken state mustn't hide the others' findings
                problems = [f"could not be shown: {type(exc).__name__}: {str(exc).splitlines()[0]}"]
            failures.extend(f"{width} px · {state.name} · {problem}" for problem in problems)
    assert len(STATES) >= 60, "the table of page states lost some rows"
    assert not failures, (
        f"{len(failures)} problem(s) in {len(STATES)} page states × {len(WIDTHS)} widths:\n"
        + ("\n".join(failures))
    )
