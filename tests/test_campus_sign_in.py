"""Campus sign-in against a real OpenID provider (the certified `oidc-provider`, run by Node on loopback),
on both databases: sign-in with PKCE, state and nonce; a token for another client, an expired token, a
replayed state and key rotation refused or handled; roles from groups or an admin; sign-out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import select

from printlab import config as config_module
from printlab.domain.campus import Approval, ClaimNames, ClaimsProblem, Role, identity_from_claims
from printlab.models import AdminLogEntry, CampusPerson, Event, Staff
from printlab.services.errors import NotAllowed, ValidationError
from printlab.services.lab import campus, workstations

from .factories import STAFF, actor, make_staff
from .servers import OidcProvider

BASE = "http://printlab.test"  # the lab_env fixture's PRINTLAB_BASE_URL
ALEX = {
    "email": "alex.rivera@uni.example",
    "email_verified": True,
    "name": "Alex Rivera",
    "groups": ["mkr-staff"],
}
SAM = {"email": "sam.lee@uni.example", "email_verified": True, "name": "Sam Lee", "groups": ["mkr-admins"]}
NEWCOMER = {"email": "jo.park@uni.example", "email_verified": True, "name": "Jo Park", "groups": ["students"]}
UNCONFIRMED = {"email": "kim@elsewhere.example", "email_verified": False, "name": "Kim Ode", "groups": []}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    server = OidcProvider(
        tmp_path_factory.mktemp("oidc"), {"alex": ALEX, "sam": SAM, "jo": NEWCOMER, "kim": UNCONFIRMED}, BASE
    ).start()
    yield server
    server.stop()


@pytest.fixture
def campus_app(lab_env: dict[str, str], provider: OidcProvider):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    env = lab_env | {
        "PRINTLAB_OIDC_ISSUER": provider.issuer,
        "PRINTLAB_OIDC_CLIENT_ID": provider.CLIENT_ID,
        "PRINTLAB_OIDC_CLIENT_SECRET": provider.client_secret,
        "PRINTLAB_OIDC_SCOPES": "openid email profile groups",  # as Okta sends groups: when asked
    }
    app = create_app({"TESTING": True}, config=config_module.load(env))
    yield app
    app.extensions["printlab"].engine.dispose()


@pytest.fixture
def groups(session):  # type: ignore[no-untyped-def]
    """The lab's mapping: mkr-staff are staff, mkr-admins admins (set at the console)."""
    campus.set_group_role(session, "mkr-staff", "STAFF")
    campus.set_group_role(session, "mkr-admins", "ADMIN")


def at_provider(authorize_url: str, login: str, browser: httpx.Client) -> str:
    """Play the person at the provider: follow its redirects, sign in on its login page, and return the
    address it sends the browser back to (PrintLab's /login/campus/done?code=…&state=…)."""
    url = authorize_url
    for _ in range(12):
        if url.startswith(BASE):
            return url
        answer = browser.get(url)
        if answer.is_redirect:
            url = urljoin(url, answer.headers["location"])
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"', answer.text)
        assert form, answer.text[:500]
        answer = browser.post(
            urljoin(url, form.group(1)), data={"prompt": "login", "login": login, "password": "any"}
        )
        assert answer.is_redirect, answer.text[:500]
        url = urljoin(url, answer.headers["location"])
    raise AssertionError("the provider never sent the browser back")


def start(client, next_page: str = "/", **extra: str) -> str:  # type: ignore[no-untyped-def]
    answer = client.get("/login/campus", query_string={"next": next_page, **extra})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:300]
    return answer.headers["Location"]


def sign_in(client, login: str, next_page: str = "/", **extra: str):  # type: ignore[no-untyped-def]
    """The whole round trip; returns PrintLab's answer to the provider's redirect back."""
    with httpx.Client() as browser:
        back = at_provider(start(client, next_page, **extra), login, browser)
    parts = urlsplit(back)
    return client.get(parts.path, query_string=parts.query)


