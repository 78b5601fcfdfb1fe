"""The database gone while PrintLab runs: every page still answers with PrintLab's own error page.

The SQLite file is removed (a new connection finds no tables), or the PostgreSQL database is dropped
(its connections are cut and a new one is refused). Signed-in pages used to fall through to the bare
server error page, because rendering the error page looked up the signed-in workstation again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.services.lab import workstations

from .conftest import _admin_engine
from .factories import make_job, make_staff

ADMIN_PC, PASSWORD = "ADMIN-PC", "a-long-password-1"


@pytest.fixture
def web(lab_env, session):
    from printlab.web.app import create_app

    # Exceptions handled as in production (a test app would otherwise re-raise them to the test).
    app = create_app(
        {"TESTING": True, "WTF_CSRF_ENABLED": False, "PROPAGATE_EXCEPTIONS": False},
        config=config_module.load(lab_env),
    )
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    yield app
    app.extensions["printlab"].engine.dispose()


def lose_the_database(app, database_url: str, session) -> None:  # type: ignore[no-untyped-def]
    session.close()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        app.extensions["printlab"].engine.dispose()  # the next request opens a new connection
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        return
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    admin.dispose()


def assert_printlab_error_page(response, url: str) -> None:  # type: ignore[no-untyped-def]
    body = response.get_data(as_text=True)
    assert response.status_code in (500, 503), (url, response.status_code)
    assert "· PrintLab</title>" in body, (url, body[:300])
    assert "Traceback" not in body and "sqlalchemy" not in body.lower() and "psycopg" not in body, url
    assert "database" in body.lower(), (url, body[:600])


def test_every_page_answers_with_printlabs_own_page_when_the_database_is_gone(
    web, session, storage, database_url
):
    job = make_job(session, storage, Status.PENDING)
    signed_in = web.test_client()
    assert signed_in.post("/login", data={"workstation": ADMIN_PC, "password": PASSWORD}).status_code == 303
    assert signed_in.get("/dashboard").status_code == 200
    lose_the_database(web, database_url, session)

    pages = [
        "/dashboard",
        f"/jobs/{job.id}",
        f"/jobs/{job.id}/act/approve",
        f"/jobs/{job.id}/files/{job.file_path.rsplit('/', 1)[-1]}",
        "/admin",
        "/admin/health",
        "/admin/integrity",
    ]
    for url in pages:
        assert_printlab_error_page(signed_in.get(url), url)
    posted = signed_in.post(f"/jobs/{job.id}/notes", data={"notes": "x", "acting_as": "Alex Rivera"})
    assert_printlab_error_page(posted, "notes")
    anonymous = web.test_client()
    for url in ("/", "/login"):
        assert anonymous.get(url).status_code == 200, url  # they need no database
    assert_printlab_error_page(anonymous.get("/submit"), "/submit")
    login = anonymous.post("/login", data={"workstation": ADMIN_PC, "password": PASSWORD})
    assert_printlab_error_page(login, "sign-in")
    api = signed_in.get("/api/v1/jobs")
    assert api.status_code == 503 and api.mimetype == "application/problem+json"
    assert "database" in api.get_json(force=True)["detail"]
