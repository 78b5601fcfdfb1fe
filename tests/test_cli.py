"""The `printlab` command: init, migrations, staff, workstations, demo data, refusals, and serving with waitress."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, inspect, select

from printlab.config import SETTINGS
from printlab.db import make_engine, schema_is_current, session_factory
from printlab.domain.statuses import STATUS_FOLDERS, Status
from printlab.models import AccountCode, AdminLogEntry, Job, Payment, Staff, Workstation
from printlab.services.errors import NotAllowed
from printlab.services.files.storage import Storage
from printlab.services.lab import workstations
from printlab.services.lab.actors import CONSOLE_ACTOR

from .servers import free_port

PRINTLAB = Path(sys.executable).with_name("printlab")


def _clean_env(values: dict[str, str]) -> dict[str, str | None]:
    """Exactly these PRINTLAB_* settings: whatever the developer's shell exports is unset."""
    return {s.env: None for s in SETTINGS} | values


def run(env: dict[str, str], *args: str) -> Result:
    from printlab.cli import main

    return CliRunner().invoke(main, list(args), env=_clean_env(env), catch_exceptions=False)


def assert_one_line_error(result: Result) -> str:
    assert result.exit_code == 1
    error = result.stderr.strip()
    assert error.startswith("printlab: ")
    assert "\n" not in error
    assert "Traceback" not in result.output
    return error


@pytest.fixture
def db(database_url) -> Iterator:  # type: ignore[type-arg]
    """A fresh session per question, so the test sees what the command committed."""
    engine = make_engine(database_url)
    sessions = session_factory(engine)

    def open_session():  # type: ignore[no-untyped-def]
        return sessions()

    yield open_session
    engine.dispose()


# -- init and migrations -----------------------------------------------------------------------


def test_init_creates_the_status_folders_and_migrates(empty_database_url, lab_env, tmp_path):
    storage_root = tmp_path / "fresh-storage"
    env = lab_env | {"PRINTLAB_DATABASE_URL": empty_database_url, "PRINTLAB_STORAGE_DIR": str(storage_root)}
    result = run(env, "init")
    assert result.exit_code == 0, result.output
    assert "Database ready" in result.output
    for folder in STATUS_FOLDERS:
        assert (storage_root / folder).is_dir()
    engine = make_engine(empty_database_url)
    try:
        assert schema_is_current(engine)
        assert {"staff", "job", "event"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert run(env, "init").exit_code == 0  # running it again is harmless


def test_db_upgrade_migrates_an_empty_database(empty_database_url, lab_env):
    result = run(lab_env | {"PRINTLAB_DATABASE_URL": empty_database_url}, "db", "upgrade")
    assert result.exit_code == 0, result.output
    engine = make_engine(empty_database_url)
    try:
        assert schema_is_current(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://postgres:hunter2@127.0.0.1:1/nope",
            "postgresql+psycopg://postgres:***@127.0.0.1:1/nope",
        ),
        ("sqlite:////nonexistent-dir/x.db", "sqlite:////nonexistent-dir/x.db"),
    ],
)
@pytest.mark.parametrize("command", [("init",), ("db", "upgrade"), ("staff", "list")])
def test_unreachable_database_is_a_one_line_refusal(tmp_path, url, shown, command):
    env = {
        "PRINTLAB_DATABASE_URL": url,
        "PRINTLAB_INSTANCE_DIR": str(tmp_path / "instance"),
        "PRINTLAB_STORAGE_DIR": str(tmp_path / "storage"),
    }
    error = assert_one_line_error(run(env, *command))
    assert shown in error
    assert "hunter2" not in error
    assert not (tmp_path / "instance" / "printlab.db").exists()  # no fallback to the embedded file
    assert not Path("/nonexistent-dir").exists()


# -- staff -------------------------------------------------------------------------------------


def test_staff_add_list_deactivate_reactivate(lab_env, db):
    assert run(lab_env, "staff", "add", "Alex Rivera").exit_code == 0
    assert run(lab_env, "staff", "add", "Sam  Okafor").exit_code == 0  # whitespace is tidied
    listed = run(lab_env, "staff", "list").output.splitlines()
    assert listed == ["Alex Rivera\tactive", "Sam Okafor\tactive"]

    result = run(lab_env, "staff", "deactivate", "Sam Okafor")
    assert result.exit_code == 0, result.output
    with db() as session:
        assert session.get(Staff, "Sam Okafor").is_active is False
        assert session.get(Staff, "Sam Okafor").deactivated_at is not None
    assert run(lab_env, "staff", "list").output.splitlines() == ["Alex Rivera\tactive"]
    every = run(lab_env, "staff", "list", "--all").output.splitlines()
    assert every[0] == "Alex Rivera\tactive"
    assert re.fullmatch(r"Sam Okafor\tinactive since \d{4}-\d{2}-\d{2}", every[1])

    assert run(lab_env, "staff", "reactivate", "Sam Okafor").exit_code == 0
    with db() as session:
        member = session.get(Staff, "Sam Okafor")
        assert (member.is_active, member.deactivated_at) == (True, None)
    assert "Sam Okafor\tactive" in run(lab_env, "staff", "list").output.splitlines()


