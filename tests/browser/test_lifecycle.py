"""A job's whole life through the real pages in Chromium: staff sign-in, every action, locks, quote links; SQLite (the end-to-end run also on PostgreSQL)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services.jobs import workflow
from printlab.services.lab import staff as staff_service

from ..conftest import BACKENDS, MODELS
from ..factories import STAFF, actor, make_job
from .conftest import (
    OTHER_STAFF,
    PHONE,
    Live,
    Tab,
    act_as,
    choose_acting_as,
    milestones,
    sign_in,
    submit_model,
)

pytestmark = pytest.mark.browser

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"


def open_job(tab: Tab, live: Live, job: Job) -> None:
    tab.go(f"{live.url}/jobs/{job.id}")
    assert tab.page.get_by_role("heading", level=1).inner_text().startswith(job.student_name or "")


def open_action(tab: Tab, label: str) -> None:
    """Open an action from the job page: its form shows in a dialog over the page."""
    page = tab.page
    link = page.locator(".actions").get_by_role("link", name=label)
    if not link.is_visible():
        page.locator("details.more-actions summary").click()  # steps that undo work wait under "More"
    link.click()
    expect(page.locator("dialog#action-dialog #action-form")).to_be_visible()
    tab.audit()


def send_action(tab: Tab, label: str) -> str:
    """Press the dialog's button; returns the message flashed on the job page."""
    page = tab.page
    with page.expect_navigation():
        page.locator("#action-submit").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f]+$"))
    tab.audit()
    flash = page.locator(".flashes").inner_text()
    assert flash.startswith(f"{label}: done for job"), flash
    return flash


def without_repeats(steps: list[str]) -> list[str]:
    return [step for number, step in enumerate(steps) if number == 0 or steps[number - 1] != step]


