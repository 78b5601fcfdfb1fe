"""Campus sign-in in Chromium, at desktop width and 375 px, against a real OpenID provider: a staff member
signs in from the login page and acts under their own name, someone new waits for an admin, an admin
lets them in, and signing out ends the session at the provider too. Every PrintLab page on the way is
checked for width and with axe-core."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from printlab import config as config_module
from printlab.services.files.storage import Storage
from printlab.services.lab import campus

from ..factories import make_staff
from ..servers import OidcProvider, free_port
from .conftest import PHONE, Live, Tab
from .test_every_page import AXE, AXE_JS, WIDTH_JS

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1366, "height": 768}
ALEX = {
    "email": "alex.rivera@uni.example",
    "email_verified": True,
    "name": "Alex Rivera",
    "groups": ["mkr-staff"],
}
SAM = {"email": "sam.lee@uni.example", "email_verified": True, "name": "Sam Lee", "groups": ["mkr-admins"]}
JO = {"email": "jo.park@uni.example", "email_verified": True, "name": "Jo Park", "groups": ["students"]}


@pytest.fixture
def campus_live(
    lab_env: dict[str, str], session: Session, storage: Storage, tmp_path: Path
) -> Iterator[Live]:
    """PrintLab on a loopback port with campus sign-in pointed at a real OpenID provider."""
    from printlab.web.app import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    provider = OidcProvider(tmp_path / "oidc", {"alex": ALEX, "sam": SAM, "jo": JO}, base).start()
    env = lab_env | {
        "PRINTLAB_BASE_URL": base,
        "PRINTLAB_WORKER": "off",
        "PRINTLAB_OIDC_ISSUER": provider.issuer,
        "PRINTLAB_OIDC_CLIENT_ID": provider.CLIENT_ID,
        "PRINTLAB_OIDC_CLIENT_SECRET": provider.client_secret,
        "PRINTLAB_OIDC_SCOPES": "openid email profile groups",
    }
    app = create_app(config=config_module.load(env))
    campus.set_group_role(session, "mkr-staff", "STAFF")
    campus.set_group_role(session, "mkr-admins", "ADMIN")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="printlab-campus-server", daemon=True)
    thread.start()
    live = Live(base, app, storage, session)
    live.provider = provider  # type: ignore[attr-defined]
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(10)
        provider.stop()
        session.rollback()
        app.extensions["printlab"].engine.dispose()


def check(tab: Tab, width: int) -> None:
    """The PrintLab page shown fits the window and axe-core finds nothing on it."""
    tab.audit()
    measured = tab.page.evaluate(WIDTH_JS)
    assert measured["scroll"] <= width, measured
    assert tab.page.evaluate(AXE_JS) == []


def at_provider(tab: Tab, live: Live, login: str) -> None:
    """Sign in on the campus provider's own page (not PrintLab's, so not audited here)."""
    page = tab.page
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("campus-password")
    with page.expect_navigation(url=lambda url: url.startswith(live.url)):
        page.locator("button[type=submit]").click()
    tab.visited = {path for path in tab.visited if not path.startswith(("/interaction", "/auth"))}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "375px"])
def test_campus_sign_in_from_first_visit_to_sign_out(
    campus_live: Live, open_tab: Any, viewport: dict[str, int]
) -> None:
    width = viewport["width"]
    # Someone new signs in: no group gives them a role, so they wait for an admin.
    newcomer = open_tab("newcomer", viewport)
    newcomer.page.context.add_init_script(path=str(AXE))
    newcomer.go(f"{campus_live.url}/dashboard")
    assert urlsplit(newcomer.page.url).path == "/login"
    check(newcomer, width)
    newcomer.page.get_by_role("link", name="Sign in with your campus account").click()
    at_provider(newcomer, campus_live, "jo")
    expect(newcomer.page.locator("#campus-waiting")).to_contain_text("A lab admin needs to let you in")
    check(newcomer, width)

    # An admin (by their campus group) lets them in from the admin page.
    admin = open_tab("admin", viewport)
    admin.page.context.add_init_script(path=str(AXE))
    admin.go(f"{campus_live.url}/login")
    admin.page.get_by_role("link", name="Sign in with your campus account").click()
    at_provider(admin, campus_live, "sam")
    expect(admin.page.locator(".site-header")).to_contain_text("Sam Lee")
    admin.go(f"{campus_live.url}/admin/campus")
    check(admin, width)
    row = admin.page.locator("#campus-people tr", has_text="Jo Park")
    expect(row).to_contain_text("Waiting for an admin")
    with admin.page.expect_navigation():
        row.get_by_role("button", name="Let in as staff").click()
    admin.audit()
    expect(admin.page.locator(".flashes")).to_contain_text("Jo Park can sign in as staff")
    expect(admin.page.locator("#campus-people tr", has_text="Jo Park")).to_contain_text("Staff")
    check(admin, width)

    # Now they sign in and work under their own name, with no "Acting as" to pick.
    newcomer.go(f"{campus_live.url}/login/campus?next=/dashboard")
    newcomer.visited.discard("/login/campus")
    if newcomer.page.locator("input[name=login]").count():  # the provider may remember them
        at_provider(newcomer, campus_live, "jo")
    newcomer.page.wait_for_url(f"{campus_live.url}/dashboard")
    expect(newcomer.page.locator(".site-header")).to_contain_text("Jo Park")
    expect(newcomer.page.locator("#acting-as-control")).to_have_count(0)
    check(newcomer, width)

    # Signing out ends the session here and asks the provider to end it there too.
    newcomer.page.get_by_role("button", name="Sign out").click()
    newcomer.page.wait_for_url(lambda url: url.startswith(campus_live.provider.issuer))  # type: ignore[attr-defined]
    with newcomer.page.expect_navigation(url=lambda url: url.startswith(campus_live.url)):
        newcomer.page.locator("button[autofocus], button[type=submit]").first.click()
    newcomer.visited = {p for p in newcomer.visited if not p.startswith("/session")}
    assert urlsplit(newcomer.page.url).path == "/login"
    check(newcomer, width)
    newcomer.go(f"{campus_live.url}/dashboard")
    assert urlsplit(newcomer.page.url).path == "/login"


def test_a_refused_sign_in_says_why_in_words(campus_live: Live, open_tab: Any) -> None:
    make_staff(campus_live.session)
    tab = open_tab("staff", PHONE)
    tab.page.context.add_init_script(path=str(AXE))
    tab.go(f"{campus_live.url}/login/campus/done?code=stolen&state=made-up")
    expect(tab.page.locator("#campus-problem")).to_contain_text("already used or has expired")
    check(tab, PHONE["width"])