def test_staff_duplicate_add_is_a_one_line_error(lab_env, db):
    assert run(lab_env, "staff", "add", "Alex Rivera").exit_code == 0
    error = assert_one_line_error(run(lab_env, "staff", "add", "Alex Rivera"))
    assert "already" in error
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Staff)) == 1


def test_staff_deactivate_unknown_is_a_one_line_error(lab_env):
    assert "Nobody Here" in assert_one_line_error(run(lab_env, "staff", "deactivate", "Nobody Here"))


# -- workstations ------------------------------------------------------------------------------


def test_workstation_add_admin_prints_a_password_that_signs_in(lab_env, db):
    result = run(lab_env, "workstation", "add", "FrontDesk", "--admin")
    assert result.exit_code == 0, result.output
    password = re.search(r"^Password: (\S+)$", result.output, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert len(password) >= workstations.MIN_PASSWORD
    with db() as session:
        station = workstations.verify_sign_in(session, "FrontDesk", password)
        assert station is not None and station.is_admin is True
        assert workstations.verify_sign_in(session, "FrontDesk", password + "x") is None


def test_workstation_add_with_a_chosen_password(lab_env, db):
    result = run(lab_env, "workstation", "add", "LAB-PC-2", "--password", "correct horse battery")
    assert result.exit_code == 0, result.output
    assert "correct horse battery" not in result.output  # a chosen password is not echoed back
    with db() as session:
        station = workstations.verify_sign_in(session, "LAB-PC-2", "correct horse battery")
        assert station is not None and station.is_admin is False


def test_workstation_add_refuses_a_short_password(lab_env, db):
    error = assert_one_line_error(run(lab_env, "workstation", "add", "LAB-PC-3", "--password", "short"))
    assert str(workstations.MIN_PASSWORD) in error
    with db() as session:
        assert session.get(Workstation, "LAB-PC-3") is None


def test_workstation_deactivate_and_reactivate(lab_env, db):
    assert (
        run(lab_env, "workstation", "add", "LAB-PC-4", "--password", "correct horse battery").exit_code == 0
    )
    with db() as session:
        epoch = session.get(Workstation, "LAB-PC-4").session_epoch
    result = run(lab_env, "workstation", "deactivate", "LAB-PC-4")
    assert result.exit_code == 0, result.output
    assert "LAB-PC-4 is deactivated" in result.output
    with db() as session:
        station = session.get(Workstation, "LAB-PC-4")
        assert station.is_active is False and station.session_epoch > epoch  # its sessions have ended
        with pytest.raises(NotAllowed, match="deactivated"):
            workstations.verify_sign_in(session, "LAB-PC-4", "correct horse battery")
        logged = session.scalars(select(AdminLogEntry).order_by(AdminLogEntry.id.desc())).first()
        assert (logged.action, logged.triggered_by, logged.workstation_id) == (
            "WorkstationDeactivated", CONSOLE_ACTOR.staff, CONSOLE_ACTOR.workstation,
        )  # fmt: skip
    result = run(lab_env, "workstation", "reactivate", "LAB-PC-4")
    assert result.exit_code == 0, result.output
    assert "LAB-PC-4 is active again" in result.output
    with db() as session:
        assert workstations.verify_sign_in(session, "LAB-PC-4", "correct horse battery") is not None


def test_workstation_deactivate_unknown_is_a_one_line_error(lab_env):
    assert "NO-SUCH-PC" in assert_one_line_error(run(lab_env, "workstation", "deactivate", "NO-SUCH-PC"))
    assert "NO-SUCH-PC" in assert_one_line_error(run(lab_env, "workstation", "reactivate", "NO-SUCH-PC"))


def test_workstation_sign_in_again_from_the_console(lab_env, db):
    """When every admin workstation is the one locked out, the console lets it in again."""
    from printlab.domain import sign_in as rules
    from printlab.services.lab import sign_in_guard

    assert (
        run(lab_env, "workstation", "add", "LAB-PC-5", "--password", "correct horse battery").exit_code == 0
    )
    with db() as session:
        for _ in range(rules.FREE_TRIES):
            sign_in_guard.record_failure(session, "LAB-PC-5", "10.0.0.66")
        assert sign_in_guard.wait_for(session, "LAB-PC-5", "10.0.0.66") is not None
    result = run(lab_env, "workstation", "sign-in-again", "LAB-PC-5")
    assert result.exit_code == 0, result.output
    assert "LAB-PC-5 can be signed in to again (1 address(es) were waiting)" in result.output
    with db() as session:
        assert sign_in_guard.wait_for(session, "LAB-PC-5", "10.0.0.66") is None
    assert "NO-SUCH-PC" in assert_one_line_error(run(lab_env, "workstation", "sign-in-again", "NO-SUCH-PC"))


# -- demo --------------------------------------------------------------------------------------


def _signin(output: str) -> tuple[str, str]:
    station = re.search(r"workstation:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    password = re.search(r"password:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    return station, password


def test_demo_loads_jobs_in_every_status_once(lab_env, db):
    result = run(lab_env, "demo")
    assert result.exit_code == 0, result.output
    station, password = _signin(result.output)
    storage = Storage(lab_env["PRINTLAB_STORAGE_DIR"])
    with db() as session:
        jobs = session.scalars(select(Job)).all()
        assert 18 <= len(jobs) <= 25
        assert {job.status for job in jobs} == {s.value for s in Status}
        for job in jobs:
            assert storage.resolve(job.file_path).is_file(), job.file_path
            assert storage.resolve(job.metadata_path).is_file(), job.metadata_path
        assert workstations.verify_sign_in(session, station, password) is not None
        count = len(jobs)
        # pickups paid in several ways, one by internal transfer with a discount and one waived
        paid = session.scalars(select(Payment).where(Payment.kind == "CHARGE")).all()
        assert {p.method for p in paid} == {"CASH", "ACCOUNT", "WAIVER"}
        assert all(p.reason for p in paid if p.discount_usd)
        codes = {c.code: c.is_active for c in session.scalars(select(AccountCode))}
        assert codes["ENG-1042"] and codes["ART-2019"] is False

    again = run(lab_env, "demo")
    assert again.exit_code == 0, again.output
    station_again, new_password = _signin(again.output)
    with db() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == count
        assert station_again == station
        assert workstations.verify_sign_in(session, station, new_password) is not None


# -- serve -------------------------------------------------------------------------------------


def test_demo_on_a_busy_port_says_so_in_one_line(lab_env, tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")} | lab_env
    env.pop("PRINTLAB_BASE_URL")
    try:
        done = subprocess.run(
            [str(PRINTLAB), "demo", "--serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        busy.close()
    assert done.returncode == 1
    assert "running at" not in done.stdout
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("printlab:")]
    assert errors == [f"printlab: port {port} is already in use; choose another with --port or PRINTLAB_PORT"]


def test_demo_prints_where_to_sign_in_last_with_its_own_port(lab_env, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")} | lab_env
    env.pop("PRINTLAB_BASE_URL")
    out = tmp_path / "demo.out"
    with open(out, "wb") as output:
        process = subprocess.Popen(
            [str(PRINTLAB), "demo", "--serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.PIPE,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "password:" not in out.read_text():
            assert process.poll() is None, out.read_text()
            time.sleep(0.2)
        time.sleep(1)  # anything the server or worker prints after starting
        lines = out.read_text().splitlines()
        assert lines[-4:-2] == [
            f"PrintLab is running at http://127.0.0.1:{port}/  (Ctrl+C stops it)",
            f"Sign in at http://127.0.0.1:{port}/login",
        ]
        assert lines[-2].startswith("  workstation: ") and lines[-1].startswith("  password: ")
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
    # Quiet, readable logs: no JSON lines pushing the password off the screen.
    assert not [line for line in errors.decode().splitlines() if line.startswith("{")]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def _malformed_request(port: int) -> bytes:
    """A request the HTTP server rejects before the app sees it; waitress signs such error pages."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_serve_answers_healthz_with_waitress(lab_env, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")} | lab_env
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(PRINTLAB), "serve", "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status, headers, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200, log.read_text()
        assert json.loads(body) == {"status": "ok"}  # anonymous: the overall state only
        # `serve` passes ident="PrintLab" to waitress: the Server header and waitress's own signed error
        # page (Werkzeug's dev server would say "Werkzeug/…" and answer an HTML page).
        assert headers["Server"] == "PrintLab"
        assert _malformed_request(port).endswith(b"\r\n\r\n(generated by PrintLab)")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
