"""The job sheet, its action dialogs, "Acting as" in the header, the landing page and the admin editor in Chromium."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import Event, Job
from printlab.services.lab import workstations
from printlab.services.lab.catalog import load_catalog, save_section

from ..factories import STAFF, actor, make_job
from .conftest import DESKTOP, PASSWORD, PHONE, Live, Tab, act_as, sign_in

pytestmark = pytest.mark.browser

WIDTHS = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
ADMIN_PC = "ADMIN-PC"


WIDE_JS = """(root) => [...(root || document).querySelectorAll('*')]
  .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(-3).map(el => el.tagName + '.' + el.className + '#' + el.id)"""


def fits(tab: Tab, selector: str | None = None) -> None:
    """The page (or one part of it) is no wider than the viewport; the widest parts are named."""
    if selector is None:
        width = tab.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert width[0] <= width[1], f"{tab.page.url} scrolls sideways: {width} {tab.page.evaluate(WIDE_JS)}"
    else:
        part = tab.page.locator(selector)
        assert part.evaluate(WIDE_JS) == [], f"{selector} is wider than the viewport"


def settle(tab: Tab) -> None:
    """Let the 3D preview finish loading the model before leaving the job page."""
    tab.page.wait_for_load_state("networkidle")


def open_job(tab: Tab, live: Live, job: Job) -> None:
    tab.go(f"{live.url}/jobs/{job.id}")
    settle(tab)


def events_by(live: Live, job_id: str, event_type: str) -> list[str | None]:
    query = select(Event.triggered_by).where(Event.job_id == job_id, Event.event_type == event_type)
    return list(live.fresh().scalars(query))


def focused_inside(tab: Tab, selector: str) -> bool:
    return bool(tab.page.evaluate(f"() => !!document.activeElement.closest({selector!r})"))


# -- Acting as, once per tab -------------------------------------------------------------------


@pytest.mark.parametrize("viewport", WIDTHS)
def test_acting_as_is_chosen_once_in_the_header_and_used_by_a_form(live, open_tab, viewport):
    job = make_job(live.session, live.storage)
    staff = open_tab("staff", viewport)
    sign_in(staff, live)
    page = staff.page
    open_job(staff, live, job)
    # One choice on the page, in the header; the forms carry it in hidden fields.
    expect(page.locator("select[name=acting_as]")).to_have_count(0)
    expect(page.locator("input[type=hidden][name=acting_as]")).not_to_have_count(0)
    expect(page.get_by_text("Acting as", exact=True)).to_have_count(1)
    fits(staff, ".site-header")  # (the files table's width is a matter of its own)
    fits(staff, ".actions")
    act_as(staff, STAFF)
    assert live.fresh().get(Job, job.id).staff_viewed_at is not None  # opening it cleared NEW
    page.get_by_role("button", name="Mark as new").click()
    page.wait_for_url(f"{live.url}/dashboard")
    staff.audit()
    assert "Marked as new." in page.locator(".flashes").inner_text()
    assert live.fresh().get(Job, job.id).staff_viewed_at is None
    # Remembered for this tab: the next page shows it without asking again.
    staff.go(f"{live.url}/jobs/{job.id}")
    settle(staff)
    expect(page.locator("#acting-as-choice")).to_have_value(STAFF)
    assert page.locator("input[name=acting_as]").first.input_value() == STAFF


def test_admin_staff_and_workstation_pages_ask_who_is_acting_once(live, open_tab):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    admin = open_tab("admin")
    sign_in(admin, live, ADMIN_PC)
    page = admin.page
    for path in ("/admin/staff", "/admin/workstations"):
        admin.go(f"{live.url}{path}")
        expect(page.get_by_text("Acting as", exact=True)).to_have_count(1)
        expect(page.locator("select[name=acting_as]")).to_have_count(0)
    act_as(admin, STAFF)
    page.get_by_role("button", name="Reset password of LAB-PC-2").click()
    page.wait_for_url(re.compile("/admin/workstations"))
    admin.audit()
    expect(page.locator("#new-password")).to_contain_text("LAB-PC-2")


# -- action dialogs ----------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", WIDTHS)
def test_an_action_opens_as_a_dialog_that_traps_focus_and_closes_on_escape(live, open_tab, viewport):
    job = make_job(live.session, live.storage, Status.READYTOPRINT)
    staff = open_tab("staff", viewport)
    sign_in(staff, live)
    page = staff.page
    open_job(staff, live, job)
    act_as(staff, STAFF)
    link = page.locator(".action-list").get_by_role("link", name="Start printing")
    with page.expect_response(lambda r: r.url.endswith("/lock") and r.request.method == "POST"):
        link.click()
    dialog = page.locator("dialog#action-dialog")
    expect(dialog).to_be_visible()
    assert page.url == f"{live.url}/jobs/{job.id}"  # still the job page, under the dialog
    assert page.evaluate("() => document.querySelector('dialog#action-dialog').matches(':modal')")
    expect(dialog.get_by_role("heading", name="Start printing")).to_be_visible()
    # Who is acting was chosen in the header (out of reach behind the dialog): the dialog says so.
    expect(dialog.locator("select[name=acting_as]")).to_have_count(0)
    expect(dialog.locator(".acting-as-note")).to_have_text(f"Acting as {STAFF}")
    expect(dialog.locator("#action-submit")).to_be_enabled()
    staff.audit()
    fits(staff, "dialog#action-dialog")
    staff.screenshot(f"action-dialog-{viewport['width']}")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert focused_inside(staff, "dialog"), "Tab left the dialog"
    for _ in range(4):
        page.keyboard.press("Shift+Tab")
        assert focused_inside(staff, "dialog"), "Shift+Tab left the dialog"
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert page.evaluate("() => document.activeElement.textContent") == "Start printing"
    # Cancel closes it too; then the dialog's own button does the action.
    link.click()
    expect(dialog).to_be_visible()
    dialog.get_by_role("link", name="Cancel").click()
    expect(dialog).to_have_count(0)
    link.click()
    expect(dialog.locator("#action-submit")).to_be_enabled()
    dialog.get_by_label("Printer").select_option("Prusa XL")
    dialog.locator("#action-submit").click()
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()
    settle(staff)
    assert page.locator(".status-pill").inner_text() == "Printing"
    moved = live.fresh().get(Job, job.id)
    assert moved.status == "PRINTING" and moved.printer == "Prusa XL"
    assert events_by(live, job.id, "StatusChanged")[-1] == STAFF


def test_actions_and_forms_work_without_javascript(live, open_tab):
    job = make_job(live.session, live.storage, Status.READYTOPRINT)
    staff = open_tab("no-script", java_script_enabled=False)
    sign_in(staff, live)
    page = staff.page
    staff.go(f"{live.url}/jobs/{job.id}")
    expect(page.locator("#acting-as-control")).to_be_hidden()  # no header choice without script
    expect(page.locator("select[name=acting_as]").first).to_be_visible()
    page.locator(".action-list").get_by_role("link", name="Start printing").click()
    page.wait_for_url(f"{live.url}/jobs/{job.id}/act/start_printing")
    staff.audit()
    page.locator("#action-form").get_by_label("Acting as").select_option(STAFF)
    page.locator("#action-submit").click()
    page.wait_for_url(f"{live.url}/jobs/{job.id}")
    staff.audit()
    assert live.fresh().get(Job, job.id).status == "PRINTING"
    page.locator("#acting_as-reviewed").select_option(STAFF)
    page.get_by_role("button", name="Mark as new").click()
    page.wait_for_url(f"{live.url}/dashboard")
    staff.audit()
    assert live.fresh().get(Job, job.id).staff_viewed_at is None


# -- the job sheet -----------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", WIDTHS)
def test_a_paid_job_shows_no_lone_red_button_and_no_attach_form(live, open_tab, viewport):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    job = make_job(live.session, live.storage, Status.PAIDPICKEDUP)
    admin = open_tab("admin", viewport)
    sign_in(admin, live, ADMIN_PC)
    page = admin.page
    open_job(admin, live, job)
    fits(admin, ".actions")
    visible_red = page.locator(".danger:visible")
    expect(visible_red).to_have_count(0)
    expect(page.locator(".attach-form")).to_have_count(0)
    more = page.locator("details.more-actions")
    for label in ("Revert (mistake)", "Admin override…", "Delete files…"):
        expect(more.get_by_role("link", name=label)).to_be_hidden()
    more.locator("summary").click()
    for label in ("Revert (mistake)", "Admin override…", "Delete files…"):
        expect(more.get_by_role("link", name=label)).to_be_visible()
    admin.screenshot(f"paid-job-{viewport['width']}")


@pytest.mark.parametrize("status", [Status.REJECTED, Status.ARCHIVED, Status.UPLOADED])
def test_closed_jobs_offer_no_attach_form(live, open_tab, status):
    job = make_job(live.session, live.storage, status)
    staff = open_tab("staff")
    sign_in(staff, live)
    open_job(staff, live, job)
    expected = 1 if status == Status.UPLOADED else 0
    expect(staff.page.locator(".attach-form")).to_have_count(expected)


def test_the_thumbnail_is_not_repeated_under_the_live_preview(live, open_tab):
    job = make_job(live.session, live.storage)
    staff = open_tab("staff")
    sign_in(staff, live)
    page = staff.page
    open_job(staff, live, job)
    expect(page.locator(".model-preview")).to_have_count(1)
    expect(page.locator("img.thumbnail")).to_have_count(0)
    # The next steps come before the details.
    order = page.evaluate("() => [...document.querySelectorAll('main h2')].map(h => h.textContent)")
    assert order.index("Next steps") < order.index("Details") < order.index("Files") < order.index("History")


def test_delete_files_has_a_cancel_back_to_the_job(live, open_tab):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    job = make_job(live.session, live.storage, Status.REJECTED)
    admin = open_tab("admin")
    sign_in(admin, live, ADMIN_PC)
    admin.go(f"{live.url}/admin/jobs/{job.id}/delete-files")
    admin.page.get_by_role("link", name="Cancel").click()
    admin.page.wait_for_url(f"{live.url}/jobs/{job.id}")
    admin.audit()
    settle(admin)
    assert live.fresh().get(Job, job.id).file_path  # nothing deleted


# -- admin navigation and the catalog editor ---------------------------------------------------


def test_the_admin_navigation_marks_the_page_shown(live, open_tab):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    admin = open_tab("admin")
    sign_in(admin, live, ADMIN_PC)
    page = admin.page
    for path, label in [
        ("/admin", "Overview"),
        ("/admin/staff", "Staff"),
        ("/admin/workstations", "Workstations"),
        ("/admin/catalog", "Lab catalog"),
        ("/admin/health", "Health"),
        ("/admin/log", "Admin log"),
    ]:
        admin.go(f"{live.url}{path}")
        current = page.locator(".admin-nav a[aria-current=page]")
        expect(current).to_have_count(1)
        expect(current).to_have_text(label)
        other = page.locator(".admin-nav a:not([aria-current])").first
        style = "(a) => [getComputedStyle(a).fontWeight, getComputedStyle(a).borderBottomWidth]"
        assert current.evaluate(style) != other.evaluate(style), "the current page looks like the others"


@pytest.mark.parametrize("viewport", WIDTHS)
def test_the_catalog_editor_saves_every_section_with_one_button(live, open_tab, viewport):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    admin = open_tab("admin", viewport)
    sign_in(admin, live, ADMIN_PC)
    page = admin.page
    admin.go(f"{live.url}/admin/catalog")
    expect(page.locator("main button[type=submit]")).to_have_count(1)
    save = page.get_by_role("button", name="Save the catalog")
    act_as(admin, STAFF)
    page.get_by_label("Opening hours").fill("Mon–Thu 10:00–16:00")
    page.get_by_label("Minimum charge ($)").fill("4.50")
    page.locator("#disciplines-list").fill("Art\nEngineering\nDance")
    save.click()
    page.wait_for_url(f"{live.url}/admin/catalog")
    admin.audit()
    saved = load_catalog(live.fresh())
    assert saved.lab.opening_hours == "Mon–Thu 10:00–16:00"
    assert saved.minimum_charge == Decimal("4.50")
    assert saved.disciplines == ("Art", "Engineering", "Dance")

    # A mistake in one section saves nothing and keeps every value typed.
    page.get_by_label("Minimum charge ($)").fill("lots")
    page.get_by_label("Opening hours").fill("Always")
    with page.expect_navigation():
        page.get_by_role("button", name="Save the catalog").click()
    admin.audit()
    expect(page.locator("#error-summary")).to_contain_text("Enter a number")
    expect(page.get_by_label("Opening hours")).to_have_value("Always")
    assert load_catalog(live.fresh()).lab.opening_hours == "Mon–Thu 10:00–16:00"

    # Changed at another computer since this page was shown: refused, the typing kept.
    admin.go(f"{live.url}/admin/catalog")
    save_section(live.session, "reasons", {"rejection_reasons": "Too big"}, by=actor(STAFF, ADMIN_PC))
    page.get_by_label("Opening hours").fill("Weekends")
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Save the catalog").click()
    admin.audit()
    assert answer.value.status == 409
    expect(page.locator("#conflict")).to_contain_text("changed at another computer")
    expect(page.get_by_label("Opening hours")).to_have_value("Weekends")
    assert load_catalog(live.fresh()).lab.opening_hours == "Mon–Thu 10:00–16:00"


# -- the landing page --------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", WIDTHS)
def test_the_landing_page_names_the_lab_its_hours_prices_and_finds_a_job(live, open_tab, viewport):
    job = make_job(live.session, live.storage, Status.PENDING)
    cat = load_catalog(live.fresh())
    student = open_tab("student", viewport)
    page = student.page
    student.go(f"{live.url}/")
    main = page.locator("main").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == cat.lab.name
    assert cat.lab.opening_hours in main and cat.lab.pickup_location in main
    for method in cat.methods:
        assert f"{method.name}: ${method.rate_per_gram} per gram" in main
    assert f"${cat.minimum_charge}" in main
    fits(student)
    student.screenshot(f"landing-{viewport['width']}")

    # A job number alone shows no job.
    simple = job.display_name.rsplit("_", 1)[-1]  # type: ignore[union-attr]
    page.get_by_label("The link from your PrintLab email").fill(simple)
    with page.expect_navigation() as answer:
        page.get_by_role("button", name="Show my job").click()
    student.audit()
    assert answer.value.status == 422
    expect(page.locator("#find-link-error")).to_contain_text("A job number alone can't open a job")
    assert job.student_name not in page.locator("main").inner_text()

    # The link from the email opens the status page.
    page.get_by_label("The link from your PrintLab email").fill(f"  {live.status_url(job.id)}  ")
    page.get_by_role("button", name="Show my job").click()
    page.wait_for_url(live.status_url(job.id))
    student.audit()
    assert simple in page.get_by_role("heading", level=1).inner_text()

    # A link whose code was altered opens nothing.
    student.go(f"{live.url}/")
    page.get_by_label("The link from your PrintLab email").fill(live.status_url(job.id)[:-3] + "abc")
    page.get_by_role("button", name="Show my job").click()
    page.wait_for_load_state()
    student.audit()
    expect(page.locator("#find-link-error")).to_contain_text("incomplete or was changed")