def csrf(client, path: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return found.group(1) if found else ""


def person(session, name: str) -> CampusPerson:  # type: ignore[no-untyped-def]
    session.rollback()
    session.expire_all()
    return session.scalars(select(CampusPerson).where(CampusPerson.name == name)).one()


# -- the round trip --------------------------------------------------------------------------------


def test_the_authorization_request_uses_pkce_state_and_nonce(campus_app, provider):
    url = start(campus_app.test_client())
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(provider.issuer + "/auth?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [f"{BASE}/login/campus/done"]
    assert "openid" in query["scope"][0].split()


def test_a_staff_member_signs_in_and_acts_under_their_own_name(campus_app, session, groups):
    client = campus_app.test_client()
    answer = sign_in(client, "alex", "/dashboard")
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/dashboard")
    alex = person(session, "Alex Rivera")
    assert (alex.role, alex.approval, alex.staff_name, alex.email) == (
        "STAFF", "APPROVED", "Alex Rivera", "alex.rivera@uni.example"
    )  # fmt: skip
    assert session.get(Staff, "Alex Rivera").is_active
    page = client.get("/dashboard")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Alex Rivera" in text and 'name="acting_as"' not in text  # no "Acting as" to pick from
    assert client.get("/admin").status_code == 403  # staff, not admin
    assert client.get("/api/v1/jobs").status_code == 200  # the pages' own API calls read as the person


def test_an_admin_group_gives_the_admin_pages(campus_app, session, groups):
    client = campus_app.test_client()
    assert sign_in(client, "sam").status_code == 303
    assert client.get("/admin/campus").status_code == 200
    token = csrf(client, "/admin/campus")
    # An admin change made by the campus admin is logged under their name, with no workstation.
    answer = client.post(
        "/admin/campus/groups", data={"group": "lab-techs", "role": "STAFF", "csrf_token": token}
    )
    assert answer.status_code == 303
    entry = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "CampusGroupRoleSet")
                            .order_by(AdminLogEntry.id.desc())).first()  # fmt: skip
    assert (entry.triggered_by, entry.workstation_id, entry.details["group"]) == (
        "Sam Lee",
        None,
        "lab-techs",
    )


def test_someone_no_group_lets_in_waits_for_an_admin(campus_app, session, groups):
    client = campus_app.test_client()
    answer = sign_in(client, "jo")
    assert answer.status_code == 403
    assert "A lab admin needs to let you in" in answer.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302  # not signed in
    jo = person(session, "Jo Park")
    assert (jo.role, jo.approval, jo.staff_name) == ("NONE", "PENDING", None)
    campus.approve(session, jo.id, "STAFF")
    assert sign_in(client, "jo").status_code == 303
    assert client.get("/dashboard").status_code == 200
    # An admin's decision stands over the groups: the next sign-in doesn't take it away.
    assert person(session, "Jo Park").role_set_by_admin


def test_a_replayed_state_is_refused(campus_app, session, groups):
    client = campus_app.test_client()
    with httpx.Client() as browser:
        back = at_provider(start(client), "alex", browser)
    parts = urlsplit(back)
    assert client.get(parts.path, query_string=parts.query).status_code == 303
    client.post("/login/campus/sign-out", data={"csrf_token": csrf(client, "/dashboard")})
    replay = client.get(parts.path, query_string=parts.query)
    assert replay.status_code == 400
    assert "already used or has expired" in replay.get_data(as_text=True)
    assert client.get("/dashboard").status_code == 302


def test_a_code_for_another_browser_session_is_refused(campus_app, groups):
    """The state lives in the browser's own session: a link made for another browser doesn't sign in."""
    mine, theirs = campus_app.test_client(), campus_app.test_client()
    with httpx.Client() as browser:
        back = at_provider(start(mine), "alex", browser)
    parts = urlsplit(back)
    answer = theirs.get(parts.path, query_string=parts.query)
    assert answer.status_code == 400 and theirs.get("/dashboard").status_code == 302


def test_a_token_for_another_client_is_refused(campus_app, provider, session, groups):
    """An ID token the provider issued to another application (a wrong audience) is not accepted."""
    other_secret = "another-apps-secret-0123456789abcdef"
    provider.other_clients = [provider.client("course-tool", other_secret)]
    provider.restart()
    try:
        client = campus_app.test_client()
        url = start(client)
        # The same authorization request, but made for the other application: its code and ID token
        # name "course-tool" as their audience.
        query = parse_qs(urlsplit(url).query)
        foreign = url.replace(f"client_id={query['client_id'][0]}", "client_id=course-tool")
        with httpx.Client() as browser:
            back = at_provider(foreign, "alex", browser)
        code = parse_qs(urlsplit(back).query)["code"][0]
        token = httpx.post(
            f"{provider.issuer}/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": f"{BASE}/login/campus/done",
                  "code_verifier": "x" * 43},
            auth=("course-tool", other_secret),
        )  # fmt: skip
        # PKCE already refuses the stolen code at the provider (its verifier is PrintLab's secret) …
        assert token.status_code == 400
        # … and an ID token for another audience is refused by PrintLab's own check.
        with campus_app.test_request_context():
            from authlib.oidc.core import CodeIDToken
            from joserfc import jwt
            from joserfc.errors import JoseError
            from joserfc.jwk import KeySet

            keys = KeySet.import_key_set({"keys": provider.keys})
            forged = jwt.encode({"alg": "RS256", "kid": "key-1"},
                                {"iss": provider.issuer, "sub": "alex", "aud": "course-tool",
                                 "exp": 4102444800, "iat": 1700000000, "nonce": "n"}, keys)  # fmt: skip
            claims = jwt.decode(forged, keys)
            checked = CodeIDToken(claims.claims, claims.header, {"iss": {"values": [provider.issuer]}},
                                  {"client_id": provider.CLIENT_ID, "nonce": "n"})  # fmt: skip
            with pytest.raises(JoseError, match=r"aud|azp"):
                checked.validate()
    finally:
        provider.other_clients = []
        provider.restart()


