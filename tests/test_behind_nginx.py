"""Behind the documented nginx, in front of two `printlab serve` processes: each client has its own limits.

Clients connect from different loopback addresses (127.0.0.2, 127.0.0.3), so nginx sees each one's
own address and passes it on in X-Forwarded-For; the two app servers share their counters in Redis.
"""

from __future__ import annotations

import http.client
import io
import re
import socket
import ssl
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from printlab.services.lab import workstations

from .conftest import BACKENDS, MODELS
from .factories import form
from .servers import NGINX_SITE, SITE_NAME, Nginx, PrintlabServer, RedisServer

#: Two app servers on one database, as in production; one backend is enough (PostgreSQL when run).
one_backend = pytest.mark.parametrize("backend", BACKENDS[-1:])

CUBE = MODELS / "stl_binary_20mm_xyz_cube.stl"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
FORGED = {"X-Forwarded-For": "203.0.113.77"}


class Visitor:
    """A browser at one loopback address speaking HTTPS to nginx: keeps its cookies, sends a Referer."""

    def __init__(self, nginx: Nginx, address: str):
        self.nginx = nginx
        self.address = address
        self.cookies: dict[str, str] = {}
        self.context = ssl.create_default_context(cafile=str(nginx.cert))
        self.context.check_hostname = False  # connected by IP address; the chain is still verified

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.nginx.https_port, source_address=(self.address, 0), context=self.context,
            timeout=60,
        )  # fmt: skip
        sent = {"Host": SITE_NAME, "Referer": f"https://{SITE_NAME}{path}"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        sent.update(headers or {})
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            for header in response.headers.get_all("Set-Cookie") or []:
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                self.cookies.update({name: morsel.value for name, morsel in jar.items()})
            return response.status, text
        finally:
            connection.close()

    def csrf_token(self, path: str) -> str:
        status, page = self.request("GET", path)
        assert status == 200, page
        found = CSRF_FIELD.search(page)
        assert found, f"{path} has no form with a CSRF token"
        return found.group(1)

    def sign_in(self, workstation: str, password: str, headers: dict[str, str] | None = None) -> int:
        fields = {"csrf_token": self.csrf_token("/login"), "workstation": workstation, "password": password}
        status, page = self.request(
            "POST", "/login", urlencode(fields).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"} | (headers or {}),
        )  # fmt: skip
        assert "Traceback" not in page
        return status

    def submit(self, email: str, headers: dict[str, str] | None = None) -> int:
        fields = {"csrf_token": self.csrf_token("/submit"), **form(student_email=email)}
        fields["file"] = FileStorage(io.BytesIO(CUBE.read_bytes()), filename=CUBE.name)
        boundary, body = encode_multipart(fields)
        status, page = self.request(
            "POST", "/submit", body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"} | (headers or {}),
        )  # fmt: skip
        assert "Traceback" not in page
        return status


@pytest.fixture
def nginx(lab_env: dict[str, str], tmp_path: Path) -> Iterator[Nginx]:
    """Redis, two `printlab serve` processes set up for production, and nginx with the documented site."""
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    env = lab_env | {
        "PRINTLAB_ENV": "production",
        "PRINTLAB_BASE_URL": f"https://{SITE_NAME}",
        "PRINTLAB_PROXY_COUNT": "1",
        "PRINTLAB_RATELIMIT_STORAGE": redis.url,
        "PRINTLAB_SUBMIT_RATE_LIMIT": "2 per hour",
    }
    servers: list[PrintlabServer] = []
    proxy = None
    try:
        for n in range(2):
            servers.append(PrintlabServer(env, tmp_path / f"serve-{n}.log"))
        for server in servers:
            server.ready()
        proxy = Nginx(tmp_path / "nginx", [server.port for server in servers])
        yield proxy
        for server in servers:
            assert "Traceback" not in server.output()
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()
        redis.stop()


def _both_app_servers_answered(nginx: Nginx) -> bool:
    """nginx spread the requests over both app servers, so the counters really were shared."""
    return {f"127.0.0.1:{port}" for port in nginx.upstreams} <= nginx.upstreams_used()


@one_backend
def test_each_client_address_has_its_own_sign_in_limit(nginx, session):
    workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
    workstations.add_workstation(session, "LAB-PC-2", "a-long-password-2")
    guesser, colleague = Visitor(nginx, "127.0.0.2"), Visitor(nginx, "127.0.0.3")
    # Ten wrong sign-ins from one address (for names that don't exist: only the address is counted).
    assert [guesser.sign_in(f"NO-SUCH-PC-{n}", "wrong-password") for n in range(10)] == [401] * 10
    assert guesser.sign_in("LAB-PC-1", "a-long-password-1") == 429
    # Writing another address into X-Forwarded-For doesn't buy a fresh bucket.
    assert guesser.sign_in("LAB-PC-1", "a-long-password-1", headers=FORGED) == 429
    # Another computer isn't locked out by someone else's guesses.
    assert colleague.sign_in("LAB-PC-2", "a-long-password-2") == 303
    assert colleague.sign_in("LAB-PC-2", "wrong") == 401
    assert _both_app_servers_answered(nginx)


@one_backend
def test_each_client_address_has_its_own_submission_limit(nginx):
    first, second = Visitor(nginx, "127.0.0.2"), Visitor(nginx, "127.0.0.3")
    # PRINTLAB_SUBMIT_RATE_LIMIT is 2 per hour here.
    assert [first.submit(f"student{n}@example.edu") for n in range(2)] == [303, 303]
    assert first.submit("student2@example.edu") == 429
    assert first.submit("student3@example.edu", headers=FORGED) == 429
    assert second.submit("student4@example.edu") == 303
    assert _both_app_servers_answered(nginx)


def test_operations_doc_quotes_the_nginx_site_as_tested():
    doc = (NGINX_SITE.parents[2] / "docs" / "operations.md").read_text()
    quoted = re.findall(r"```nginx\n(.*?)```", doc, flags=re.DOTALL)
    assert NGINX_SITE.read_text() in quoted


@one_backend
def test_an_oversized_upload_is_refused_through_nginx_before_it_is_sent(nginx):
    visitor = Visitor(nginx, "127.0.0.2")
    # Within nginx's client_max_body_size (210m), beyond the lab's 200 MB for a job and the form around it.
    head = (
        f"POST /submit HTTP/1.1\r\nHost: {SITE_NAME}\r\nContent-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {205 * 1024 * 1024}\r\n\r\n"
    ).encode()
    with (
        socket.create_connection(
            ("127.0.0.1", nginx.https_port), timeout=60, source_address=(visitor.address, 0)
        ) as plain,
        visitor.context.wrap_socket(plain) as connection,
    ):
        connection.sendall(head + b"--xyz\r\n" + b"x" * 1024)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = connection.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
