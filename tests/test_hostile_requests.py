"""Every route, probed with hostile values, answers 4xx, never 5xx: anonymous, staff and admin alike.

The probe walks the app's url_map, so a route added later is probed too. Each path argument is
tried with a real value and with hostile ones; each query or form parameter the app reads (found in
the web layer's source and in the forms the pages render) is sent with hostile values, alone when
the view names it and all together.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import OutboxMessage
from printlab.services.jobs.references import make_reference
from printlab.services.lab import workstations
from printlab.services.printers import fleet

from .factories import STAFF, make_job, make_staff, quote_token

SRC = Path(__file__).resolve().parents[1] / "src" / "printlab"
ADMIN, STAFF_PC, PASSWORD = "ADMIN-PC", "LAB-PC-1", "a-long-password-1"
OTHER = "Sam Chen"

#: NUL inside text, integers beyond any column, dates at the ends of the calendar, a number no
#: column holds, and a string far longer than any field.
HOSTILE = (
    "a\x00b",
    "99999999999999999999",
    "-99999999999999999999",
    "9999-12-31",
    "0001-01-01",
    "1e-400",
    "x" * 5000,
)
#: The values each parameter a view names is also sent alone (the others go all together).
ONE_BY_ONE = ("a\x00b", "99999999999999999999", "9999-12-31", "1e-400")
#: Routes that end the session the probe needs.
SKIP = {"auth.logout"}
_PARAM = re.compile(r"""\.(?:get|getlist)\(\s*["']([A-Za-z_][\w-]*)["']""")
_INPUT = re.compile(r"""\bname="([A-Za-z_][\w-]*)\"""")


def _source_names() -> set[str]:
    names: set[str] = set()
    files = [
        *(SRC / "web").rglob("*.py"),
        SRC / "services/views/dashboard.py",
        SRC / "domain/catalog_edit.py",
    ]
    for path in files:
        names.update(_PARAM.findall(path.read_text()))
    for path in (SRC / "web").rglob("*.html"):
        names.update(_INPUT.findall(path.read_text()))
    return names - {"csrf_token"}


def _view_names(app: Flask, endpoint: str) -> set[str]:
    view = inspect.unwrap(app.view_functions[endpoint])
    try:
        return set(_PARAM.findall(inspect.getsource(view)))
    except (OSError, TypeError):
        return set()


@pytest.fixture
def probe_app(lab_env: dict[str, str]) -> Iterator[Flask]:
    from printlab.web.app import create_app

    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        config=config_module.load(lab_env),
    )
    yield app
    app.extensions["printlab"].engine.dispose()


@pytest.fixture
def lab_state(session, storage) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A job in each of a few statuses, a quote link, an email, and two workstations to sign in with."""
    uploaded = make_job(session, storage, Status.UPLOADED)
    pending = make_job(session, storage, Status.PENDING, student_email="other@example.edu")
    printing = make_job(session, storage, Status.PRINTING, student_email="third@example.edu")
    make_staff(session, OTHER)
    workstations.add_workstation(session, ADMIN, PASSWORD, is_admin=True)
    workstations.add_workstation(session, STAFF_PC, PASSWORD)
    outbox_id = session.query(OutboxMessage.id).order_by(OutboxMessage.id).first()[0]
    printer = fleet.add_printer(session, {"name": "Prusa MK4S", "connection": "NONE"}, secret="x" * 40)
    return {
        "job_id": uploaded.id,
        "pending_id": pending.id,
        "printing_id": printing.id,
        "token": quote_token(session, pending.id),
        "outbox_id": str(outbox_id),
        "name": OTHER,  # the one the probe may deactivate; STAFF stays the one acting
        "workstation_id": STAFF_PC,
        "section": "disciplines",
        "printer_id": str(printer.id),
    }


def _client(app: Flask, workstation: str | None) -> FlaskClient:
    client = app.test_client()
    if workstation:
        response = client.post("/login", data={"workstation": workstation, "password": PASSWORD})
        assert response.status_code == 303
    return client


def _real_value(app: Flask, argument: str, state: dict[str, str]) -> str:
    if argument == "reference":
        return make_reference(app.extensions["printlab"].config.secret_key, state["job_id"])
    if argument == "action":
        return "reject"
    return state.get(argument, "x")


def _urls(app: Flask, rule: Any, state: dict[str, str]) -> list[str]:
    """The rule with real arguments, then with each argument replaced by each hostile value."""
    real = {argument: _real_value(app, argument, state) for argument in rule.arguments}
    variants = [real]
    for argument in rule.arguments:
        variants += [{**real, argument: value} for value in HOSTILE]
    urls = []
    for values in variants:
        path = rule.rule
        for argument, value in values.items():
            path = re.sub(rf"<(?:\w+(?:\([^)]*\))?:)?{argument}>", _quote(value), path)
        urls.append(path)
    return urls


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _probe(
    app: Flask, client: FlaskClient, state: dict[str, str], *, thorough: bool, defaults: dict[str, str]
) -> list[str]:
    everything = _source_names()
    failures: list[str] = []

    def send(method: str, url: str, params: dict[str, str]) -> None:
        post = method == "POST"
        response = client.post(url, data=params) if post else client.get(url, query_string=params)
        response.close()  # a file download holds its file open until then
        if response.status_code >= 500:
            shown = {k: v[:20] for k, v in params.items()} if len(params) < 4 else "(all parameters)"
            failures.append(f"{method} {url[:120]} {shown!r} -> {response.status_code}")

    for rule in app.url_map.iter_rules():
        if rule.endpoint in SKIP or rule.endpoint == "static" or rule.endpoint.endswith(".static"):
            continue
        methods = sorted((rule.methods or set()) & {"GET", "POST"})
        own = _view_names(app, rule.endpoint)
        for method in methods:
            urls = _urls(app, rule, state)
            for url in urls:
                send(method, url, {})
            url = urls[0]
            for value in HOSTILE:
                send(method, url, dict.fromkeys(everything, value))
                if thorough and value in ONE_BY_ONE:
                    for name in sorted(own):
                        # The rest as a person would send it, so the hostile value is what's checked.
                        send(method, url, {**defaults, name: value})
    return failures


@pytest.mark.parametrize("who", ["anonymous", "staff", "admin"])
def test_no_route_answers_a_hostile_request_with_a_server_error(probe_app, lab_state, who):
    workstation = {"anonymous": None, "staff": STAFF_PC, "admin": ADMIN}[who]
    client = _client(probe_app, workstation)
    # Signed in, each parameter is sent with a staff member acting, so "Choose who is acting" doesn't
    # answer first.
    defaults = {"acting_as": STAFF} if workstation else {}
    failures = _probe(probe_app, client, lab_state, thorough=who != "staff", defaults=defaults)
    assert not failures, "\n".join(failures)


# -- the field trial's own requests, each with the answer it should get ------------------------------


def test_the_field_trials_requests_get_clear_answers(probe_app, lab_state):
    admin = _client(probe_app, ADMIN)
    dates = admin.get("/api/v1/jobs", query_string={"to": "9999-12-31", "from": "0001-01-01"})
    assert dates.status_code == 200
    assert dates.get_json()["errors"] == {
        "to": "Use a date between the years 2000 and 2999.",
        "from": "Use a date between the years 2000 and 2999.",
    }
    search = admin.get("/api/v1/jobs", query_string={"q": "Jane\x00"})
    assert search.status_code == 200 and "q" in search.get_json()["errors"]
    assert admin.get("/jobs/%00").status_code == 404
    assert admin.get("/admin/jobs/%00/override").status_code == 404
    assert admin.get("/admin/mail", query_string={"page": "99999999999999999999"}).status_code == 200
    assert admin.get("/admin/log", query_string={"before": "99999999999999999999"}).status_code == 200
    assert admin.post("/admin/mail/99999999999999999999/retry").status_code == 404
    assert admin.post("/jobs/x/emails/99999999999999999999/retry").status_code == 404
    sign_in = probe_app.test_client().post("/login", data={"workstation": "LAB\x00PC", "password": PASSWORD})
    assert sign_in.status_code == 401
    assert "That workstation name and password don't match." in html.unescape(sign_in.get_data(as_text=True))