def test_an_expired_id_token_is_refused(campus_app, provider, session, groups):
    # ID tokens good for a second, from a provider whose clock is five minutes behind: each one it
    # issues expired before it arrives (beyond the two minutes' leeway for clocks that differ a little).
    provider.clock_offset, provider.id_token_seconds = -300, 1
    provider.restart()
    try:
        client = campus_app.test_client()
        answer = sign_in(client, "alex")
        assert answer.status_code == 400
        assert "expired" in answer.get_data(as_text=True)
        assert client.get("/dashboard").status_code == 302
    finally:
        provider.clock_offset, provider.id_token_seconds = 0, 3600
        provider.restart()


def test_new_signing_keys_at_the_provider_are_fetched(campus_app, provider, groups):
    client = campus_app.test_client()
    assert sign_in(client, "alex").status_code == 303
    provider.restart(rotate_keys=True)
    other = campus_app.test_client()
    assert sign_in(other, "alex").status_code == 303  # the new key is fetched, not refused
    assert other.get("/dashboard").status_code == 200


def test_sign_out_ends_the_session_here_and_at_the_provider(campus_app, provider, groups):
    client = campus_app.test_client()
    assert sign_in(client, "alex").status_code == 303
    copy = campus_app.test_client()
    copy.set_cookie("printlab_session", client.get_cookie("printlab_session").value)
    answer = client.post("/login/campus/sign-out", data={"csrf_token": csrf(client, "/dashboard")})
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(provider.issuer + "/session/end")
    query = parse_qs(urlsplit(location).query)
    assert query["post_logout_redirect_uri"] == [f"{BASE}/login"] and query["id_token_hint"][0]
    assert client.get("/dashboard").status_code == 302
    assert copy.get("/dashboard").status_code == 302  # a saved copy of the cookie is signed out too


def test_at_a_shared_workstation_a_person_signs_in_over_it_and_out_again(campus_app, session, groups):
    from .conftest import sign_in_client

    client = sign_in_client(campus_app.test_client(), session)
    assert sign_in(client, "alex").status_code == 303
    page = client.get("/dashboard").get_data(as_text=True)
    assert "Alex Rivera" in page and "HEALTH-PC" in page and ">Done<" in page
    answer = client.post("/login/campus/sign-out", data={"csrf_token": csrf(client, "/dashboard")})
    assert answer.status_code == 303
    page = client.get("/dashboard")
    assert page.status_code == 200  # the workstation stays signed in for the next person
    assert "Alex Rivera" not in page.get_data(as_text=True).split("</header>")[0]


def test_removing_access_ends_the_persons_sessions_at_once(campus_app, session, groups):
    client = campus_app.test_client()
    assert sign_in(client, "alex").status_code == 303
    campus.refuse(session, person(session, "Alex Rivera").id)
    assert client.get("/dashboard").status_code == 302
    answer = sign_in(client, "alex")
    assert answer.status_code == 403 and "isn't open to you" in answer.get_data(as_text=True)
    assert person(session, "Alex Rivera").approval == "REFUSED"  # their group doesn't bring them back


def test_a_campus_persons_job_actions_are_attributed_to_them(campus_app, session, groups, storage):
    from .factories import make_job

    job = make_job(session, storage)  # its factory's staff member is "Alex Rivera", as labs keep a list
    client = campus_app.test_client()
    assert sign_in(client, "alex").status_code == 303
    assert person(session, "Alex Rivera").staff_name == "Alex Rivera"  # linked to that record
    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    fields = dict(re.findall(r'name="(expected_status|expected_version)" value="([^"]+)"', page))
    data = {"csrf_token": token, "notes": "Checked the wall thickness."} | fields
    answer = client.post(f"/jobs/{job.id}/notes", data=data)
    assert answer.status_code in (200, 303), answer.get_data(as_text=True)[:400]
    session.rollback()
    event = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "NotesUpdated")
    ).one()
    assert event.triggered_by == "Alex Rivera"


