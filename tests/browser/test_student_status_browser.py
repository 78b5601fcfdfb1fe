"""The student's status page in Chromium through a job's whole life, on a desktop and a 375 px phone:
student words, the progress steps, what was paid, and the button that emails a fresh quote link."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.models import OutboxMessage
from printlab.services.jobs import workflow
from printlab.services.jobs.quote_links import ConfirmOutcome

from ..conftest import MODELS
from ..factories import actor, make_staff, submit_job
from .conftest import DESKTOP, PHONE, Live, Tab

pytestmark = pytest.mark.browser

#: A long name without spaces, as students' files often have: it must wrap, not widen the page.
LONG_NAME = "ArchitectureStudio_FinalModel_Revision12_withSupports_scaled_to_millimetres_v3.stl"


def _steps(tab: Tab) -> tuple[list[str], str]:
    """The progress steps' labels (without the hidden "done" words) and the current one's."""
    page = tab.page
    labels = page.locator(".stepper .step-label").evaluate_all(
        "els => els.map(el => el.firstChild.textContent.trim())"
    )
    current = page.locator('.stepper [aria-current="step"]')
    assert current.count() == 1, "exactly one step is the current one"
    return labels, current.locator(".step-label").evaluate("el => el.firstChild.textContent.trim()")


def _fits(tab: Tab, width: int) -> None:
    page = tab.page
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the status page scrolls sideways at {width} px: {scroll}"
    for box in page.locator(".stepper .step").evaluate_all(
        "els => els.map(el => { const r = el.getBoundingClientRect(); return [r.left, r.right]; })"
    ):
        assert box[0] >= 0 and box[1] <= width, f"a progress step is outside the screen: {box}"


def test_the_status_page_through_a_jobs_life_on_desktop_and_phone(live: Live, open_tab, tmp_path):
    session, storage = live.session, live.storage
    make_staff(session)
    model = tmp_path / LONG_NAME
    shutil.copyfile(MODELS / "stl_binary_20mm_xyz_cube.stl", model)
    job = submit_job(
        session, storage, model, now=utcnow() - timedelta(hours=3), student_email="jane.doe@uni.edu"
    )
    desktop = open_tab("student-desktop", DESKTOP)
    phone = open_tab("student-phone", PHONE)
    url = live.status_url(job.id)
    simple = job.display_name.rsplit("_", 1)[-1]  # type: ignore[union-attr]

    def student_sees(headline: str, current: str, shot: str) -> None:
        for tab, width in ((desktop, DESKTOP["width"]), (phone, PHONE["width"])):
            tab.go(url)
            heading = tab.page.get_by_role("heading", level=1).inner_text()
            assert heading == f"Job {simple}: {headline}"
            labels, now = _steps(tab)
            assert now == current
            text = tab.page.inner_text("main")
            for staff_word in ("Uploaded", "Pending", "Ready to Print", "Paid & Picked Up", "Rejected"):
                assert staff_word not in text, staff_word
            _fits(tab, width)
            tab.screenshot(f"student-status-{shot}-{width}")
        assert labels == ["Review", "Quote", "Print queue", "Printing", "Ready for pickup", "Picked up"]

    student_sees("Waiting for review", "Review", "uploaded")

    # Approved two hours ago: the quote email went out, and the student can't find it.
    workflow.approve(
        session, storage, job.id, actor=actor(), weight_g=38, time_hours=2, now=utcnow() - timedelta(hours=2)
    )
    student_sees("Quote ready — please confirm", "Quote", "pending")
    page = phone.page
    assert "j***@uni.edu" in page.inner_text(".confirm-box")
    page.get_by_role("button", name="Email me a new link").click()
    page.wait_for_selector(".flashes")
    phone.audit()
    assert "We sent a new link to j***@uni.edu" in page.inner_text(".flashes")
    assert "/confirm/" not in page.content()  # the link went to the inbox, never onto the page
    _fits(phone, PHONE["width"])
    session.rollback()
    quotes = session.scalars(
        select(OutboxMessage).where(OutboxMessage.job_id == job.id, OutboxMessage.template == "quote")
    ).all()
    assert len(quotes) == 2 and quotes[-1].recipient == "jane.doe@uni.edu"
    page.get_by_role("button", name="Email me a new link").click()  # again at once: refused, said plainly
    page.wait_for_selector(".error-summary")
    phone.audit()
    assert "less than an hour ago" in page.inner_text(".error-summary")

    token = live.quote_link(job.id).rsplit("/", 1)[1]  # the newest link, from the delivered email
    assert workflow.confirm(session, storage, token).outcome == ConfirmOutcome.CONFIRMED
    student_sees("Queued for printing", "Print queue", "queued")
    workflow.start_printing(session, storage, job.id, actor=actor())
    student_sees("Printing", "Printing", "printing")
    workflow.complete(session, storage, job.id, actor=actor())
    student_sees("Ready for pickup", "Ready for pickup", "ready")
    # Quoted $3.80 (38 g); the finished print weighed 36.5 g, so $3.65 was charged.
    workflow.record_pickup(
        session, storage, job.id, actor=actor(), method="CARD", weighed_g="36.5", payment_reference="C-9"
    )
    student_sees("Picked up", "Picked up", "picked-up")
    for tab in (desktop, phone):
        assert tab.page.inner_text(".paid-amount") == "$3.65"
        assert "$3.80" not in tab.page.inner_text("main")


def test_a_rejected_job_on_a_phone_stops_at_review_without_a_green_verdict(live: Live, open_tab):
    session, storage = live.session, live.storage
    make_staff(session)
    job = submit_job(session, storage, "stl_binary_nonwatertight_teapot.stl")
    phone = open_tab("student-phone", PHONE)
    url = live.status_url(job.id)

    phone.go(url)
    phone.page.wait_for_selector("#analysis[data-state='DONE']", timeout=30_000)  # the worker checks it
    assert "holes" in phone.page.inner_text("#analysis")  # before staff decide, the check speaks
    workflow.reject(session, storage, job.id, actor=actor(), reasons=["Non-manifold or broken mesh"])

    phone.go(url)
    assert phone.page.get_by_role("heading", level=1).inner_text().endswith(": Not printed")
    labels, now = _steps(phone)
    assert labels == ["Review", "Not printed"] and now == "Not printed"
    analysis = phone.page.inner_text("#analysis")
    assert "holes" not in analysis and "No problems found" not in analysis
    assert phone.page.locator("#analysis .ok").count() == 0
    assert phone.page.locator("ul.problems li").all_inner_texts() == ["Non-manifold or broken mesh"]
    _fits(phone, PHONE["width"])
    phone.screenshot("student-status-rejected-375")
