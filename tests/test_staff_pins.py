"""Personal PINs at a shared workstation, on both databases: set by the person or an admin, checked with
a lock after wrong tries, a switch that attributes actions to the person and ends with Done, a changed
PIN or fifteen idle minutes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.sign_in import PIN_TRIES, pin_problem
from printlab.models import AdminLogEntry, Event, StaffPin
from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.lab import pins, workstations
from printlab.services.lab import staff as staff_service
from printlab.services.lab.pins import PinRefused

from .conftest import sign_in_client
from .factories import STAFF, actor, make_job, make_staff

ADMIN_PC = "ADMIN-PC"
OTHER_STAFF = "Sam Chen"


@pytest.fixture
def admin(session):  # type: ignore[no-untyped-def]
    make_staff(session)
    make_staff(session, OTHER_STAFF)
    workstations.add_workstation(session, ADMIN_PC, "a-long-password-1", is_admin=True)
    return actor(STAFF, ADMIN_PC)


def csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return found.group(1) if found else ""


@pytest.mark.parametrize("pin", ["", "123", "123456789", "12a4", "１２３４", "1111", "1234", "0000"])
def test_a_pin_that_is_too_short_long_or_guessable_is_refused(pin):
    assert pin_problem(pin) is not None


def test_a_good_pin_passes():
    assert pin_problem("4719") is None and pin_problem("80417263") is None


def test_an_admin_sets_a_pin_and_it_is_stored_hashed_and_logged_without_it(session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    row = session.get(StaffPin, OTHER_STAFF)
    assert "4719" not in row.pin_hash and row.pin_hash.startswith("$argon2")
    entry = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "StaffPinSet")).one()
    assert entry.details == {"name": OTHER_STAFF, "own": False} and "4719" not in str(entry.details)
    assert pins.switch_in(session, OTHER_STAFF, "4719") == row.epoch


def test_only_the_person_or_an_admin_sets_a_pin(session, admin):
    workstations.add_workstation(session, "LAB-PC", "a-long-password-1")
    with pytest.raises(NotAllowed):
        pins.set_pin(session, OTHER_STAFF, "4719", by=actor(STAFF, "LAB-PC"))
    pins.set_pin(session, OTHER_STAFF, "4719", by=actor(OTHER_STAFF, "LAB-PC"))  # their own
    with pytest.raises(ValidationError):
        pins.set_pin(session, "Nobody Here", "4719", by=admin)


def test_wrong_pins_lock_it_for_a_while_and_the_right_one_then_waits(session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    now = utcnow()
    for _ in range(PIN_TRIES):
        with pytest.raises(PinRefused, match="don't match"):
            pins.switch_in(session, OTHER_STAFF, "0001", now=now)
    with pytest.raises(PinRefused, match="Too many wrong PINs"):
        pins.switch_in(session, OTHER_STAFF, "4719", now=now + timedelta(minutes=1))
    assert pins.switch_in(session, OTHER_STAFF, "4719", now=now + timedelta(minutes=16)) >= 1


def test_an_unknown_name_and_a_wrong_pin_get_the_same_answer(session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    with pytest.raises(PinRefused) as unknown:
        pins.switch_in(session, "Nobody Here", "4719")
    with pytest.raises(PinRefused) as wrong:
        pins.switch_in(session, OTHER_STAFF, "9999")
    assert str(unknown.value) == str(wrong.value)


def test_someone_off_the_staff_list_cant_switch_in(session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    staff_service.set_active(session, OTHER_STAFF, False, by=admin)
    with pytest.raises(PinRefused):
        pins.switch_in(session, OTHER_STAFF, "4719")
    assert OTHER_STAFF not in pins.names_with_pins(session)


def switch(client, name: str, pin: str):  # type: ignore[no-untyped-def]
    page = client.get("/switch").get_data(as_text=True)
    return client.post(
        "/switch", data={"csrf_token": csrf(page), "staff": name, "pin": pin, "next": "/dashboard"}
    )


def test_a_person_switches_in_at_a_workstation_and_their_actions_carry_their_name(
    app, session, admin, storage
):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    job = make_job(session, storage)
    client = sign_in_client(app.test_client(), session)
    page = client.get("/switch").get_data(as_text=True)
    assert OTHER_STAFF in page and 'id="pin-form"' in page
    assert switch(client, OTHER_STAFF, "9999").status_code == 401
    answer = switch(client, OTHER_STAFF, "4719")
    assert answer.status_code == 303 and answer.headers["Location"] == "/dashboard"
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'id="signed-in-person"' in page and 'name="acting_as"' not in page
    fields = dict(re.findall(r'name="(expected_status|expected_version)" value="([^"]+)"', page))
    answer = client.post(
        f"/jobs/{job.id}/notes",
        data={"csrf_token": csrf(page), "notes": "Supports needed.", "acting_as": STAFF} | fields,
    )
    assert answer.status_code in (200, 303)
    session.rollback()
    event = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "NotesUpdated")
    ).one()
    assert event.triggered_by == OTHER_STAFF  # the PIN's owner, whatever the form said
    # Done hands the computer back: the workstation stays signed in, "Acting as" returns.
    done = client.post("/switch/done", data={"csrf_token": csrf(page)})
    assert done.status_code == 303
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert 'name="acting_as"' in page and 'id="signed-in-person"' not in page


def test_a_switch_ends_after_fifteen_idle_minutes_or_a_new_pin(app, session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    client = sign_in_client(app.test_client(), session)
    assert switch(client, OTHER_STAFF, "4719").status_code == 303
    with client.session_transaction() as cookie:
        cookie["pin_seen"] -= 16 * 60
    assert 'id="signed-in-person"' not in client.get("/dashboard").get_data(as_text=True)
    assert switch(client, OTHER_STAFF, "4719").status_code == 303
    pins.set_pin(session, OTHER_STAFF, "8062", by=admin)  # changed elsewhere: this switch ends
    assert 'id="signed-in-person"' not in client.get("/dashboard").get_data(as_text=True)


def test_a_person_sets_their_own_pin_once_switched_in(app, session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    client = sign_in_client(app.test_client(), session)
    assert switch(client, OTHER_STAFF, "4719").status_code == 303
    page = client.get("/me/pin").get_data(as_text=True)
    refused = client.post("/me/pin", data={"csrf_token": csrf(page), "pin": "8062", "again": "8063"})
    assert refused.status_code == 400 and "The two PINs differ" in refused.get_data(as_text=True)
    saved = client.post("/me/pin", data={"csrf_token": csrf(page), "pin": "8062", "again": "8062"})
    assert saved.status_code == 303
    assert 'id="signed-in-person"' in client.get("/dashboard").get_data(as_text=True)  # still them
    assert pins.switch_in(session, OTHER_STAFF, "8062") >= 2


def test_switching_needs_a_signed_in_workstation(app, session, admin):
    pins.set_pin(session, OTHER_STAFF, "4719", by=admin)
    client = app.test_client()
    assert client.get("/switch").status_code == 302
    assert client.get("/me/pin").status_code == 302
