"""Rate limits are shared by every web process when their counters live in Redis, and hold without it."""

from __future__ import annotations

import io
import time

import pytest
import redis
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services.lab import workstations

from .conftest import BACKENDS, MODELS, sign_in_client
from .factories import form, make_job, quote_token, set_per_hour
from .servers import RedisServer, worker_number

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"


#: The machine's Redis database this pytest-xdist worker counts in (1–15; a lab's PrintLab uses 0):
#: workers running these tests at the same time neither share counters nor clear each other's.
MACHINE_REDIS_DB = 1 + worker_number() % 15


def two_apps_sharing_the_machines_redis(lab_env):  # type: ignore[no-untyped-def]
    """Two app processes' worth of apps counting in the machine's Redis, from clean counters."""
    from printlab.web.app import create_app

    env = lab_env | {"PRINTLAB_RATELIMIT_STORAGE": f"redis://127.0.0.1:6379/{MACHINE_REDIS_DB}"}
    with redis.Redis(host="127.0.0.1", port=6379, db=MACHINE_REDIS_DB) as server:
        for key in server.scan_iter("*LIMITER*"):  # the limiter's keys all contain LIMITER
            server.delete(key)
    return [
        create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(env)) for _ in range(2)
    ]  # fmt: skip


def test_two_app_processes_share_the_sign_in_limit(lab_env, session):
    workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
    apps = two_apps_sharing_the_machines_redis(lab_env)
    try:
        clients = [app.test_client() for app in apps]
        # Different names each time: wrong passwords for one workstation slow that computer down on
        # their own (test_sign_in_throttle.py); this is the per-address limit on sign-in forms.
        statuses = [
            clients[i % 2]
            .post("/login", data={"workstation": f"NO-SUCH-PC-{i}", "password": "x"})
            .status_code
            for i in range(10)
        ]
        assert statuses == [401] * 10
        # The eleventh try, on the other "process", is refused: the counter is shared.
        refused = clients[1].post("/login", data={"workstation": "LAB-PC-1", "password": "a-long-password-1"})
        assert refused.status_code == 429 and b"Too many attempts" in refused.data
    finally:  # a failed assertion must not leave the apps' connections open
        for app in apps:
            app.extensions["printlab"].engine.dispose()


# -- Redis going away --------------------------------------------------------------------------


def _wrong(n: int) -> dict[str, str]:
    return {"workstation": f"NO-SUCH-PC-{n}", "password": "not-the-password"}


#: A failure bound for waiting on recovery, never a timing assertion.
RECOVERY_BOUND_S = 120


def _from(address: str) -> dict[str, dict[str, str]]:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _submit(client, email: str):  # type: ignore[no-untyped-def]
    fields = form(student_email=email)
    fields["file"] = FileStorage(io.BytesIO(CUBE.read_bytes()), filename=CUBE.name)
    boundary, body = encode_multipart(fields)
    return client.post("/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}")


def _limiter_keys(server: RedisServer) -> list[bytes]:
    connection = redis.Redis(host="127.0.0.1", port=server.port)
    try:
        return list(connection.scan_iter("*LIMITER*"))
    finally:
        connection.close()


# Redis is what this is about; one database backend is enough.
@pytest.mark.parametrize("backend", BACKENDS[:1])
def test_redis_down_degrades_rate_limits_and_recovers(lab_env, session, storage, tmp_path, caplog):
    from printlab.web.app import create_app

    server = RedisServer(tmp_path / "redis")
    server.start()
    app = None
    try:
        workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
        job = make_job(session, storage, Status.PENDING)
        token = quote_token(session, job.id)
        env = lab_env | {"PRINTLAB_RATELIMIT_STORAGE": server.url}
        app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(env))
        client = app.test_client()
        monitor = sign_in_client(app.test_client(), session)  # a lab computer sees each part's state
        health = monitor.get("/healthz").get_json()
        assert (health["status"], health["components"]["rate_limits"]["status"]) == ("ok", "ok")

        server.stop()
        with caplog.at_level("WARNING"):
            signed_in = client.post(
                "/login", data={"workstation": "LAB-PC-1", "password": "a-long-password-1"}
            )
            submitted = _submit(client, "student@example.edu")
            confirmed = client.post(f"/confirm/{token}")
        assert signed_in.status_code == 303
        assert submitted.status_code == 303, submitted.get_data(as_text=True)
        assert confirmed.status_code == 200 and "Traceback" not in confirmed.get_data(as_text=True)
        session.rollback()  # a fresh look: SQLite would still show this session's snapshot
        assert session.get(Job, job.id).status == Status.READYTOPRINT.value
        # The operator is told, in the log.
        assert any(r.levelname == "WARNING" and "memory" in r.getMessage() for r in caplog.records)
        answer = monitor.get("/healthz")
        health = answer.get_json()
        assert answer.status_code == 200  # still serving
        assert health["status"] == "degraded"
        assert health["components"]["rate_limits"]["status"] == "degraded"
        assert health["components"]["database"]["status"] == "ok"

        # The limits still hold meanwhile, counted in this process (per address: ten wrong sign-ins
        # for names that don't exist, so nothing but the address is counted).
        guesses = [
            client.post("/login", data=_wrong(n), **_from("192.0.2.10")).status_code for n in range(10)
        ]
        assert guesses == [401] * 10
        assert client.post("/login", data=_wrong(10), **_from("192.0.2.10")).status_code == 429
        assert client.post("/login", data=_wrong(11), **_from("192.0.2.11")).status_code == 401

        server.start()  # the same port, empty
        assert monitor.get("/healthz").get_json()["status"] == "ok"
        # Counting goes back to Redis: a failed sign-in from a fresh address lands there again.
        deadline = time.monotonic() + RECOVERY_BOUND_S
        n = 0
        while not _limiter_keys(server) and time.monotonic() < deadline:
            n += 1
            assert (
                client.post("/login", data=_wrong(100 + n), **_from(f"192.0.2.{100 + n % 100}")).status_code
                == 401
            )
            time.sleep(0.2)
        assert _limiter_keys(server), "rate limits never went back to Redis"
    finally:
        if app is not None:
            app.extensions["printlab"].engine.dispose()
        server.stop()


def test_two_app_processes_share_the_per_email_submission_limit(lab_env, session):
    set_per_hour(session, 1)
    apps = two_apps_sharing_the_machines_redis(lab_env)
    try:
        # Two browsers at two addresses, one on each process: only the email address is the same.
        assert _submit(apps[0].test_client(), "student@example.edu").status_code == 303
        other = apps[1].test_client()
        other.environ_base["REMOTE_ADDR"] = "192.0.2.77"
        refused = _submit(other, "student@example.edu")
        assert refused.status_code == 429 and b"You can send again after" in refused.data
    finally:
        for app in apps:
            app.extensions["printlab"].engine.dispose()
