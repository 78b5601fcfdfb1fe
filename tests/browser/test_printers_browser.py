"""The admin Printers page in Chromium, at desktop width and 375 px: add an OctoPrint printer, test its
connection against a real OctoPrint, see that the saved key is never shown, pause it and retire it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from printlab.models import AdminLogEntry, LabPrinter
from printlab.services.lab import workstations
from printlab.services.printers import api_keys

from ..servers import OctoPrintServer
from .conftest import PASSWORD, PHONE, Live, Tab, act_as, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("octoprint")]

ADMIN_PC = "ADMIN-PC"
DESKTOP = {"width": 1366, "height": 768}


def submit(tab: Tab, button: Any) -> Any:
    """Click a button that sends a form, wait for the page it leads to, and audit that page."""
    with tab.page.expect_navigation() as navigation:
        button.click()
    tab.audit()
    return navigation.value


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_an_admin_adds_tests_pauses_and_retires_an_octoprint_printer(
    live: Live, open_tab: Any, octoprint: OctoPrintServer, viewport: dict[str, int]
) -> None:
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    tab = open_tab("admin", viewport)
    page = tab.page
    sign_in(tab, live, ADMIN_PC)
    tab.go(f"{live.url}/admin")
    submit(tab, page.get_by_role("navigation", name="Admin").get_by_role("link", name="Printers"))
    expect(page.get_by_role("navigation", name="Staff").get_by_role("link", name="Admin")).to_have_attribute(
        "aria-current", "page"
    )
    act_as(tab)
    expect(page.locator("#no-printers")).to_have_text(re.compile("No printers are set up yet"))
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    # A mistake first: the address of the printer's page without http://.
    form = page.locator("#add-printer-form")
    form.get_by_label("Printer").select_option("Prusa MK4S")
    form.get_by_label("Connection").select_option(label="OctoPrint")
    form.get_by_label("Address").fill(octoprint.url.removeprefix("http://"))
    form.get_by_label("API key").fill(octoprint.api_key)
    refused = submit(tab, form.get_by_role("button", name="Add printer"))
    assert refused.status == 422
    expect(page.locator("#error-summary")).to_contain_text("The address must start with http:// or https://")
    expect(page.get_by_label("API key")).to_have_value("")  # the key typed is never sent back
    assert octoprint.api_key not in page.content()

    form = page.locator("#add-printer-form")
    form.get_by_label("Address").fill(octoprint.url)
    form.get_by_label("API key").fill(octoprint.api_key)
    submit(tab, form.get_by_role("button", name="Add printer"))
    expect(page.locator(".flashes")).to_contain_text(
        "Added Prusa MK4S. Test its connection to see what it answers."
    )
    row = page.locator("#printers tbody tr", has_text="Prusa MK4S")
    expect(row).to_contain_text("OctoPrint")
    expect(row).to_contain_text("API key saved")
    expect(row).to_contain_text("In service")
    assert octoprint.api_key not in page.content()
    printer = live.fresh().scalars(select(LabPrinter)).one()
    assert api_keys.unseal(live.app.extensions["printlab"].config.secret_key, printer.api_key_sealed) == (
        octoprint.api_key
    )

    submit(tab, page.get_by_role("button", name="Test connection of Prusa MK4S"))
    expect(page.locator("#connection-test")).to_contain_text("Prusa MK4S: connection works")
    expect(page.locator("#connection-test")).to_contain_text(
        "Connected — OctoPrint 1.11.8, printer operational, idle"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

    submit(tab, page.get_by_role("link", name="Edit Prusa MK4S"))
    expect(page.locator("#api_key-hint")).to_contain_text("A key is saved — type a new one to replace it.")
    expect(page.get_by_label("API key")).to_have_value("")
    expect(page.get_by_label("Address")).to_have_value(octoprint.url)
    assert octoprint.api_key not in page.content()
    submit(tab, page.get_by_role("link", name="All printers"))

    submit(tab, page.get_by_role("button", name="Pause Prusa MK4S"))
    expect(page.locator(".flashes")).to_contain_text("Prusa MK4S is paused")
    expect(page.locator("#printers tbody tr", has_text="Prusa MK4S")).to_contain_text("Paused")
    submit(tab, page.get_by_role("button", name="Put back in service Prusa MK4S"))
    expect(page.locator("#printers tbody tr", has_text="Prusa MK4S")).to_contain_text("In service")

    submit(tab, page.get_by_role("link", name="Edit Prusa MK4S"))
    unconfirmed = submit(tab, page.get_by_role("button", name="Retire printer"))
    assert unconfirmed.status == 422
    expect(page.locator("#confirm-error")).to_contain_text("Tick the box to confirm")
    page.get_by_label("Yes, retire Prusa MK4S").check()
    submit(tab, page.get_by_role("button", name="Retire printer"))
    expect(page.locator(".flashes")).to_contain_text("Prusa MK4S is retired; its saved API key is forgotten.")
    expect(page.locator("#retired-printers")).to_contain_text("Prusa MK4S — retired")
    expect(page.locator("#add-printer-form").get_by_label("Printer")).to_contain_text("Prusa MK4S")

    actions = [e.action for e in live.fresh().scalars(select(AdminLogEntry).order_by(AdminLogEntry.id))]
    assert [a for a in actions if a.startswith("Printer")] == [
        "PrinterAdded", "PrinterPaused", "PrinterBackInService", "PrinterRetired"
    ]  # fmt: skip
    tab.go(f"{live.url}/admin/log")
    expect(page.locator("main")).to_contain_text("Printer Prusa MK4S retired by Alex Rivera")
    assert octoprint.api_key not in page.content()