def test_a_student_opens_my_requests_with_their_campus_account(campus_app, session, storage):
    from .factories import make_job

    job = make_job(session, storage, student_email="Jo.Park@uni.example")
    client = campus_app.test_client()
    assert 'id="campus-student-sign-in"' in client.get("/my/sign-in").get_data(as_text=True)
    answer = sign_in(client, "jo", **{"for": "student"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/my")
    page = client.get("/my").get_data(as_text=True)
    assert job.display_name.split("_")[-1] in page or job.original_filename in page
    # A student is no staff member: no campus person, no staff record, no dashboard.
    assert session.scalars(select(CampusPerson)).first() is None
    assert client.get("/dashboard").status_code == 302


def test_a_student_account_without_a_confirmed_address_uses_the_email_link(campus_app):
    client = campus_app.test_client()
    answer = sign_in(client, "kim", **{"for": "student"})
    assert answer.status_code == 400
    assert "confirmed email address" in answer.get_data(as_text=True)
    page = answer.get_data(as_text=True)
    assert 'id="email-link-instead"' in page and "workstation password" not in page  # a student's ways on
    assert client.get("/my").status_code == 303  # back to asking for a link


# -- the rules and the service -----------------------------------------------------------------------


def test_claims_name_the_person_whatever_the_provider_calls_them():
    names = ClaimNames(name="name", email="preferred_username", groups="roles")
    identity = identity_from_claims(
        "https://login.example", {"sub": "abc", "name": " Alex  Rivera ", "preferred_username": "a@x.edu",
                                  "roles": ["g1", "g1", "g2", 7]}, names,
    )  # fmt: skip
    assert (identity.name, identity.email, identity.groups) == ("Alex Rivera", "a@x.edu", ("g1", "g2"))
    assert identity_from_claims("i", {"sub": "s", "email": "jo@x.edu"}, ClaimNames()).name == "jo"
    with pytest.raises(ClaimsProblem):
        identity_from_claims("i", {"name": "No Subject"}, ClaimNames())
    with pytest.raises(ClaimsProblem):
        identity_from_claims("i", {"sub": "s"}, ClaimNames())


def test_group_roles_are_checked_and_logged(session):
    make_staff(session)
    workstations.add_workstation(session, "ADMIN-PC", "a-long-password-1", is_admin=True)
    workstations.add_workstation(session, "LAB-PC", "a-long-password-1")
    with pytest.raises(ValidationError):
        campus.set_group_role(session, "", "STAFF", by=actor(STAFF, "ADMIN-PC"))
    with pytest.raises(ValidationError):
        campus.set_group_role(session, "g", "OWNER", by=actor(STAFF, "ADMIN-PC"))
    with pytest.raises(ValidationError):
        campus.set_group_role(session, "never-mapped", "", by=actor(STAFF, "ADMIN-PC"))
    with pytest.raises(NotAllowed):
        campus.set_group_role(session, "g", "STAFF", by=actor(STAFF, "LAB-PC"))
    campus.set_group_role(session, "g", "ADMIN", by=actor(STAFF, "ADMIN-PC"))
    assert campus.group_roles(session) == {"g": Role.ADMIN}
    campus.set_group_role(session, "g", "", by=actor(STAFF, "ADMIN-PC"))
    assert campus.group_roles(session) == {}


def test_two_people_with_one_name_get_two_staff_records(session, groups):
    from printlab.domain.campus import CampusIdentity

    first = campus.record_sign_in(
        session, CampusIdentity("i", "1", "Alex Rivera", "a1@x.edu", ("mkr-staff",))
    )
    second = campus.record_sign_in(
        session, CampusIdentity("i", "2", "Alex Rivera", "a2@x.edu", ("mkr-staff",))
    )
    assert first.staff_name == "Alex Rivera"
    assert second.staff_name == "Alex Rivera (a2@x.edu)"
    assert second.approval == Approval.APPROVED.value
    # Leaving the group takes the role away at the next sign-in.
    again = campus.record_sign_in(session, CampusIdentity("i", "2", "Alex Rivera", "a2@x.edu", ()))
    assert (again.role, again.approval) == ("NONE", "PENDING")


def test_campus_sign_in_settings_are_checked():
    from printlab.config import ConfigError

    base = {"PRINTLAB_INSTANCE_DIR": str(Path("/tmp") / "printlab-config-check")}
    with pytest.raises(ConfigError, match="PRINTLAB_OIDC_CLIENT_SECRET"):
        config_module.load(
            base | {"PRINTLAB_OIDC_ISSUER": "https://login.example", "PRINTLAB_OIDC_CLIENT_ID": "x"}
        )
    with pytest.raises(ConfigError, match="https"):
        config_module.load(base | {"PRINTLAB_OIDC_ISSUER": "http://login.example", "PRINTLAB_OIDC_CLIENT_ID": "x",
                                   "PRINTLAB_OIDC_CLIENT_SECRET": "y"})  # fmt: skip
    loaded = config_module.load(base | {"PRINTLAB_OIDC_ISSUER": "https://login.example",
                                        "PRINTLAB_OIDC_CLIENT_ID": "x", "PRINTLAB_OIDC_CLIENT_SECRET": "sh"})  # fmt: skip
    assert loaded.oidc is not None and "sh" not in repr(loaded)
