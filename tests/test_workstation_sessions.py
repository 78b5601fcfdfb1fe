"""A workstation's sessions end together: at sign-out, at a password reset and at deactivation, a saved
session cookie stops working at once. A deactivated workstation can't sign in (on both databases)."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import select

from printlab import config as config_module
from printlab.models import AdminLogEntry, Workstation
from printlab.services.errors import NotAllowed, NotFound
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor

from .factories import STAFF, make_staff

DESK, ADMIN_PC, PASSWORD = "LAB-PC-1", "ADMIN-PC", "a-long-password-1"
COOKIE = "printlab_session"
ACTING = {"acting_as": STAFF}


@pytest.fixture
def web(lab_env, session):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    make_staff(session)
    workstations.add_workstation(session, DESK, PASSWORD)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    yield app
    app.extensions["printlab"].engine.dispose()


def signed_in(app, workstation: str = DESK, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    client = app.test_client()
    response = client.post("/login", data={"workstation": workstation, "password": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def saved_cookie(client) -> str:  # type: ignore[no-untyped-def]
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def replay(app, cookie: str):  # type: ignore[no-untyped-def]
    """A new browser that was handed a copy of the cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client


def is_signed_out(client) -> bool:  # type: ignore[no-untyped-def]
    response = client.get("/dashboard")
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def fresh(session) -> None:  # type: ignore[no-untyped-def]
    session.rollback()
    session.expire_all()


def log_actions(session) -> list[str]:  # type: ignore[no-untyped-def]
    fresh(session)
    return list(session.scalars(select(AdminLogEntry.action).order_by(AdminLogEntry.id)))


def test_a_saved_cookie_stops_working_at_sign_out(web):
    desk = signed_in(web)
    copy = saved_cookie(desk)
    assert not is_signed_out(replay(web, copy))  # the copy works while the session lasts
    other_tab = replay(web, copy)
    elsewhere = signed_in(web, ADMIN_PC)
    assert desk.post("/logout").status_code == 303
    assert is_signed_out(desk)
    assert is_signed_out(replay(web, copy))
    assert is_signed_out(other_tab)  # every session of the workstation ended at once
    assert not is_signed_out(elsewhere)  # another workstation's session goes on


def test_signing_out_with_an_ended_session_leaves_the_new_one_alone(web):
    old = signed_in(web)
    copy = saved_cookie(old)
    old.post("/logout")
    new = signed_in(web)
    assert replay(web, copy).post("/logout").status_code == 303
    assert not is_signed_out(new)


def test_a_saved_cookie_stops_working_after_a_password_reset(web):
    copy = saved_cookie(signed_in(web))
    admin = signed_in(web, ADMIN_PC)
    page = admin.post(f"/admin/workstations/{DESK}/reset", data=ACTING)
    assert page.status_code == 200
    assert is_signed_out(replay(web, copy))


def test_a_saved_cookie_stops_working_after_a_reset_from_the_console(web, session):
    copy = saved_cookie(signed_in(web))
    workstations.reset_password(session, DESK, "another-long-password")
    assert is_signed_out(replay(web, copy))
    signed_in(web, DESK, "another-long-password")


def test_deactivation_ends_the_sessions_and_refuses_sign_in_until_reactivated(web, session):
    copy = saved_cookie(signed_in(web))
    admin = signed_in(web, ADMIN_PC)
    response = admin.post(f"/admin/workstations/{DESK}/active", data={**ACTING, "active": "0"})
    assert response.status_code == 303
    assert is_signed_out(replay(web, copy))
    fresh(session)
    assert session.get(Workstation, DESK).is_active is False

    refused = web.test_client().post("/login", data={"workstation": DESK, "password": PASSWORD})
    assert refused.status_code == 403
    assert "LAB-PC-1 has been deactivated" in html.unescape(refused.get_data(as_text=True))
    wrong = web.test_client().post("/login", data={"workstation": DESK, "password": "not-the-password"})
    assert wrong.status_code == 401  # without the password nobody learns the workstation exists
    assert "deactivated" not in wrong.get_data(as_text=True)

    admin.post(f"/admin/workstations/{DESK}/active", data={**ACTING, "active": "1"})
    assert is_signed_out(replay(web, copy))  # reactivating doesn't bring old sessions back
    signed_in(web)
    changes = [action for action in log_actions(session) if action.startswith("Workstation")]
    assert changes[-2:] == ["WorkstationDeactivated", "WorkstationReactivated"]
    assert "SignInFailed" in log_actions(session)  # the wrong password above
    entry = session.scalars(
        select(AdminLogEntry)
        .where(AdminLogEntry.action.startswith("Workstation"))
        .order_by(AdminLogEntry.id.desc())
    ).first()
    assert (entry.triggered_by, entry.workstation_id, entry.details) == (
        STAFF,
        ADMIN_PC,
        {"workstation": DESK},
    )


def test_the_admin_page_wont_deactivate_its_own_workstation(web, session):
    admin = signed_in(web, ADMIN_PC)
    response = admin.post(f"/admin/workstations/{ADMIN_PC}/active", data={**ACTING, "active": "0"})
    assert response.status_code == 303
    fresh(session)
    assert session.get(Workstation, ADMIN_PC).is_active is True
    assert not is_signed_out(admin)
    assert "WorkstationDeactivated" not in log_actions(session)


def test_deactivation_needs_a_name_and_an_admin_workstation(web, session):
    admin = signed_in(web, ADMIN_PC)
    admin.post(f"/admin/workstations/{DESK}/active", data={"active": "0"})
    desk = signed_in(web)
    assert (
        desk.post(f"/admin/workstations/{ADMIN_PC}/active", data={**ACTING, "active": "0"}).status_code == 403
    )
    fresh(session)
    assert session.get(Workstation, DESK).is_active and session.get(Workstation, ADMIN_PC).is_active


def test_the_services_log_each_change_once_and_refuse_an_unknown_workstation(web, session):
    by = Actor(STAFF, ADMIN_PC)
    workstations.set_active(session, DESK, False, by=by)
    workstations.set_active(session, DESK, False, by=by)  # already: nothing more
    workstations.set_active(session, DESK, True)  # the console
    assert log_actions(session)[-2:] == ["WorkstationDeactivated", "WorkstationReactivated"]
    with pytest.raises(NotFound):
        workstations.set_active(session, "NO-SUCH-PC", False)
    with pytest.raises(NotAllowed):
        workstations.set_active(session, DESK, False, by=Actor(STAFF, DESK))  # not an admin workstation
