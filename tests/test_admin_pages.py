"""The admin area through its pages: who may enter, and what each page changes (on both databases)."""

from __future__ import annotations

import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from sqlalchemy import select, text

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import AdminLogEntry, Event, Job, LabSetting, Staff
from printlab.services.jobs import locks
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor

from .factories import STAFF, make_job, make_staff

ADMIN_PC, STAFF_PC, PASSWORD = "ADMIN-PC", "LAB-PC-7", "a-long-password-1"
ACTING = {"acting_as": STAFF}
ADMIN_PAGES = [
    "/admin",
    "/admin/staff",
    "/admin/workstations",
    "/admin/catalog",
    "/admin/account-codes",
    "/admin/printers",
    "/admin/health",
    "/admin/log",
]


@pytest.fixture
def web(lab_env, session):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    yield app
    app.extensions["printlab"].engine.dispose()


def signed_in(app, workstation=ADMIN_PC):
    client = app.test_client()
    response = client.post("/login", data={"workstation": workstation, "password": PASSWORD})
    assert response.status_code == 303
    return client


def fresh(session):
    """See what the web requests committed: end our snapshot and forget loaded rows."""
    session.rollback()
    session.expire_all()


def seen(client, url):
    """The job's status and version as the page at `url` shows them, which its form sends back."""
    page = client.get(url).data.decode()
    return dict(re.findall(r'<input type="hidden" name="(expected_\w+)" value="([^"]*)"', page))


def log_actions(session):
    fresh(session)
    return [e.action for e in session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id))]


def test_only_admin_workstations_enter(web, session, storage):
    job = make_job(session, storage)
    pages = [*ADMIN_PAGES, f"/admin/jobs/{job.id}/override", f"/admin/jobs/{job.id}/delete-files"]
    anonymous = web.test_client()
    for page in pages:
        assert anonymous.get(page).status_code == 302
    staff_pc = signed_in(web, STAFF_PC)
    for page in pages:
        response = staff_pc.get(page)
        assert response.status_code == 403 and b"admin workstations" in response.data
    assert staff_pc.post("/admin/staff", data={**ACTING, "name": "Sneaky Add"}).status_code == 403
    assert session.get(Staff, "Sneaky Add") is None
    admin = signed_in(web)
    for page in pages:
        assert admin.get(page).status_code == 200, page


def test_admin_forms_need_the_csrf_token(lab_env, session):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True}, config=config_module.load(lab_env))
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    client = app.test_client()
    login = client.get("/login").data.decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    client.post("/login", data={"workstation": ADMIN_PC, "password": PASSWORD, "csrf_token": token})
    response = client.post("/admin/staff", data={**ACTING, "name": "No Token"})
    assert response.status_code == 400 and session.get(Staff, "No Token") is None
    app.extensions["printlab"].engine.dispose()


def test_staff_are_added_deactivated_and_reactivated_never_deleted(web, session):
    admin = signed_in(web)
    assert admin.post("/admin/staff", data={**ACTING, "name": "  Casey   Newhire "}).status_code == 303
    assert admin.post("/admin/staff", data={**ACTING, "name": "Casey Newhire"}).status_code == 422
    assert admin.post("/admin/staff", data={"name": "Nobody Acting"}).status_code == 422
    admin.post("/admin/staff/Casey Newhire/active", data={**ACTING, "active": "0"})
    fresh(session)
    casey = session.get(Staff, "Casey Newhire")
    assert not casey.is_active and casey.deactivated_at is not None
    admin.post("/admin/staff/Casey Newhire/active", data={**ACTING, "active": "1"})
    fresh(session)
    assert session.get(Staff, "Casey Newhire").is_active
    assert log_actions(session)[-3:] == ["StaffAdded", "StaffDeactivated", "StaffReactivated"]
    entry = session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id.desc())).first()
    assert (entry.triggered_by, entry.workstation_id) == (STAFF, ADMIN_PC)


