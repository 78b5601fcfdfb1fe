"""The lab's printer records and the admin Printers page, on both databases: keys sealed and never shown
or logged, the form checked on the server, every change in the admin log, and a real connection test."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from printlab import config as config_module
from printlab.domain.history import admin_log_sentence
from printlab.models import AdminLogEntry, LabPrinter
from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.lab import workstations
from printlab.services.printers import api_keys, fleet
from printlab.services.printers.api_keys import KeyUnreadable
from printlab.services.printers.connector import PrinterKeyRefused

from .factories import STAFF, actor, make_staff

SECRET = "test-secret-key-that-is-long-enough-0123456789"  # the lab_env fixture's PRINTLAB_SECRET_KEY
ADMIN_PC, STAFF_PC, PASSWORD = "ADMIN-PC", "LAB-PC-7", "a-long-password-1"
ACTING = {"acting_as": STAFF}
KEY = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_-KEY"


def octoprint_form(url: str = "http://10.0.0.7", key: str = KEY, name: str = "Prusa MK4S") -> dict[str, str]:
    return {"name": name, "connection": "OCTOPRINT", "address": url, "api_key": key}


def log_entries(session) -> list[AdminLogEntry]:  # type: ignore[no-untyped-def]
    session.rollback()
    session.expire_all()
    return list(session.scalars(select(AdminLogEntry).where(AdminLogEntry.action.like("Printer%"))))


@pytest.fixture
def admin(session):  # type: ignore[no-untyped-def]
    """An active staff member at an admin workstation."""
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    return actor(STAFF, ADMIN_PC)


# -- the records -----------------------------------------------------------------------------------


def test_a_printer_is_added_with_its_key_sealed_and_logged_without_it(session, admin, caplog):
    caplog.set_level(logging.DEBUG)
    added = fleet.add_printer(session, octoprint_form("HTTP://OctoPi.Local:5000/"), secret=SECRET, by=admin)
    session.expire_all()
    row = session.get(LabPrinter, added.id)
    assert (row.name, row.connection, row.address, row.state) == (
        "Prusa MK4S", "OCTOPRINT", "http://octopi.local:5000", "IN_SERVICE"
    )  # fmt: skip
    assert KEY not in row.api_key_sealed and api_keys.unseal(SECRET, row.api_key_sealed) == KEY
    assert (row.added_by, row.changed_by) == (STAFF, STAFF)
    [entry] = log_entries(session)
    assert (entry.action, entry.triggered_by, entry.workstation_id) == ("PrinterAdded", STAFF, ADMIN_PC)
    assert KEY not in str(entry.details) and entry.details["key_saved"] is True
    assert admin_log_sentence(entry.action, entry.details, STAFF) == (
        "Printer Prusa MK4S added by Alex Rivera, connected through OctoPrint at http://octopi.local:5000"
    )
    assert KEY not in caplog.text


def test_the_same_key_seals_differently_each_time_and_only_this_labs_secret_opens_it():
    first, second = api_keys.seal(SECRET, KEY), api_keys.seal(SECRET, KEY)
    assert first != second and first.startswith("v1:")
    assert api_keys.unseal(SECRET, first) == api_keys.unseal(SECRET, second) == KEY
    for wrong in ("another-secret-key-of-the-same-sort-0123456", SECRET + "x"):
        with pytest.raises(KeyUnreadable, match="Type the printer's API key again"):
            api_keys.unseal(wrong, first)
    damaged = first[:-4] + ("AAAA" if not first.endswith("AAAA") else "BBBB")
    for bad in (damaged, "v1:not base64!", "plain-text-key", ""):
        with pytest.raises(KeyUnreadable):
            api_keys.unseal(SECRET, bad)


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"name": "", "connection": "NONE"}, "name", "Choose which of the lab's printers this is."),
        ({"name": "Prusa MK9", "connection": "NONE"}, "name", "Prusa MK9 isn't a printer in the lab catalog"),
        ({"name": "Prusa XL", "connection": "TELNET"}, "connection", "Choose how PrintLab connects"),
        (octoprint_form(url="ftp://10.0.0.7"), "address", "must start with http:// or https://"),
        (octoprint_form(url="http://me:pw@10.0.0.7"), "address", "Leave the user name and password out"),
        (octoprint_form(url=""), "address", "Type the printer's address"),
        (octoprint_form(key=""), "api_key", "Type the printer's API key: OctoPrint needs one"),
        (octoprint_form(key="has spaces in it"), "api_key", "without spaces"),
        ({"name": "Prusa XL\u202e", "connection": "NONE"}, "name", "changes the direction of text"),
    ],
)
def test_the_form_is_checked_on_the_server_field_by_field(session, admin, form, field, words):
    with pytest.raises(ValidationError) as refused:
        fleet.add_printer(session, form, secret=SECRET, by=admin)
    assert words in refused.value.errors[field]
    assert session.scalars(select(LabPrinter)).all() == [] and log_entries(session) == []


def test_moonraker_may_go_without_a_key_and_an_unconnected_printer_keeps_no_address(session, admin):
    moonraker = fleet.add_printer(
        session,
        {"name": "Prusa XL", "connection": "MOONRAKER", "address": "http://voron.local"},
        secret=SECRET,
        by=admin,
    )
    assert moonraker.api_key_sealed is None
    plain = fleet.add_printer(
        session, {"name": "Formlabs Form 3", "connection": "NONE", "address": "http://ignored", "api_key": KEY},
        secret=SECRET, by=admin,
    )  # fmt: skip
    assert (plain.address, plain.api_key_sealed) == (None, None)


def test_one_record_per_catalog_printer_until_it_is_retired(session, admin):
    first = fleet.add_printer(session, octoprint_form(), secret=SECRET, by=admin)
    with pytest.raises(ValidationError, match=r"Prusa MK4S already has a record; edit that one instead\."):
        fleet.add_printer(session, octoprint_form(), secret=SECRET, by=admin)
    fleet.set_state(session, first.id, "RETIRED", by=admin)
    second = fleet.add_printer(session, octoprint_form(url="http://10.0.0.8"), secret=SECRET, by=admin)
    assert second.id != first.id and [p.id for p in fleet.list_printers(session)] == [second.id, first.id]


def test_editing_keeps_replaces_or_removes_the_saved_key_and_logs_what_changed(session, admin):
    printer = fleet.add_printer(session, octoprint_form(), secret=SECRET, by=admin)
    sealed = printer.api_key_sealed
    fleet.edit_printer(
        session, printer.id, octoprint_form(url="http://10.0.0.9", key=""), secret=SECRET, by=admin
    )
    assert (printer.address, printer.api_key_sealed) == ("http://10.0.0.9", sealed)  # an empty field keeps it
    fleet.edit_printer(
        session,
        printer.id,
        octoprint_form(url="http://10.0.0.9", key="New-Key-123456"),
        secret=SECRET,
        by=admin,
    )
    assert api_keys.unseal(SECRET, printer.api_key_sealed) == "New-Key-123456"
    with pytest.raises(ValidationError, match="OctoPrint needs one"):  # removing the only key OctoPrint has
        fleet.edit_printer(
            session, printer.id, octoprint_form(url="http://10.0.0.9", key="") | {"forget_key": "on"},
            secret=SECRET, by=admin,
        )  # fmt: skip
    fleet.edit_printer(
        session, printer.id, {"name": "Prusa MK4S", "connection": "NONE"}, secret=SECRET, by=admin
    )
    assert (printer.connection, printer.address, printer.api_key_sealed) == ("NONE", None, None)
    fleet.edit_printer(
        session, printer.id, {"name": "Prusa MK4S", "connection": "NONE"}, secret=SECRET, by=admin
    )
    changes = [e.details["fields"] for e in log_entries(session) if e.action == "PrinterChanged"]
    assert changes == [["address"], ["api_key"], ["connection", "address", "api_key_removed"]]
    assert all("New-Key" not in str(e.details) and KEY not in str(e.details) for e in log_entries(session))


def test_a_printer_is_paused_put_back_and_retired_for_good(session, admin):
    printer = fleet.add_printer(session, octoprint_form(), secret=SECRET, by=admin)
    fleet.set_state(session, printer.id, "PAUSED", by=admin)
    fleet.set_state(session, printer.id, "IN_SERVICE", by=admin)
    fleet.set_state(session, printer.id, "RETIRED", by=admin)
    assert (printer.state, printer.api_key_sealed) == ("RETIRED", None)
    with pytest.raises(ValidationError, match=r"Prusa MK4S is retired; it can.t be changed\."):
        fleet.set_state(session, printer.id, "IN_SERVICE", by=admin)
    with pytest.raises(ValidationError, match="is retired; add the printer again instead"):
        fleet.edit_printer(session, printer.id, octoprint_form(), secret=SECRET, by=admin)
    with pytest.raises(ValidationError, match=r"Choose pause, back in service or retire\."):
        fleet.set_state(session, printer.id, "BROKEN", by=admin)
    assert [e.action for e in log_entries(session)] == [
        "PrinterAdded", "PrinterPaused", "PrinterBackInService", "PrinterRetired"
    ]  # fmt: skip


def test_only_an_admin_workstation_changes_printers(session, admin):
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    with pytest.raises(NotAllowed):
        fleet.add_printer(session, octoprint_form(), secret=SECRET, by=actor(STAFF, STAFF_PC))
    with pytest.raises(ValidationError, match="is not on the active staff list"):
        fleet.add_printer(session, octoprint_form(), secret=SECRET, by=actor("Nobody Here", ADMIN_PC))


def test_the_connection_test_reaches_a_real_octoprint_and_never_logs_the_key(
    session, admin, octoprint, caplog
):
    caplog.set_level(logging.DEBUG)
    printer = fleet.add_printer(
        session, octoprint_form(octoprint.url, octoprint.api_key), secret=SECRET, by=admin
    )
    status = fleet.check_connection(session, printer.id, secret=SECRET)
    assert status.software == "OctoPrint 1.11.8" and status.activity.value == "idle"
    wrong = fleet.add_printer(
        session, octoprint_form(octoprint.url, "wrong-key-123456", name="Prusa XL"), secret=SECRET, by=admin
    )
    with pytest.raises(PrinterKeyRefused, match="The printer refused the API key"):
        fleet.check_connection(session, wrong.id, secret=SECRET)
    with pytest.raises(KeyUnreadable):
        fleet.check_connection(session, printer.id, secret="the-lab-secret-was-changed-since-0123456")
    assert octoprint.api_key not in caplog.text and "wrong-key-123456" not in caplog.text


# -- the page ------------------------------------------------------------------------------------


@pytest.fixture
def web(lab_env, session, admin):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    yield app
    app.extensions["printlab"].engine.dispose()


def signed_in(app, workstation=ADMIN_PC):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert client.post("/login", data={"workstation": workstation, "password": PASSWORD}).status_code == 303
    return client


def page_text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def test_the_printers_page_is_in_the_admin_navigation_for_admin_workstations_only(web):
    admin = signed_in(web)
    page = page_text(admin.get("/admin/printers"))
    assert 'href="/admin/printers" aria-current="page"' in page
    assert "No printers are set up yet." in page and "<option>Prusa MK4S</option>" in page
    assert 'href="/admin/printers"' in page_text(admin.get("/admin/staff"))
    staff_pc = signed_in(web, STAFF_PC)
    assert staff_pc.get("/admin/printers").status_code == 403
    assert staff_pc.post("/admin/printers", data={**ACTING, **octoprint_form()}).status_code == 403
    assert web.test_client().get("/admin/printers").status_code == 302


def test_a_refused_form_says_why_and_never_echoes_the_key(web, session):
    admin = signed_in(web)
    refused = admin.post("/admin/printers", data={**ACTING, **octoprint_form(url="ftp://10.0.0.7")})
    page = page_text(refused)
    assert refused.status_code == 422
    assert "The address must start with http:// or https://" in page and 'value="ftp://10.0.0.7"' in page
    assert KEY not in page
    assert session.scalars(select(LabPrinter)).all() == []


def test_adding_testing_pausing_and_retiring_through_the_page(web, session, octoprint):
    admin = signed_in(web)
    added = admin.post("/admin/printers", data={**ACTING, **octoprint_form(octoprint.url, octoprint.api_key)})
    assert added.status_code == 303
    printer = session.scalars(select(LabPrinter)).one()
    listing = page_text(admin.get("/admin/printers"))
    assert "Added Prusa MK4S. Test its connection to see what it answers." in listing
    assert "API key saved" in listing and octoprint.api_key not in listing
    edit = page_text(admin.get(f"/admin/printers/{printer.id}"))
    assert "A key is saved — type a new one to replace it." in edit and octoprint.api_key not in edit
    assert 'name="api_key" type="password"' in edit and 'value=""' in edit

    tested = page_text(admin.post(f"/admin/printers/{printer.id}/test"))
    assert "Prusa MK4S: connection works" in tested
    assert "Connected — OctoPrint 1.11.8, printer operational, idle" in tested

    replaced = admin.post(
        f"/admin/printers/{printer.id}", data={**ACTING, **octoprint_form(octoprint.url, "wrong-key-123456")}
    )
    assert replaced.status_code == 303
    failed = page_text(admin.post(f"/admin/printers/{printer.id}/test"))
    assert "Prusa MK4S: connection failed" in failed and "The printer refused the API key." in failed

    assert (
        admin.post(f"/admin/printers/{printer.id}/state", data={**ACTING, "state": "PAUSED"}).status_code
        == 303
    )
    assert "Prusa MK4S is paused" in page_text(admin.get("/admin/printers"))
    unconfirmed = admin.post(f"/admin/printers/{printer.id}/state", data={**ACTING, "state": "RETIRED"})
    assert unconfirmed.status_code == 422 and "Tick the box to confirm" in page_text(unconfirmed)
    retired = admin.post(
        f"/admin/printers/{printer.id}/state", data={**ACTING, "state": "RETIRED", "confirm": "on"}
    )
    assert retired.status_code == 303
    listing = page_text(admin.get("/admin/printers"))
    assert "Prusa MK4S is retired; its saved API key is forgotten." in listing
    assert re.search(r'id="retired-printers">\s*<li>Prusa MK4S — retired', listing)
    assert [e.action for e in log_entries(session)] == [
        "PrinterAdded", "PrinterChanged", "PrinterPaused", "PrinterRetired"
    ]  # fmt: skip
    log = page_text(admin.get("/admin/log"))
    assert "Printer Prusa MK4S paused by Alex Rivera" in log and octoprint.api_key not in log


def test_unknown_printers_are_not_found(web):
    admin = signed_in(web)
    for url in (
        "/admin/printers/999",
        "/admin/printers/abc",
        "/admin/printers/99999999999999999999",
        "/admin/printers/%C2%B2",
    ):
        assert admin.get(url).status_code == 404
    assert admin.post("/admin/printers/999/test").status_code == 404
    assert admin.post("/admin/printers/999/state", data={**ACTING, "state": "PAUSED"}).status_code == 404


def test_printer_forms_need_the_csrf_token(lab_env, session, admin):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True}, config=config_module.load(lab_env))
    client = app.test_client()
    login = page_text(client.get("/login"))
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    client.post("/login", data={"workstation": ADMIN_PC, "password": PASSWORD, "csrf_token": token})
    assert client.post("/admin/printers", data={**ACTING, **octoprint_form()}).status_code == 400
    assert session.scalars(select(LabPrinter)).all() == []
    app.extensions["printlab"].engine.dispose()