def status_pill(tab: Tab) -> str:
    return tab.page.locator(".status-pill").inner_text()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_from_upload_to_pickup(live: Live, open_tab, backend):
    student = open_tab("student")
    staff = open_tab("LAB-PC-1")

    job = submit_model(student, live, CUBE)
    status_url = student.page.locator("#status-link").get_attribute("href")
    simple = job.display_name.rsplit("_", 1)[-1]  # type: ignore[union-attr]

    # Staff sign in and find the NEW card.
    sign_in(staff, live)
    page = staff.page
    card = page.locator(".card", has_text="Jane Doe")
    expect(card.locator(".badge.new")).to_have_text("NEW")
    assert "stl_binary_20mm_xyz_cube.stl" in card.inner_text()  # the student's own file name
    staff.screenshot("dashboard")
    card.locator("a.card-link").click()
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()
    assert status_pill(staff) == "Uploaded"

    # Approve: Acting as, weight and time; the server's price follows the weight as it is typed.
    open_action(staff, "Approve and send quote")
    assert (
        "An email goes to jane.doe@example.edu with the quote and a link to confirm it."
        in page.inner_text(".consequence")
    )
    choose_acting_as(staff)
    expect(page.locator("#action-submit")).to_be_enabled()
    page.get_by_label("Weight (g)").fill("10")
    expect(page.locator("#price-output")).to_have_text("$3.00")  # the minimum charge
    page.get_by_label("Weight (g)").fill("42")
    expect(page.locator("#price-output")).to_have_text("$4.20")
    page.get_by_label("Print method").select_option("Resin")
    expect(page.locator("#price-output")).to_have_text("$8.40")
    page.get_by_label("Print method").select_option("Filament")
    expect(page.locator("#price-output")).to_have_text("$4.20")
    page.get_by_label(re.compile("Print time")).fill("2.2")
    staff.screenshot("approve-dialog")
    send_action(staff, "Approve and send quote")
    assert status_pill(staff) == "Pending"
    assert "$4.20 · 42.0 g · 2.5 h" in page.inner_text(".summary")
    staff.screenshot("job-pending")

    # The quote email's link: the student reads the quote and confirms it.
    link = live.quote_link(job.id)  # from the quote email the worker delivered to the mail folder
    student.go(link)
    assert student.page.get_by_role("heading", level=1).inner_text() == "Your print quote: $4.20"
    assert simple in student.page.inner_text(".quote")
    student.page.get_by_role("button", name="Confirm: print it for $4.20").click()
    student.page.wait_for_selector("text=Thanks, your print is confirmed")
    student.audit()
    student.go(link)  # the link again: already confirmed, nothing changes
    assert student.page.get_by_role("heading", level=1).inner_text() == "You've already confirmed this quote"

    repeated: list[list[str]] = []

    def student_sees(*steps: str, status: str) -> None:
        student.go(f"{live.url}{status_url}")
        assert student.page.get_by_role("heading", level=1).inner_text() == f"Job {simple}: {status}"
        shown = milestones(student)
        assert without_repeats(shown) == list(steps)
        if shown != list(steps):
            repeated.append(shown)  # reported at the end, so the rest of the life is still checked

    steps = ["Submitted", "Quote sent", "Quote confirmed — in the print queue"]
    student_sees(*steps, status="Queued for printing")

    # Start printing: "Acting as" is remembered for this browser tab.
    open_job(staff, live, job)
    assert status_pill(staff) == "Ready to Print"
    open_action(staff, "Start printing")
    expect(page.locator("#action-form #acting_as")).to_have_value(STAFF)
    page.get_by_label("Printer").select_option("Prusa XL")
    expect(page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Start printing")
    assert status_pill(staff) == "Printing"
    student_sees(*steps, "Printing started", status="Printing")

    open_action(staff, "Mark complete")
    assert "An email goes to jane.doe@example.edu saying the print is ready for pickup." in page.inner_text(
        ".consequence"
    )
    expect(page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Mark complete")
    assert status_pill(staff) == "Completed"
    student_sees(*steps, "Printing started", "Ready for pickup", status="Ready for pickup")

    # Pickup: the final price from the weighed grams is shown next to the quote.
    open_action(staff, "Record pickup and payment")
    assert page.get_by_label("Picked up by").input_value() == "Jane Doe"
    page.get_by_label("Weighed grams").fill("40")
    expect(page.locator("#final-output")).to_have_text("$4.00")
    page.get_by_label("Card terminal").check()
    page.get_by_label("Payment reference").fill("CARD-1234")
    expect(page.locator("#action-submit")).to_be_enabled()
    staff.screenshot("pickup-dialog")
    send_action(staff, "Record pickup and payment")
    assert status_pill(staff) == "Paid & Picked Up"
    assert "weighed 40.0 g · ref CARD-1234 · collected by Jane Doe" in page.inner_text("#ledger")
    assert "Card terminal" in page.inner_text("#ledger") and "$4.00" in page.inner_text("#balance")
    student_sees(*steps, "Printing started", "Ready for pickup", "Picked up", status="Picked up")
    student.screenshot("status-picked-up")

    # Every step is attributed in the job's history; a staff member who leaves stays on it, marked.
    history = page.inner_text(".timeline")
    assert (
        history.count(f"by {STAFF}") == history.count("at LAB-PC-1") == 4
    )  # approve, start, complete, pickup
    assert "StaffApproved" not in history and "Moved from Completed to Paid & Picked Up" in history
    staff_service.set_active(live.session, STAFF, False)
    open_job(staff, live, job)
    assert f"{STAFF} (inactive)" in page.inner_text(".timeline")
    assert STAFF not in page.locator("#acting-as-choice").inner_text()
    live.fresh()
    done = live.session.get(Job, job.id)
    assert done is not None and done.status == Status.PAIDPICKEDUP.value
    assert live.storage.resolve(done.file_path).exists()  # type: ignore[arg-type]
    assert not repeated, f"the status page shows a milestone twice: {repeated}"


def test_reject_with_reasons_reaches_the_student(live: Live, open_tab):
    job = make_job(live.session, live.storage, student_name="Rita Reject", student_email="rita@example.edu")
    staff = open_tab("LAB-PC-1")
    student = open_tab("student")
    sign_in(staff, live)
    open_job(staff, live, job)
    page = staff.page

    open_action(staff, "Reject")
    choose_acting_as(staff)
    page.get_by_label("Walls too thin").check()
    page.get_by_label("Unsupported overhangs").check()
    page.get_by_label("In your own words (optional)").fill(
        "The handle is 0.2 mm thick; make it at least 1 mm."
    )
    assert "An email goes to rita@example.edu with the reasons you choose." in page.inner_text(".consequence")
    expect(page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Reject")
    assert status_pill(staff) == "Rejected"

    student.go(live.status_url(job.id))
    assert student.page.get_by_role("heading", level=1).inner_text().endswith(": Not printed")
    assert student.page.locator("ul.problems li").all_inner_texts() == [
        "Walls too thin",
        "Unsupported overhangs",
        "The handle is 0.2 mm thick; make it at least 1 mm.",
    ]
    assert milestones(student) == ["Submitted", "Not accepted"]


def test_reject_needs_a_reason(live: Live, open_tab):
    job = make_job(live.session, live.storage)
    staff = open_tab("LAB-PC-1")
    sign_in(staff, live)
    open_job(staff, live, job)
    open_action(staff, "Reject")
    choose_acting_as(staff)
    expect(staff.page.locator("#action-submit")).to_be_enabled()
    staff.page.locator("#action-submit").click()
    staff.page.wait_for_selector("#error-summary")
    staff.audit()
    assert staff.page.locator("#reasons-error").inner_text() == "Give at least one reason for the student."
    assert staff.page.evaluate("() => document.activeElement.id") == "error-summary"
    assert live.fresh().get(Job, job.id).status == Status.UPLOADED.value  # type: ignore[union-attr]


def test_print_failed_goes_back_to_the_queue_without_a_new_quote(live: Live, open_tab):
    job = make_job(live.session, live.storage, Status.PRINTING)
    staff = open_tab("LAB-PC-1")
    student = open_tab("student")
    sign_in(staff, live)
    open_job(staff, live, job)
    page = staff.page

    open_action(staff, "Print failed")
    choose_acting_as(staff)
    page.get_by_label("What went wrong").fill("Bed adhesion lost at layer 40")
    expect(page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Print failed")
    assert status_pill(staff) == "Ready to Print"
    assert "Bed adhesion lost at layer 40" in page.inner_text(".timeline")
    assert "$4.20" in page.inner_text(".summary")  # the quote stands

    open_action(staff, "Start printing")
    expect(page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Start printing")
    assert status_pill(staff) == "Printing"

    student.go(live.status_url(job.id))
    assert without_repeats(milestones(student)) == [  # the end-to-end test checks for repeats
        "Submitted",
        "Quote sent",
        "Quote confirmed — in the print queue",
        "Printing started",
        "The print failed — we'll print it again at no extra cost",
        "Printing started",
    ]
    live.fresh()
    assert live.session.get(Job, job.id).cost_usd is not None  # type: ignore[union-attr]


def test_two_workstations_contend_for_one_job(live: Live, open_tab):
    job = make_job(live.session, live.storage)
    first = open_tab("LAB-PC-1")
    second = open_tab("LAB-PC-2")
    sign_in(first, live, "LAB-PC-1")
    sign_in(second, live, "LAB-PC-2")

    open_job(first, live, job)
    open_action(first, "Approve and send quote")
    choose_acting_as(first, STAFF)

    # The second workstation sees who holds the job and can't act.
    open_job(second, live, job)
    assert f"Being edited by {STAFF}" in second.page.locator(".banner.lock").inner_text()
    open_action(second, "Approve and send quote")
    page = second.page
    assert page.locator("#lock-state").inner_text() == f"Being edited by {STAFF}."
    assert page.locator("#action-submit").is_disabled()
    with page.expect_response(lambda r: r.url.endswith("/lock")) as answer:
        page.locator("#acting_as").select_option(OTHER_STAFF)
    assert answer.value.status == 409
    expect(page.locator("#lock-state")).to_have_text(
        f"This job is being edited by {STAFF}. Try again when they are done."
    )
    assert page.locator("#action-submit").is_disabled()
    page.get_by_label("Weight (g)").fill("50")
    page.get_by_label(re.compile("Print time")).fill("3")
    second.screenshot("dialog-locked")

    # The first approves; the second's view of the job is now stale.
    first.page.get_by_label("Weight (g)").fill("42")
    first.page.get_by_label(re.compile("Print time")).fill("2")
    send_action(first, "Approve and send quote")
    live.quote_link(job.id)  # the quote email goes out meanwhile (an EmailSent event, by PrintLab)

    # The lock is free again, so the second can press the button, and is refused: the job changed.
    with page.expect_response(lambda r: r.url.endswith("/lock")) as answer:
        page.locator("#acting_as").select_option("")
        page.locator("#acting_as").select_option(OTHER_STAFF)
    assert answer.value.status == 200
    expect(page.locator("#action-submit")).to_be_enabled()
    page.locator("#action-submit").click()
    page.wait_for_selector("#conflict")
    second.audit()
    refusal = re.fullmatch(
        r"This job was changed by (.+) at \d{4}-\d\d-\d\d \d\d:\d\d [A-Z]{3,4} and is now Pending\. Reload and try again\.",
        page.locator("#conflict p").first.inner_text(),
    )
    assert refusal, page.locator("#conflict p").first.inner_text()
    assert page.locator("#action-submit").is_disabled()
    assert page.locator("#lock-state").is_hidden()  # not "being edited by" the person looking at it
    second.screenshot("dialog-stale")
    page.locator("#conflict").get_by_role("link", name="Reload").click()
    page.wait_for_load_state()
    second.audit()
    assert "This job is Pending; “Approve and send quote” isn't possible now." in page.inner_text("#conflict")

    live.fresh()
    approved = live.session.get(Job, job.id)
    assert approved is not None
    assert (approved.status, approved.weight_g, approved.last_updated_by) == (
        Status.PENDING.value,
        42.0,
        STAFF,
    )
    # A dialog that can't act doesn't hold the job (others may resend the quote meanwhile): the
    # refused page gives back the lock its name took before pressing the button.
    first.go(f"{live.url}/dashboard?status=PENDING")
    expect(first.page.locator(".card", has_text="Jane Doe").locator(".flag.lock")).to_have_count(0)
    assert live.fresh().get(Job, job.id).locked_by is None  # type: ignore[union-attr]
    # Checked last so the steps above run whatever it says: it names who changed the job.
    assert refusal.group(1) == STAFF, f"the refusal names {refusal.group(1)!r}, not the person who approved"


def _tab_to(tab: Tab, selector: str, limit: int = 60) -> None:
    page = tab.page
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_keyboard_only_approval(live: Live, open_tab):
    job = make_job(live.session, live.storage, student_name="Kim Keys", student_email="kim@example.edu")
    staff = open_tab("LAB-PC-1")
    page = staff.page
    keys = page.keyboard

    staff.go(f"{live.url}/login")
    keys.type("LAB-PC-1")  # the workstation box has focus on arrival
    keys.press("Tab")
    keys.type("a-long-password-1")
    keys.press("Enter")
    page.wait_for_url(re.compile(r"/$|/dashboard"))
    staff.audit()

    _tab_to(staff, "a.card-link")
    keys.press("Enter")
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()
    _tab_to(staff, ".action-list a")
    assert page.evaluate("() => document.activeElement.textContent") == "Approve and send quote"
    keys.press("Enter")
    expect(page.locator("dialog#action-dialog #action-form")).to_be_visible()  # over the job page
    staff.audit()

    _tab_to(staff, "#acting_as")
    with page.expect_response(lambda r: r.url.endswith("/lock")):
        keys.type("Alex")  # type-ahead picks "Alex Rivera"
    _tab_to(staff, "#weight_g")
    keys.type("42")
    expect(page.locator("#price-output")).to_have_text("$4.20")
    keys.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "time_hours"
    keys.type("2")
    _tab_to(staff, "#action-submit")
    with page.expect_navigation():  # from the dialog back to the job page
        keys.press("Enter")
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()
    assert status_pill(staff) == "Pending"
    live.fresh()
    approved = live.session.get(Job, job.id)
    assert approved is not None and (approved.status, approved.last_updated_by) == (
        Status.PENDING.value,
        STAFF,
    )


def _no_sideways_scroll(tab: Tab) -> None:
    width = tab.page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the page scrolls sideways at 375 px: {width}"


def test_quote_and_status_pages_at_375_px(live: Live, open_tab):
    job = make_job(live.session, live.storage, Status.PENDING)
    student = open_tab("student", PHONE)
    page = student.page

    student.go(live.status_url(job.id))
    page.wait_for_selector("#analysis[data-state='DONE']", timeout=30_000)  # the worker analyses it meanwhile
    student.audit()
    assert page.get_by_role("heading", level=1).inner_text().endswith(": Quote ready — please confirm")
    assert "$4.20" in page.inner_text("section[aria-labelledby='quote-title']")
    _no_sideways_scroll(student)
    student.screenshot("status-375")

    student.go(live.quote_link(job.id))
    _no_sideways_scroll(student)
    image = page.locator(".quote img.thumbnail")
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
    button = page.get_by_role("button", name="Confirm: print it for $4.20")
    box = button.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    student.screenshot("quote-375")
    button.click()
    page.wait_for_selector("text=Thanks, your print is confirmed")
    student.audit()
    _no_sideways_scroll(student)
    assert live.fresh().get(Job, job.id).status == Status.READYTOPRINT.value  # type: ignore[union-attr]


def test_expired_quote_offers_a_new_link_and_staff_can_resend(live: Live, open_tab):
    session, storage = live.session, live.storage
    old = utcnow() - timedelta(hours=80)
    mine = make_job(session, storage, student_email="late@example.edu")
    workflow.approve(session, storage, mine.id, actor=actor(), weight_g=42, time_hours=2, now=old)
    theirs = make_job(session, storage, student_name="Second Student", student_email="second@example.edu")
    workflow.approve(session, storage, theirs.id, actor=actor(), weight_g=30, time_hours=1, now=old)
    old_link = live.quote_link(mine.id)  # both quote emails go out (the worker sends them)…
    live.quote_link(theirs.id)
    assert workflow.expire_quotes(live.fresh(), storage) == 2  # …and the 72 hours run out unconfirmed

    # Staff see the expired quote on the card and the job.
    staff = open_tab("LAB-PC-1")
    sign_in(staff, live)
    staff.go(f"{live.url}/dashboard?status=PENDING")
    assert (
        staff.page.locator(".card", has_text="Jane Doe").locator(".flag.warn").inner_text() == "quote expired"
    )

    # The student's old link explains and offers a fresh one.
    student = open_tab("student")
    student.go(old_link)
    page = student.page
    assert page.get_by_role("heading", level=1).inner_text() == "This quote link has expired"
    student.screenshot("quote-expired")
    page.get_by_role("button", name="Send me a new link").click()
    page.wait_for_selector("text=We've emailed you a new link")
    student.audit()
    new_link = live.quote_link(mine.id)
    assert new_link != old_link
    student.go(old_link)
    assert page.get_by_role("heading", level=1).inner_text() == "This link isn't valid"
    student.go(new_link)
    page.get_by_role("button", name=re.compile("Confirm: print it for")).click()
    page.wait_for_selector("text=Thanks, your print is confirmed")
    student.audit()

    # Staff resend the other student's quote from the job page.
    open_job(staff, live, theirs)
    assert "The quote link expired without a confirmation." in staff.page.inner_text(".banner.warn")
    open_action(staff, "Resend quote")
    choose_acting_as(staff)
    expect(staff.page.locator("#action-submit")).to_be_enabled()
    send_action(staff, "Resend quote")
    assert staff.page.locator(".banner", has_text="The quote link expired").count() == 0  # History keeps it
    assert f"Quote sent again by {STAFF} with a new confirm link" in staff.page.inner_text(".timeline")
    second = open_tab("second student")
    second.go(live.quote_link(theirs.id))
    assert second.page.get_by_role("heading", level=1).inner_text() == "Your print quote: $3.00"

    live.fresh()
    assert live.session.get(Job, mine.id).status == Status.READYTOPRINT.value  # type: ignore[union-attr]
    assert live.session.get(Job, theirs.id).is_confirmation_expired is False  # type: ignore[union-attr]


def test_notes_typed_on_a_page_the_job_moved_on_from_are_refused_and_kept(live: Live, open_tab):
    job = make_job(live.session, live.storage)
    desk = open_tab("LAB-PC-1")
    sign_in(desk, live)
    open_job(desk, live, job)
    page = desk.page
    page.wait_for_load_state("networkidle")
    act_as(desk, STAFF)
    notes = page.get_by_label("Staff notes (saved as you type)")
    with page.expect_response(lambda r: r.url.endswith("/notes")) as first:
        notes.fill("Walls look thin")
        notes.blur()
    assert first.value.status == 200
    expect(page.locator("#notes-state")).to_contain_text("Saved")

    workflow.approve(
        live.session, live.storage, job.id, actor=actor(OTHER_STAFF, "LAB-PC-2"), weight_g=9, time_hours=1
    )
    with page.expect_response(lambda r: r.url.endswith("/notes")) as second:
        notes.fill("Walls look thin; print it anyway")
        notes.blur()
    assert second.value.status == 409
    expect(page.locator("#notes-state")).to_contain_text(f"changed by {OTHER_STAFF}")
    expect(page.locator("#notes-state")).to_contain_text("copy them before you reload")
    assert notes.input_value() == "Walls look thin; print it anyway"  # still there to copy
    assert live.fresh().get(Job, job.id).notes == "Walls look thin"