def test_workstation_passwords_are_shown_once_and_work(web, session):
    admin = signed_in(web)
    page = admin.post(
        "/admin/workstations", data={**ACTING, "id": "LAB-PC-9", "is_admin": "on"}
    ).data.decode()
    password = re.search(r"<code>([^<]+)</code>", page).group(1)
    assert workstations.verify_sign_in(session, "LAB-PC-9", password) is not None
    assert password not in admin.get("/admin/workstations").data.decode()
    page = admin.post("/admin/workstations/LAB-PC-9/reset", data=ACTING).data.decode()
    fresh = re.search(r"<code>([^<]+)</code>", page).group(1)
    assert fresh != password
    assert workstations.verify_sign_in(session, "LAB-PC-9", password) is None
    assert workstations.verify_sign_in(session, "LAB-PC-9", fresh) is not None
    admin.post("/admin/workstations/LAB-PC-9/admin", data={**ACTING, "is_admin": "0"})
    admin.post(f"/admin/workstations/{ADMIN_PC}/admin", data={**ACTING, "is_admin": "0"})  # not its own
    assert not workstations.is_admin_workstation(session, "LAB-PC-9")
    assert workstations.is_admin_workstation(session, ADMIN_PC)
    assert "WorkstationAdminChanged" in log_actions(session)


def test_catalog_changes_take_effect_at_once_and_keep_old_quotes(web, session, storage):
    quoted = make_job(session, storage, Status.PENDING)  # quoted at $0.10/g → $4.20
    admin = signed_in(web)
    limits = {"minimum_charge": "5", "upload_limit_mb": "40", "confirm_link_hours": "48",
              "archive_after_days": "60", "prune_after_days": "400"}  # fmt: skip
    assert admin.post("/admin/catalog/limits", data={**ACTING, **limits}).status_code == 303
    assert admin.get("/api/v1/price?weight_g=10&method=Filament").get_json()["cost_usd"] == "5.00"
    assert "up to 40 MB" in web.test_client().get("/submit").data.decode()
    fresh(session)
    assert session.get(Job, quoted.id).cost_usd == Decimal("4.20")

    bad = admin.post("/admin/catalog/limits", data={**ACTING, **limits, "upload_limit_mb": "lots"})
    assert bad.status_code == 422 and b"Enter a number" in bad.data
    assert 'value="lots"' in bad.data.decode()  # the admin's input is kept to correct

    printers = {"printer-name": ["Prusa MK4S", "", "New Printer"], "printer-method": ["Filament", "Filament", "Resin"],
                "printer-x": ["250", "", "100"], "printer-y": ["210", "", "100"], "printer-z": ["220", "", "100"]}  # fmt: skip
    assert admin.post("/admin/catalog/printers", data={**ACTING, **printers}).status_code == 303
    form = web.test_client().get("/submit").data.decode()
    assert "New Printer" in form and "Prusa XL" not in form
    only_filament = {**printers, "printer-name": ["Prusa MK4S"], "printer-method": ["Filament"],
                     "printer-x": ["1"], "printer-y": ["1"], "printer-z": ["1"]}  # fmt: skip
    refused = admin.post("/admin/catalog/printers", data={**ACTING, **only_filament})
    assert refused.status_code == 422 and b"at least one Resin printer" in refused.data

    lab = {"name": "Fab Lab", "pickup_location": "Room 101", "opening_hours": "9–5", "contact_email": "fab@example.edu",
           "time_zone": "Mars/Olympus", "hold_days": "30", "pickup_reminder_days": "7",
           "final_reminder_days_before_hold_ends": "3"}  # fmt: skip
    assert admin.post("/admin/catalog/lab", data={**ACTING, **lab}).status_code == 422
    assert (
        admin.post("/admin/catalog/lab", data={**ACTING, **lab, "time_zone": "Europe/Berlin"}).status_code
        == 303
    )
    fresh(session)
    assert session.get(LabSetting, "lab").value["time_zone"] == "Europe/Berlin"
    assert log_actions(session).count("CatalogChanged") == 3


