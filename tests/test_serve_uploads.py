"""`printlab serve` answers an upload announcing more than the lab's limit with 413 before reading it.

A raw socket sends the request's headers and a little of its body, then waits for the answer without
sending the rest: an answer at all shows the server didn't wait for the body.
"""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from printlab.services.lab import catalog, workstations
from printlab.services.lab.actors import Actor

from .conftest import BACKENDS
from .factories import STAFF, make_staff
from .servers import PrintlabServer

MB = 1024 * 1024
#: A failure bound for the server's answer, never a timing assertion: a server that waits for the
#: rest of the body never answers at all.
ANSWER_BOUND_S = 60
#: What `printlab serve` runs on is beside the point here; one backend is enough.
one_backend = pytest.mark.parametrize("backend", BACKENDS[:1])


def _post(
    port: int,
    announced: int,
    body: bytes,
    *,
    keep_alive: bool = False,
    kind: str = "multipart/form-data; boundary=xyz",
) -> tuple[int, bytes]:
    """POST `body` while announcing `announced` bytes; the status, and all the server sent until it closed."""
    head = (
        "POST /submit HTTP/1.1\r\nHost: printlab.test\r\n"
        f"Content-Type: {kind}\r\n"
        f"Content-Length: {announced}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_BOUND_S) as connection:
        connection.sendall(head + body)
        chunks = []
        try:
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pytest.fail(f"no answer and close in {ANSWER_BOUND_S} s: the server waited for the body")
    answer = b"".join(chunks)
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1]), answer


def _get_form(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/submit", timeout=ANSWER_BOUND_S) as answer:
        return answer.status


def _set_upload_limit(session, megabytes: int) -> None:  # type: ignore[no-untyped-def]
    make_staff(session)
    if not workstations.is_admin_workstation(session, "ADMIN-PC"):
        workstations.add_workstation(session, "ADMIN-PC", "admin-password-1", is_admin=True)
    limits = {"minimum_charge": "3", "upload_limit_mb": str(megabytes), "job_upload_limit_mb": str(megabytes),
              "confirm_link_hours": "72", "archive_after_days": "90", "prune_after_days": "365"}  # fmt: skip
    catalog.save_section(session, "limits", limits, by=Actor(STAFF, "ADMIN-PC"))


@pytest.fixture
def server(lab_env: dict[str, str], tmp_path: Path):  # type: ignore[no-untyped-def]
    running = PrintlabServer(lab_env, tmp_path / "serve.log").ready()
    yield running
    running.stop()
    assert "Traceback" not in running.output()


@one_backend
@pytest.mark.parametrize("announced_mb", [210, 420])  # past a whole job's 200 MB (every part together)
def test_an_announced_oversized_upload_is_refused_before_it_is_sent(server, announced_mb):
    # The client offers to keep the connection open; a refused body means the server closes it.
    status, answer = _post(server.port, announced_mb * MB, b"--xyz\r\n" + b"x" * 1024, keep_alive=True)
    assert status == 413
    assert b"connection: close" in answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"traceback" not in answer.lower()


@one_backend
def test_the_refusal_follows_the_lab_upload_limit(server, session):
    _set_upload_limit(session, 2)
    # A page that reads the lab's settings brings this server up to date (so does a periodic look).
    assert _get_form(server.port) == 200
    assert _post(server.port, 4 * MB, b"--xyz\r\n")[0] == 413
    _set_upload_limit(session, 10)
    assert _get_form(server.port) == 200
    # Now 4 MB is within the limit: the server reads all of it and the app answers (no form, so no
    # CSRF token: 400).
    status, answer = _post(server.port, 4 * MB, b"x" * (4 * MB), kind="application/octet-stream")
    assert status == 400, answer[:500]
