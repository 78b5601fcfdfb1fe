"""The web shell: /healthz with component states, plain error pages, security headers, cookie flags."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from flask import session as flask_session
from sqlalchemy import text
from sqlalchemy.engine import make_url

from printlab import config as config_module
from printlab.web.app import create_app

from .conftest import _admin_engine

SECRET_DETAIL = "kaboom-internal-detail-7f3a"


@pytest.fixture
def shell_app(app):  # type: ignore[no-untyped-def]
    """The app with two test-only routes: one that fails unexpectedly and one that sets a session."""

    @app.get("/_test/explode")
    def explode():  # type: ignore[no-untyped-def]
        raise RuntimeError(SECRET_DETAIL)

    @app.get("/_test/session")
    def set_session():  # type: ignore[no-untyped-def]
        flask_session["seen"] = True
        return "ok"

    # Behave as in production: an unexpected error becomes a page, it is not re-raised into the test.
    app.config["TESTING"] = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def _lab(app):  # type: ignore[no-untyped-def]
    return app.extensions["printlab"]


# -- /healthz ----------------------------------------------------------------------------------


def test_healthz_ok(signed_in_client, backend):
    response = signed_in_client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["components"]["database"]["status"] == "ok"
    assert body["components"]["database"]["backend"] == backend
    assert body["components"]["storage"]["status"] == "ok"


def _assert_down(response, component: str, other: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "down"
    assert body["components"][component]["status"] == "down"
    assert body["components"][other]["status"] == "ok"
    return body


def test_healthz_503_when_storage_root_is_removed(app, signed_in_client):
    root = _lab(app).storage.root
    shutil.rmtree(root)
    _assert_down(signed_in_client.get("/healthz"), "storage", "database")


def test_healthz_503_when_storage_root_is_replaced_by_a_file(app, signed_in_client):
    # Tests run as root, so chmod would not stop writes; a plain file where the folder was does.
    root = _lab(app).storage.root
    root.rename(root.with_name("moved-away"))
    root.write_text("not a folder")
    _assert_down(signed_in_client.get("/healthz"), "storage", "database")


def test_healthz_503_when_storage_cannot_be_written(app, signed_in_client):
    # A file where the root's temp folder belongs: the write probe fails though the root exists.
    root = _lab(app).storage.root
    shutil.rmtree(root / ".incoming")
    (root / ".incoming").write_text("in the way")
    _assert_down(signed_in_client.get("/healthz"), "storage", "database")


def _take_database_away(app, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """Make the app's configured database unreachable, the way an outage would."""
    engine = _lab(app).engine
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine.dispose()
        path = Path(url.database)
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        path.mkdir()  # a folder where the file was: SQLite can't open it (and won't create a new one)
        return
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{url.database}" WITH (FORCE)'))
    admin.dispose()


def test_healthz_503_when_database_is_down(app, signed_in_client, database_url):
    assert signed_in_client.get("/healthz").status_code == 200  # the pool holds a live connection first
    _take_database_away(app, database_url)
    body = _assert_down(signed_in_client.get("/healthz"), "database", "storage")
    assert body["components"]["database"]["error"]
    assert signed_in_client.get("/healthz").status_code == 503  # and stays down, nothing falls back


def test_healthz_tells_the_public_only_the_overall_state(client, signed_in_client):
    """A monitor needs up or down; which parts, versions and error texts are for the lab's own computers."""
    public = client.get("/healthz")
    assert public.status_code == 200 and public.get_json() == {"status": "ok"}
    assert set(signed_in_client.get("/healthz").get_json()["components"]) >= {"database", "storage"}


def test_healthz_hides_the_parts_when_the_database_is_down_too(app, client, database_url):
    _take_database_away(app, database_url)
    answer = client.get("/healthz")
    assert answer.status_code == 503 and answer.get_json() == {"status": "down"}


# -- error pages -------------------------------------------------------------------------------


def test_404_is_a_plain_html_page(client):
    response = client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<h1>Not found</h1>" in page
    assert "Traceback" not in page


def test_unexpected_error_is_a_500_page_without_details(shell_app, caplog):
    response = shell_app.test_client().get("/_test/explode", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "Something went wrong" in page
    for leak in (SECRET_DETAIL, "RuntimeError", "Traceback", 'File "'):
        assert leak not in page
    # The operator still gets the full story in the log.
    assert any(record.exc_info and SECRET_DETAIL in str(record.exc_info[1]) for record in caplog.records)


def test_unexpected_error_as_json_hides_details_too(shell_app):
    response = shell_app.test_client().get("/_test/explode", headers={"Accept": "application/json"})
    assert response.status_code == 500
    assert response.get_json()["error"] == "Something went wrong"
    assert SECRET_DETAIL not in response.get_data(as_text=True)


# -- headers and cookies -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/no/such/page", "/_test/explode", "/_test/session"])
def test_security_headers_on_every_response(shell_app, path):
    response = shell_app.test_client().get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'self'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] in (
        "same-origin",
        "no-referrer",
        "strict-origin-when-cross-origin",
    )


def _session_cookie(app) -> str:  # type: ignore[no-untyped-def]
    response = app.test_client().get("/_test/session")
    assert response.status_code == 200
    name = app.config["SESSION_COOKIE_NAME"]
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    assert len(cookies) == 1
    return cookies[0]


def test_session_cookie_is_httponly_and_samesite(shell_app):
    cookie = _session_cookie(shell_app)
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in flags
    assert "samesite=lax" in flags or "samesite=strict" in flags
    assert "secure" not in flags  # base URL is http:// here; see the https test below


def test_session_cookie_is_secure_behind_https(lab_env):
    app = create_app(
        {"TESTING": True}, config=config_module.load(lab_env, PRINTLAB_BASE_URL="https://lab.test")
    )
    try:

        @app.get("/_test/session")
        def set_session():  # type: ignore[no-untyped-def]
            flask_session["seen"] = True
            return "ok"

        flags = [part.strip().lower() for part in _session_cookie(app).split(";")]
        assert {"httponly", "secure"} <= set(flags)
    finally:
        _lab(app).engine.dispose()


def _cookie_flags_and_warnings(environ: dict[str, str], caplog) -> tuple[set[str], list[str]]:  # type: ignore[no-untyped-def]
    """The session cookie's flags, and the warnings logged while the app started."""
    caplog.clear()
    with caplog.at_level("WARNING"):
        app = create_app({"TESTING": True}, config=config_module.load(environ))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    try:

        @app.get("/_test/session")
        def set_session():  # type: ignore[no-untyped-def]
            flask_session["seen"] = True
            return "ok"

        return {part.strip().lower() for part in _session_cookie(app).split(";")}, warnings
    finally:
        _lab(app).engine.dispose()


def test_production_session_cookie_is_secure_without_a_base_url(lab_env, caplog):
    environ = {k: v for k, v in lab_env.items() if k != "PRINTLAB_BASE_URL"} | {"PRINTLAB_ENV": "production"}
    flags, warnings = _cookie_flags_and_warnings(environ, caplog)
    assert "secure" in flags
    assert not [w for w in warnings if "PRINTLAB_BASE_URL" in w]


def test_production_on_plain_http_warns_and_drops_secure(lab_env, caplog):
    environ = lab_env | {"PRINTLAB_ENV": "production", "PRINTLAB_BASE_URL": "http://print.example.edu"}
    flags, warnings = _cookie_flags_and_warnings(environ, caplog)
    assert "secure" not in flags  # a lab that really serves plain HTTP can still sign in
    assert any("PRINTLAB_BASE_URL" in w and "http://" in w and "Secure" in w for w in warnings), warnings