class _FormReader(HTMLParser):
    """The fields one page's form would send as shown (inputs, textareas, selected options)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and name:
            self.fields.setdefault(name, []).append(a.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields.setdefault(name, []).append("")
        elif tag == "select":
            self._select = name
            if name:
                self.fields.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            if self._select and not self.fields.get(self._select):
                self.fields.pop(self._select, None)
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][-1] += (
                data.lstrip("\n") if not self.fields[self._textarea][-1] else data
            )


def catalog_form(client) -> dict[str, list[str]]:
    reader = _FormReader()
    reader.feed(client.get("/admin/catalog").data.decode())
    return reader.fields


def test_the_catalog_editor_saves_every_section_at_once_against_the_catalog_it_showed(web, session):
    admin = signed_in(web)
    page = admin.get("/admin/catalog").data.decode().split("<main", 1)[1]
    assert page.count('type="submit"') == 1 and "Save the catalog" in page
    # The printer rows' method selects send their first option when none is marked.
    shown = catalog_form(admin)
    shown["printer-method"] = ["Filament", "Filament", "Filament", "Resin", "Filament"]
    changed = {**shown, **ACTING, "opening_hours": ["Mon–Thu 10–4"], "minimum_charge": ["4.50"],
               "disciplines": ["Art\nDance"]}  # fmt: skip
    assert admin.post("/admin/catalog", data=changed).status_code == 303
    fresh(session)
    assert session.get(LabSetting, "lab").value["opening_hours"] == "Mon–Thu 10–4"
    assert session.get(LabSetting, "minimum_charge").value == "4.50"
    assert session.get(LabSetting, "disciplines").value == ["Art", "Dance"]
    entry = session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id.desc())).first()
    assert entry.action == "CatalogChanged" and sorted(entry.details["fields"]) == [
        "disciplines", "lab", "minimum_charge",
    ]  # fmt: skip

    # A mistake anywhere saves nothing, and every section's mistakes are named.
    shown = {**catalog_form(admin), "printer-method": changed["printer-method"]}
    bad = admin.post("/admin/catalog", data={**shown, **ACTING, "opening_hours": ["Always"],
                                             "minimum_charge": ["lots"], "contact_email": ["nobody"]})  # fmt: skip
    assert bad.status_code == 422
    assert b"Enter a number" in bad.data and b"Enter an email address" in bad.data
    assert 'value="Always"' in bad.data.decode()
    fresh(session)
    assert session.get(LabSetting, "lab").value["opening_hours"] == "Mon–Thu 10–4"

    # Sent from a page shown before someone else saved: refused, nothing written.
    stale = {**shown, **ACTING, "opening_hours": ["Weekends"]}
    assert (
        admin.post("/admin/catalog", data={**stale, "disciplines": ["Art\nDance\nMusic"]}).status_code == 303
    )
    refused = admin.post("/admin/catalog", data=stale)
    assert refused.status_code == 409 and b"changed at another computer" in refused.data
    fresh(session)
    assert session.get(LabSetting, "disciplines").value == ["Art", "Dance", "Music"]


def test_banner_shows_on_every_page(web):
    admin = signed_in(web)
    admin.post("/admin/banner", data={**ACTING, "banner": "Closed <b>Friday</b>"})
    for client, page in ((admin, "/dashboard"), (web.test_client(), "/submit"), (web.test_client(), "/")):
        body = client.get(page).data.decode()
        assert "Closed &lt;b&gt;Friday&lt;/b&gt;" in body
    admin.post("/admin/banner", data={**ACTING, "banner": ""})
    assert "site-banner" not in web.test_client().get("/submit").data.decode()


def test_overrides_need_a_reason_and_are_evented(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage, Status.COMPLETED)
    url = f"/admin/jobs/{job.id}/override"
    reprint = {**ACTING, "kind": "change_status", "target": "PRINTING"}
    assert admin.post(url, data={**seen(admin, url), **reprint, "reason": ""}).status_code == 422
    assert admin.post(url, data={**seen(admin, url), **reprint, "reason": "Reprint"}).status_code == 303
    fresh(session)
    moved = session.get(Job, job.id)
    assert moved.status == "PRINTING" and storage.resolve(moved.file_path).parent.name == "Printing"
    failed = {**ACTING, "kind": "print_failed", "reason": "Warped"}
    assert admin.post(url, data={**seen(admin, url), **failed}).status_code == 303

    pending = make_job(session, storage, Status.PENDING, student_email="p@example.edu")
    locks.take(session, pending.id, actor=Actor(STAFF, "LAB-PC-2"))
    purl = f"/admin/jobs/{pending.id}/override"
    unlock = {**ACTING, "kind": "break_lock", "reason": "Left for the day"}
    assert admin.post(purl, data={**seen(admin, purl), **unlock}).status_code == 303
    confirm = {**ACTING, "kind": "force_confirm", "reason": "Agreed in person"}
    assert admin.post(purl, data={**seen(admin, purl), **confirm}).status_code == 303
    fresh(session)
    assert session.get(Job, pending.id).status == "READYTOPRINT"
    overrides = session.scalars(
        select(Event.details).where(Event.job_id == pending.id, Event.event_type == "AdminOverride")
    ).all()
    assert [d["override"] for d in overrides] == ["break_lock", "force_confirm"]


def test_file_deletion_names_the_files_and_is_evented(web, session, storage):
    admin = signed_in(web)
    job = make_job(session, storage, Status.REJECTED)
    page = admin.get(f"/admin/jobs/{job.id}/delete-files").data.decode()
    names = re.findall(r'name="files" value="([^"]+)"', page)
    assert sorted(names) == sorted([job.file_path, job.metadata_path])
    url = f"/admin/jobs/{job.id}/delete-files"
    version = seen(admin, url)
    form = {**ACTING, **version, "reason": "Student asked"}
    assert admin.post(url, data={**form, "files": names[:1]}).status_code == 422
    assert storage.resolve(job.file_path).exists()
    assert admin.post(url, data={**form, "files": names}).status_code == 303
    assert not any(storage.resolve(n).exists() for n in names)
    fresh(session)
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert event.event_type == "FileDeleted" and "Jane" not in str(event.details)
    assert admin.get(f"/jobs/{job.id}").status_code == 200


def test_the_admin_log_is_append_only(web, session, engine):
    admin = signed_in(web)
    admin.post("/admin/staff", data={**ACTING, "name": "Logged Person"})
    for statement in ("UPDATE admin_log SET action = 'x'", "DELETE FROM admin_log"):
        with pytest.raises(Exception, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert "StaffAdded" in log_actions(session)
    assert "Logged Person" in admin.get("/admin/log").data.decode()


def test_staff_and_workstation_dates_and_the_log_are_in_the_lab_time_zone(web, session):
    admin = signed_in(web)
    admin.post("/admin/staff", data={**ACTING, "name": "Jo Smith"})
    zone = re.compile(r"\d{2} \w{3} \d{4} \d{2}:\d{2} C[SD]T")  # the lab is in America/Chicago
    staff_page = admin.get("/admin/staff").data.decode()
    jo = staff_page.split('<td data-label="Name">Jo Smith</td>', 1)[1].split("</tr>", 1)[0]
    assert zone.search(jo) and not re.search(r"\d{4}-\d{2}-\d{2}", jo)
    stations = admin.get("/admin/workstations").data.decode()
    row = stations.split(f'<td data-label="Workstation">{ADMIN_PC}</td>', 1)[1].split("</tr>", 1)[0]
    assert zone.search(row) and not re.search(r"\d{4}-\d{2}-\d{2}", row)
    log = admin.get("/admin/log").data.decode()
    assert f"Staff member Jo Smith added by {STAFF}" in log and "StaffAdded" not in log
    assert zone.search(log.split("Staff member Jo Smith", 1)[0].rsplit("<tr>", 1)[1])
