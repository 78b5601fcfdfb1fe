"""Test fixtures: every database test runs on SQLite and on PostgreSQL, each in a fresh migrated database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from printlab import config as config_module
from printlab.db import make_engine, session_factory, upgrade
from printlab.services.files.storage import Storage

from .servers import WORKER, OctoPrintServer

#: Real files made by CAD programs, mesh libraries and slicers, kept in the repository.
#: MANIFEST.tsv there gives each file's source and verified facts; LICENSES.md their licences.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODELS = FIXTURES / "models"
SLICED = FIXTURES / "sliced"

#: The system's Chromium, driven by Playwright (its own browser download isn't used).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def launch_chromium(playwright):  # type: ignore[no-untyped-def]
    """Start the system Chromium; a missing browser fails the test (browser tests never skip)."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is required for the browser tests and was not found at {CHROMIUM}")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """One Chromium for the whole run: Playwright's sync API allows one driver per process."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


#: Which databases the suite runs on. CI runs both; PostgreSQL missing is a failure, not a skip.
BACKENDS = [
    b.strip() for b in os.environ.get("PRINTLAB_TEST_BACKENDS", "sqlite,postgresql").split(",") if b.strip()
]
POSTGRES_ADMIN_URL = os.environ.get(
    "PRINTLAB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the cores. Many tests spend their time waiting — on Chromium, on a
    child `printlab serve`, on OctoPrint printing — and the extra worker keeps the cores busy meanwhile
    (on 2 cores the suite takes about 21 minutes with 3 workers against 25 with 2)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A function that looks like a test but lacks its prefix would silently never run.
    for item in items:
        module = getattr(item, "module", None)
        if module is None:
            continue
        for name, value in vars(module).items():
            if (
                callable(value)
                and name.startswith(("tset_", "tets_", "Test_"))
                and not name.startswith("test_")
            ):
                raise pytest.UsageError(
                    f"{module.__name__}.{name} looks like a test without the test_ prefix"
                )


# -- databases ---------------------------------------------------------------------------------


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _pg_url(database: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A migrated PostgreSQL database that each test clones (CREATE DATABASE … TEMPLATE is ~60 ms).

    One per pytest-xdist worker, named after it: each worker migrates and drops its own on its own
    schedule (PostgreSQL refuses to copy a template while anyone is connected to it).
    """
    name = f"printlab_tpl_{WORKER}_{os.getpid()}"
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()}: {exc}. "
            "Start it (see .ci/run) or set PRINTLAB_TEST_BACKENDS=sqlite to run on SQLite only."
        )
    upgrade(_pg_url(name))
    yield name
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated, empty database for this test, on the parametrised backend."""
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "printlab.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    with _fresh_postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A reachable database with no tables at all (not migrated), on the parametrised backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with _fresh_postgres_database() as url:
        yield url


@contextmanager
def _fresh_postgres_database(template: str | None = None) -> Iterator[str]:
    name = f"printlab_t_{WORKER}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    try:
        yield _pg_url(name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    with session_factory(engine)() as session:
        yield session


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    storage = Storage(tmp_path / "storage")
    storage.ensure_folders()
    return storage


@pytest.fixture
def lab_env(database_url: str, storage: Storage, tmp_path: Path) -> dict[str, str]:
    """Environment variables for an app or a child process pointed at this test's database and storage."""
    return {
        "PRINTLAB_DATABASE_URL": database_url,
        "PRINTLAB_STORAGE_DIR": str(storage.root),
        "PRINTLAB_MAIL_DIR": str(tmp_path / "mail"),
        "PRINTLAB_INSTANCE_DIR": str(tmp_path / "instance"),
        "PRINTLAB_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "PRINTLAB_BASE_URL": "http://printlab.test",
    }


@pytest.fixture
def app(lab_env: dict[str, str]):  # type: ignore[no-untyped-def]
    from printlab.web.app import create_app

    app = create_app({"TESTING": True}, config=config_module.load(lab_env))
    yield app
    app.extensions["printlab"].engine.dispose()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


#: The workstation `signed_in_client` signs in with.
HEALTH_PC, HEALTH_PC_PASSWORD = "HEALTH-PC", "a-long-password-for-health"


def sign_in_client(client, session, workstation: str = HEALTH_PC, password: str = HEALTH_PC_PASSWORD):  # type: ignore[no-untyped-def]
    """Sign a test client in through the real /login form (CSRF token included when the app wants one)."""
    import re

    from printlab.models import Workstation
    from printlab.services.lab import workstations

    if session.get(Workstation, workstation) is None:
        workstations.add_workstation(session, workstation, password)
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    data = {"workstation": workstation, "password": password} | (
        {"csrf_token": token.group(1)} if token else {}
    )
    answer = client.post("/login", data=data)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:300]
    return client


@pytest.fixture
def signed_in_client(app, session):  # type: ignore[no-untyped-def]
    """A test client signed in on a lab workstation (sees /healthz's component details)."""
    return sign_in_client(app.test_client(), session)


# -- printers ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def octoprint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OctoPrintServer]:
    """One real OctoPrint with its Virtual Printer for this test process (started once, ~3 s).

    Tests leave it idle; a test that stops or breaks OctoPrint starts one of its own instead.
    """
    server = OctoPrintServer(tmp_path_factory.mktemp("octoprint")).start()
    yield server
    server.stop()
