"""The printer board in Chromium, on a desktop and a 375 px phone: lanes in every state, a print's progress
and time left, axe-clean, a queue reordered by keyboard and by dragging (and without script); the
dashboard's Printing card with its progress and a stopped print; the student's "about 40 minutes left".

What the printers report is written as the worker's poller would write it (tests/fleet_factories.py); the
worker is held meanwhile so nothing else writes those rows.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from printlab.clock import to_lab_time, utcnow
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.models import Job, PrintRunState
from printlab.services.printers import queue

from ..factories import make_job
from ..fleet_factories import make_poll, make_printer, make_run
from .conftest import DESKTOP, PHONE, Live, Tab, sign_in
from .test_every_page import AXE, AXE_JS

pytestmark = pytest.mark.browser

MK4S, XL = "Prusa MK4S", "Prusa XL"
_students = itertools.count(1)


@pytest.fixture
def held(live: Live) -> Iterator[Live]:
    """The live app with its worker held: the rows written here stay as written."""
    with live.worker_paused():
        yield live


def a_job(live: Live, status: Status, printer: str = MK4S, name: str = "Jane Doe") -> Job:
    number = next(_students)
    return make_job(
        live.session, live.storage, status, printer=printer, student_name=name,
        student_email=f"student{number}@example.edu",
    )  # fmt: skip


def fleet(live: Live) -> dict[str, Any]:
    """MK4S printing a job at 61 % with 40 minutes left, XL offline, Raise3D paused, Form 3 with no record;
    three jobs queued for MK4S."""
    session = live.session
    mk4s = make_printer(session, MK4S)
    xl = make_printer(session, XL, address="http://10.0.0.8")
    make_printer(session, "Raise3D Pro 2 Plus", "NONE", state="PAUSED")
    printing = a_job(live, Status.PRINTING, name="Priya Printing")
    started = utcnow() - timedelta(minutes=50)
    make_run(session, printing, mk4s, started_at=started)
    make_poll(
        session, mk4s, "printing", file=f"{printing.display_name}.gcode", progress=61.0, seconds_left=2400,
        temperatures=[{"heater": "tool0", "actual": 214.6, "target": 215}, {"heater": "bed", "actual": 60, "target": 60}],
    )  # fmt: skip
    make_poll(session, xl, "offline", message="The printer didn't answer at http://10.0.0.8.")
    queued = [
        a_job(live, Status.READYTOPRINT, name=name) for name in ("Ann First", "Ben Second", "Cal Third")
    ]
    return {"printing": printing, "started": started, "queued": queued}


def audited(tab: Tab) -> None:
    """The page's own audit and axe-core's, both clean."""
    tab.audit()
    assert tab.page.evaluate(AXE_JS) == []


def queue_names(tab: Tab, lane: str = "#lane-1") -> list[str]:
    return tab.page.locator(f"{lane} .queued .queued-body .muted").all_inner_texts()


def saved_order(live: Live) -> list[str]:
    live.fresh()
    return [job.student_name for job in queue.queued(live.session, MK4S)]  # type: ignore[misc]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_the_board_shows_every_lane_and_its_queue_moves_by_keyboard_and_by_drag(
    held: Live, open_tab: Any, viewport: dict[str, int]
) -> None:
    live = held
    made = fleet(live)
    tab = open_tab("staff", viewport)
    tab.page.context.add_init_script(path=str(AXE))
    page = tab.page
    sign_in(tab, live)
    if viewport is PHONE:
        tab.go(f"{live.url}/printers")
    else:
        page.get_by_role("navigation", name="Staff").get_by_role("link", name="Printers").click()
        page.wait_for_url(f"{live.url}/printers")
    expect(
        page.get_by_role("navigation", name="Staff").get_by_role("link", name="Printers")
    ).to_have_attribute("aria-current", "page")
    audited(tab)

    lanes = page.locator("section.lane")
    expect(lanes).to_have_count(4)
    states = [lane.locator(".state-badge").inner_text() for lane in lanes.all()]
    assert states == ["Printing", "Offline", "Out of service — paused by the lab", "Not connected"]
    mk4s = page.locator("#lane-1")
    progress = mk4s.get_by_role("progressbar", name=re.compile("printed so far"))
    expect(progress).to_have_attribute("value", "61.0")
    expect(mk4s.locator(".now-progress")).to_have_text("61% done · about 40 minutes left")
    when = to_lab_time(made["started"], DEFAULT_CATALOG.lab.time_zone).strftime("%d %b %Y %H:%M %Z")
    expect(mk4s.locator(".now-started")).to_have_text(f"Started by Alex Rivera, {when}")
    expect(mk4s.locator(".now-file")).to_contain_text("stl_binary_20mm_xyz_cube.stl · Priya Printing")
    expect(mk4s.locator(".lane-temps")).to_contain_text("Nozzle 215/215 °C · Bed 60/60 °C")
    expect(page.locator("#lane-2 .lane-message")).to_have_text(
        "The printer didn't answer at http://10.0.0.8."
    )
    assert mk4s.get_by_role("link", name=made["printing"].display_name).get_attribute("href") == (
        f"/jobs/{made['printing'].id}"
    )

    boxes = [lane.bounding_box() for lane in lanes.all()]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    if viewport is PHONE:
        assert len({round(box["x"]) for box in boxes}) == 1  # stacked, one above the other
        assert all(a["y"] + a["height"] <= b["y"] for a, b in itertools.pairwise(boxes))
    else:
        assert len({round(box["y"]) for box in boxes[:2]}) == 1  # side by side
    tab.screenshot(f"printer-board-{viewport['width']}")

    # The keyboard: Ann's "Move down", pressed with Enter, keeps the focus on Ann's buttons.
    assert queue_names(tab) == ["Ann First · True Red", "Ben Second · True Red", "Cal Third · True Red"]
    ann = mk4s.locator(".queued").first
    ann.get_by_role("button", name=re.compile("^Move down")).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#board-status")).to_contain_text("to place 2 of 3 in Prusa MK4S's queue")
    assert queue_names(tab)[:2] == ["Ben Second · True Red", "Ann First · True Red"]
    assert saved_order(live) == ["Ben Second", "Ann First", "Cal Third"]
    focused = page.evaluate("document.activeElement.closest('.queued').id")
    assert focused == f"q-{made['queued'][0].id}"
    page.keyboard.press("Shift+Tab")  # back to Ann's "Move up", and up she goes again
    assert page.evaluate("document.activeElement.textContent").startswith("Move up")
    page.keyboard.press("Space")
    expect(page.locator("#board-status")).to_contain_text("to place 1 of 3")
    assert saved_order(live) == ["Ann First", "Ben Second", "Cal Third"]
    audited(tab)

    # A drag: Cal's handle taken above Ann.
    grip = mk4s.locator(".queued").nth(2).locator(".grip")
    expect(grip).to_be_visible()
    start, top = grip.bounding_box(), mk4s.locator(".queued").first.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2, top["y"] + 4, steps=12)
    page.mouse.up()
    # Cal's own message (the status still holds Ann's "to place 1 of 3" until the drag's answer comes).
    cal = made["queued"][2].display_name
    expect(page.locator("#board-status")).to_have_text(f"Moved {cal} to place 1 of 3 in Prusa MK4S's queue.")
    assert saved_order(live) == ["Cal Third", "Ann First", "Ben Second"]
    assert queue_names(tab) == ["Cal Third · True Red", "Ann First · True Red", "Ben Second · True Red"]
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    audited(tab)


def test_without_script_a_move_is_a_form_and_a_stale_one_is_explained(held: Live, open_tab: Any) -> None:
    live = held
    made = fleet(live)
    tab = open_tab("no-script", PHONE, java_script_enabled=False)
    page = tab.page
    sign_in(tab, live)
    tab.go(f"{live.url}/printers")
    expect(page.locator(".grip").first).to_be_hidden()  # no handle to drag without script
    cal = page.locator(f"#q-{made['queued'][2].id}")
    with page.expect_navigation():
        cal.get_by_role("button", name=re.compile("^Move up")).click()
    tab.audit()
    expect(page.locator(".flashes")).to_contain_text("to place 2 of 3 in Prusa MK4S's queue")
    assert saved_order(live) == ["Ann First", "Cal Third", "Ben Second"]

    # Another computer moves Ben first; this page still shows the old queue.
    ids = [job.id for job in made["queued"]]
    queue.move(live.session, MK4S, ids[1], 1, seen=[ids[0], ids[2], ids[1]])
    with page.expect_navigation() as navigation:
        page.locator(f"#q-{ids[0]}").get_by_role("button", name=re.compile("^Move down")).click()
    tab.audit()
    assert navigation.value.status == 409
    expect(page.locator("#board-problem")).to_contain_text("queue changed while you were looking")
    assert saved_order(live) == ["Ben Second", "Ann First", "Cal Third"]
    assert queue_names(tab) == ["Ben Second · True Red", "Ann First · True Red", "Cal Third · True Red"]


def test_the_board_refreshes_itself_when_a_printer_reports_progress(held: Live, open_tab: Any) -> None:
    live = held
    fleet(live)
    tab = open_tab("staff", DESKTOP)
    sign_in(tab, live)
    tab.go(f"{live.url}/printers")
    page = tab.page
    expect(page.locator("#lane-1 .now-progress")).to_have_text("61% done · about 40 minutes left")
    from sqlalchemy import select

    from printlab.models import LabPrinter

    mk4s = live.fresh().scalars(select(LabPrinter).where(LabPrinter.name == MK4S)).one()
    make_poll(live.session, mk4s, "printing", progress=75.0, seconds_left=1500)
    expect(page.locator("#lane-1 .now-progress")).to_have_text(
        "75% done · about 25 minutes left", timeout=25_000
    )
    expect(page.locator("#refresh-state")).to_contain_text("Updated")


def test_the_dashboard_card_shows_progress_and_a_stopped_print_and_the_student_sees_time_left(
    held: Live, open_tab: Any
) -> None:
    live = held
    made = fleet(live)
    session = live.session
    from sqlalchemy import select

    from printlab.models import LabPrinter

    xl = session.scalars(select(LabPrinter).where(LabPrinter.name == XL)).one()
    stopped = a_job(live, Status.PRINTING, XL, name="Sam Stopped")
    make_run(session, stopped, xl, PrintRunState.STOPPED, message="Print cancelled on the printer")

    tab = open_tab("staff", PHONE)
    tab.page.context.add_init_script(path=str(AXE))
    sign_in(tab, live)
    tab.go(f"{live.url}/dashboard?status=PRINTING")
    page = tab.page
    card = page.locator(".card", has_text="Priya Printing")
    expect(card.get_by_role("progressbar", name="Printed so far on Prusa MK4S")).to_have_attribute(
        "value", "61.0"
    )
    expect(card).to_contain_text("61% done · about 40 minutes left")
    flagged = page.locator(".card", has_text="Sam Stopped")
    expect(flagged.locator(".flag-stopped")).to_have_text("Printer stopped: Print cancelled on the printer")
    expect(flagged).to_contain_text("confirm “Print failed”")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    audited(tab)
    tab.screenshot("dashboard-printing-375")

    student = open_tab("student", PHONE)
    student.page.context.add_init_script(path=str(AXE))
    student.go(live.status_url(made["printing"].id))
    expect(student.page.locator("h1")).to_contain_text("Printing — about 40 minutes left")
    audited(student)
    student.go(live.status_url(stopped.id))
    expect(student.page.locator("h1")).to_have_text(re.compile(r": Printing$"))
