"""Rate limits are shared by every web process when their counters live in Redis."""

from __future__ import annotations

import redis

from printlab import config as config_module
from printlab.services.lab import workstations


def test_two_app_processes_share_the_sign_in_limit(lab_env, session):
    from printlab.web.app import create_app

    workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
    env = lab_env | {"PRINTLAB_RATELIMIT_STORAGE": "redis://127.0.0.1:6379"}
    # Start from clean counters (the limiter's keys all contain LIMITER).
    server = redis.Redis(host="127.0.0.1", port=6379)
    for key in server.scan_iter("*LIMITER*"):
        server.delete(key)
    apps = [
        create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(env)) for _ in range(2)
    ]  # fmt: skip
    clients = [app.test_client() for app in apps]
    # Different names each time: wrong passwords for one workstation slow that computer down on
    # their own (test_sign_in_throttle.py); this is the per-address limit on sign-in forms.
    statuses = [
        clients[i % 2].post("/login", data={"workstation": f"NO-SUCH-PC-{i}", "password": "x"}).status_code
        for i in range(10)
    ]
    assert statuses == [401] * 10
    # The eleventh try, on the other "process", is refused: the counter is shared.
    refused = clients[1].post("/login", data={"workstation": "LAB-PC-1", "password": "a-long-password-1"})
    assert refused.status_code == 429 and b"Too many attempts" in refused.data
    for app in apps:
        app.extensions["printlab"].engine.dispose()
