"""Wrong passwords slow down the computer that types them, not the workstation for everyone (issue: lockouts)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain import sign_in as rules
from printlab.models import AdminLogEntry
from printlab.services.lab import sign_in_guard, workstations

PASSWORD = "a-long-password-1"


def _login(client, address: str, password: str, workstation: str = "LAB-PC-1"):  # type: ignore[no-untyped-def]
    return client.post(
        "/login",
        data={"workstation": workstation, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def _app_without_csrf(lab_env):  # type: ignore[no-untyped-def]
    from printlab import config as config_module
    from printlab.web.app import create_app

    return create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))


def test_twenty_wrong_passwords_from_one_computer_dont_lock_out_another(lab_env, session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    app = _app_without_csrf(lab_env)
    client = app.test_client()
    # Twenty wrong tries, spread over addresses' minute limits: 10 each from two attacking computers.
    for address in ("10.0.0.66", "10.0.0.67"):
        for _ in range(10):
            assert _login(client, address, "wrong-password").status_code in (401, 429)
    right = _login(app.test_client(), "10.0.0.5", PASSWORD)
    assert right.status_code == 303, right.data[:300]
    app.extensions["printlab"].engine.dispose()


def test_the_typing_computer_waits_longer_after_each_wrong_password(lab_env, session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    app = _app_without_csrf(lab_env)
    client = app.test_client()
    statuses = [_login(client, "10.0.0.66", "wrong-password").status_code for _ in range(rules.FREE_TRIES)]
    assert statuses == [401] * rules.FREE_TRIES
    # Now even the right password from that computer waits, and the page says for how long.
    held = _login(client, "10.0.0.66", PASSWORD)
    assert held.status_code == 429
    assert b"Too many wrong passwords" in held.data and b"seconds" in held.data
    # Another computer is not affected.
    assert _login(app.test_client(), "10.0.0.9", PASSWORD).status_code == 303
    app.extensions["printlab"].engine.dispose()


def test_delays_grow_and_are_capped():
    delays = [rules.delay_after(n) for n in range(1, 16)]
    assert delays[: rules.FREE_TRIES - 1] == [timedelta(0)] * (rules.FREE_TRIES - 1)
    growing = delays[rules.FREE_TRIES - 1 :]
    assert growing == sorted(growing) and growing[0] > timedelta(0)
    assert max(growing) == rules.MAX_DELAY


def test_a_right_password_clears_that_computers_count(session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    now = utcnow()
    for _ in range(rules.FREE_TRIES - 1):
        sign_in_guard.record_failure(session, "LAB-PC-1", "10.0.0.66", now=now)
    assert sign_in_guard.wait_for(session, "LAB-PC-1", "10.0.0.66", now=now) is None
    sign_in_guard.record_success(session, "LAB-PC-1", "10.0.0.66")
    sign_in_guard.record_failure(session, "LAB-PC-1", "10.0.0.66", now=now)
    assert sign_in_guard.wait_for(session, "LAB-PC-1", "10.0.0.66", now=now) is None


def test_a_lab_wide_ceiling_stops_a_spread_out_attack(session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    now = utcnow()
    for n in range(rules.LAB_WIDE_CEILING):
        sign_in_guard.record_failure(session, "LAB-PC-1", f"10.1.{n // 250}.{n % 250}", now=now)
    wait = sign_in_guard.wait_for(session, "LAB-PC-1", "10.9.9.9", now=now)
    assert wait is not None and wait > timedelta(0)
    assert sign_in_guard.wait_for(session, "LAB-PC-1", "10.9.9.9", now=now + rules.CEILING_WINDOW) is None


def test_failed_sign_ins_are_in_the_admin_log(lab_env, session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    app = _app_without_csrf(lab_env)
    _login(app.test_client(), "10.0.0.66", "wrong-password")
    _login(app.test_client(), "10.0.0.66", "wrong-password", workstation="NO-SUCH-PC")
    app.extensions["printlab"].engine.dispose()
    session.expire_all()
    entries = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "SignInFailed")).all()
    assert [(e.details["workstation"], e.details["address"]) for e in entries] == [
        ("LAB-PC-1", "10.0.0.66"),
        ("NO-SUCH-PC", "10.0.0.66"),
    ]


def test_an_admin_lets_a_locked_out_workstation_sign_in_again(session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    now = utcnow()
    for _ in range(rules.FREE_TRIES + 2):
        sign_in_guard.record_failure(session, "LAB-PC-1", "10.0.0.66", now=now)
    locked = sign_in_guard.locked_out(session, now=now)
    assert [(row.workstation_id, row.address) for row in locked] == [("LAB-PC-1", "10.0.0.66")]
    sign_in_guard.let_sign_in_again(session, "LAB-PC-1")
    assert sign_in_guard.locked_out(session, now=now) == []
    assert sign_in_guard.wait_for(session, "LAB-PC-1", "10.0.0.66", now=now) is None
    released = session.scalars(
        select(AdminLogEntry).where(AdminLogEntry.action == "WorkstationSignInReleased")
    ).one()
    assert released.details == {"workstation": "LAB-PC-1"}


def test_a_name_with_a_nul_is_an_ordinary_wrong_sign_in(lab_env, session):
    workstations.add_workstation(session, "LAB-PC-1", PASSWORD)
    app = _app_without_csrf(lab_env)
    answer = _login(app.test_client(), "10.0.0.66", PASSWORD, workstation="LAB-PC-1\x00")
    assert answer.status_code == 401
    app.extensions["printlab"].engine.dispose()
    session.expire_all()
    logged = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "SignInFailed")).one()
    assert logged.details == {"workstation": "LAB-PC-1?", "address": "10.0.0.66"}
