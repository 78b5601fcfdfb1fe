"""Real programs a lab runs beside PrintLab, each started by a test on a loopback port of its own.

`redis-server` (shared rate-limit counters), `nginx` (TLS and the client's address in front of the app
servers), `printlab serve` (waitress) and OctoPrint with its Virtual Printer (a printer PrintLab
connects to). A program that isn't installed fails the test: `make test` installs them.

The suite runs in several pytest-xdist worker processes at once: every port comes from `free_port()`,
which gives each worker ports no other worker is handed.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PRINTLAB = Path(sys.executable).with_name("printlab")
#: The nginx site configuration that docs/operations.md quotes and labs install.
NGINX_SITE = Path(__file__).resolve().parents[1] / "deploy" / "nginx" / "printlab.conf"
#: The site's name in that file, sent as Host by the tests' clients.
SITE_NAME = "print.example.edu"
#: How long a program may take to start before the test gives up on it (a failure bound only).
START_BOUND_S = 60


#: This process's pytest-xdist worker ("gw0", "gw1", …); "main" when the suite runs in one process.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def worker_number() -> int:
    """0 for the first pytest-xdist worker (and for a run without workers), 1 for the next, …"""
    return int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0


#: Ports for the servers tests start: below Linux's ephemeral range (32768 and up), so no outgoing
#: connection is holding one, in a block of PORT_BLOCK ports per worker, so that two workers never
#: pick the same free port between checking it and starting their server on it.
PORT_BASE, PORT_BLOCK, PORT_BLOCKS = 20000, 500, 25
#: Where in the block this process starts (random: another test run on the machine starts elsewhere);
#: each call takes the next port, so a port is not handed out twice in a run.
_port_offsets = itertools.count(secrets.randbelow(PORT_BLOCK))


def free_port() -> int:
    """A loopback port nothing is listening on, in this worker's own block."""
    block = PORT_BASE + (worker_number() % PORT_BLOCKS) * PORT_BLOCK
    for _ in range(PORT_BLOCK):
        port = block + next(_port_offsets) % PORT_BLOCK
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or still closing): try the next one
            return port
    raise AssertionError(f"no free port in {block}–{block + PORT_BLOCK - 1}")


def program(name: str, package: str) -> str:
    """The program's path; a missing one fails the test (it is never skipped)."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail(f"{name} is required for this test and was not found: apt-get install -y {package}")
    return found


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


class RedisServer:
    """`redis-server` on 127.0.0.1 and a free port, without persistence; can be stopped and started again."""

    def __init__(self, directory: Path):
        self.executable = program("redis-server", "redis-server")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = directory / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory), "--logfile", str(self.log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.ping():
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server did not start on port {self.port}:\n{_log_tail(self.log)}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None


class PrintlabServer:
    """`printlab serve` as a child process with the given settings; `ready()` waits for /healthz to say 200."""

    def __init__(self, env: dict[str, str], log: Path, port: int | None = None):
        self.port = port or free_port()
        self.log = log
        # PATH, PYTHONPATH and the like as the parent's; the lab's settings only from `env`.
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")} | env
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                [str(PRINTLAB), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=child_env, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def ready(self) -> PrintlabServer:
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        return self
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"printlab serve did not start:\n{_log_tail(self.log)}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        _stop(self.process)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for SITE_NAME, made with the openssl command."""
    openssl = program("openssl", "openssl")
    cert, key = directory / "site.pem", directory / "site.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={SITE_NAME}",
         "-addext", f"subjectAltName=DNS:{SITE_NAME}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _replace_once(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, lambda _match: replacement, text, flags=re.DOTALL)
    assert count == 1, f"{NGINX_SITE.name}: expected one match for {pattern!r}, found {count}"
    return new


def render_site(upstreams: list[int], http_port: int, https_port: int, cert: Path, key: Path) -> str:
    """The documented site configuration with this test's ports, app servers and certificate.

    Only the addresses and the certificate change; every proxy setting is the file's own.
    """
    site = NGINX_SITE.read_text()
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    site = _replace_once(site, r"upstream printlab \{\n.*?\n\}", "upstream printlab {\n" + servers + "}")
    site = _replace_once(site, r"listen 80;", f"listen 127.0.0.1:{http_port};")
    site = _replace_once(site, r"listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    site = _replace_once(
        site, rf"ssl_certificate\s+/etc/ssl/certs/{re.escape(SITE_NAME)}\.pem;", f"ssl_certificate {cert};"
    )
    site = _replace_once(
        site,
        rf"ssl_certificate_key\s+/etc/ssl/private/{re.escape(SITE_NAME)}\.key;",
        f"ssl_certificate_key {key};",
    )
    return site


class Nginx:
    """nginx in the foreground, one process, everything it writes kept in `directory`."""

    def __init__(self, directory: Path, upstreams: list[int]):
        executable = program("nginx", "nginx")
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.upstreams = upstreams
        self.http_port, self.https_port = free_port(), free_port()
        self.cert, key = self_signed_certificate(directory)
        site = directory / "printlab.conf"
        site.write_text(render_site(upstreams, self.http_port, self.https_port, self.cert, key))
        self.error_log = directory / "error.log"
        self.access_log = directory / "access.log"
        main = directory / "nginx.conf"
        main.write_text(
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            f"pid {directory}/nginx.pid;\nerror_log {self.error_log} info;\n"
            "events { worker_connections 128; }\n"
            "http {\n"
            "    log_format upstreams '$remote_addr $upstream_addr $status';\n"
            f"    access_log {self.access_log} upstreams;\n"
            f"    client_body_temp_path {directory}/client_body;\n"
            f"    proxy_temp_path {directory}/proxy;\n"
            f"    fastcgi_temp_path {directory}/fastcgi;\n"
            f"    uwsgi_temp_path {directory}/uwsgi;\n"
            f"    scgi_temp_path {directory}/scgi;\n"
            f"    include {site};\n"
            "}\n"
        )
        checked = subprocess.run(
            [executable, "-t", "-e", str(self.error_log), "-p", str(directory), "-c", str(main)],
            capture_output=True, text=True,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(
            [executable, "-e", str(self.error_log), "-p", str(directory), "-c", str(main)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"nginx did not start:\n{_log_tail(self.error_log)}")

    def upstreams_used(self) -> set[str]:
        """The app servers nginx passed requests to, from its access log."""
        lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
        return {line.split()[1] for line in lines if len(line.split()) > 2}

    def stop(self) -> None:
        _stop(self.process)


#: OctoPrint in its own virtual environment, made by `make octoprint` (pinned in requirements/octoprint.txt).
OCTOPRINT = Path(__file__).resolve().parents[1] / ".octoprint-venv" / "bin" / "octoprint"
#: OctoPrint's settings for the tests: no first-run wizard, nothing that calls the internet, the
#: Virtual Printer on (OctoPrint's simulated printer on port VIRTUAL, saved as the port to use).
#: The Virtual Printer's `throttle` (seconds per G-code line) paces a print: 0.01 makes a 300-line
#: file print in about four seconds.
OCTOPRINT_CONFIG = {
    "server": {"firstRun": False, "onlineCheck": {"enabled": False}, "pluginBlacklist": {"enabled": False}},
    "plugins": {
        "_disabled": ["announcements", "tracking", "softwareupdate", "pluginmanager", "backup", "achievements",
                      "discovery", "errortracking", "health_check", "firmware_check", "pi_support"],
        "virtual_printer": {"enabled": True, "throttle": 0.01, "simulateReset": False},
    },
    "serial": {"port": "VIRTUAL", "autoconnect": False, "log": False},
}  # fmt: skip


class OctoPrintServer:
    """OctoPrint with its Virtual Printer on 127.0.0.1 and a free port, in a base folder of its own, with
    an admin user and an application key for PrintLab (as a lab would make in Settings → Application
    Keys). It can be stopped and started again, and frozen (SIGSTOP) to play a printer that hangs."""

    USER = "labadmin"

    def __init__(self, directory: Path):
        if not OCTOPRINT.exists():
            pytest.fail(
                f"OctoPrint is required for this test and was not found at {OCTOPRINT}: run `make octoprint`"
            )
        self.basedir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.api_key = secrets.token_urlsafe(32)
        self.log = directory / "octoprint.out"
        self.process: subprocess.Popen[bytes] | None = None
        # JSON is YAML: OctoPrint reads this file as its config.yaml.
        (directory / "config.yaml").write_text(json.dumps(OCTOPRINT_CONFIG, indent=1))
        added = subprocess.run(
            [str(OCTOPRINT), "--basedir", str(directory), "user", "add", "--password", secrets.token_urlsafe(16),
             "--admin", self.USER],
            capture_output=True, text=True, timeout=START_BOUND_S,
        )  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        keys = directory / "data" / "appkeys" / "keys.yaml"
        keys.parent.mkdir(parents=True, exist_ok=True)
        keys.write_text(json.dumps({self.USER: [{"app_id": "PrintLab", "api_key": self.api_key}]}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OctoPrintServer:
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                # As root OctoPrint refuses to start without --iknowwhatimdoing; as anyone else it is ignored.
                [str(OCTOPRINT), "serve", "--iknowwhatimdoing", "--basedir", str(self.basedir),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                request = urllib.request.Request(
                    f"{self.url}/api/version", headers={"X-Api-Key": self.api_key}
                )
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return self
            except (OSError, http.client.HTTPException):  # not up yet, or still setting up its routes
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"OctoPrint did not start on port {self.port}:\n{_log_tail(self.log)}")

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> object:
        """The tests' own request to OctoPrint's REST API (to set a scene, never to check PrintLab)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"X-Api-Key": self.api_key, "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def pull_the_plug(self) -> None:
        """Gone at once, as when the printer's computer loses power (SIGKILL)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process can't act on SIGTERM
            _stop(self.process)
            self.process = None


#: The OpenID provider script and the npm package it runs (`oidc-provider`, pinned in package-lock.json).
OIDC_PROVIDER_SCRIPT = Path(__file__).resolve().parent / "oidc" / "provider.mjs"
OIDC_PROVIDER_PACKAGE = Path(__file__).resolve().parents[1] / "node_modules" / "oidc-provider"


def signing_key(kid: str) -> dict[str, object]:
    """A fresh RS256 signing key as a private JWK (the provider publishes its public half)."""
    from joserfc.jwk import RSAKey

    return RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"}, private=True).as_dict(
        private=True
    )


class OidcProvider:
    """A real, certified OpenID provider (the npm package `oidc-provider`, run by Node) on 127.0.0.1, with
    PrintLab registered as a confidential client (PKCE required) and campus accounts the tests name. Its
    own development login page signs any listed account in with any password.

    `restart(rotate_keys=True)` starts it again with a new signing key (key rotation); `clock_offset`
    runs its clock wrong, so the ID tokens it issues have already expired."""

    CLIENT_ID = "printlab"

    def __init__(self, directory: Path, accounts: dict[str, dict[str, object]], redirect_base: str):
        node = shutil.which("node")
        if node is None or not OIDC_PROVIDER_PACKAGE.exists():
            pytest.fail(
                "Node.js and the npm package oidc-provider are required for this test: run `make test`"
            )
        self.node = node
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = free_port()
        self.client_secret = secrets.token_urlsafe(32)
        self.accounts = accounts
        self.redirect_base = redirect_base.rstrip("/")
        self.keys = [signing_key("key-1")]
        self.clock_offset = 0
        self.id_token_seconds = 3600
        self.other_clients: list[dict[str, object]] = []
        self.log = directory / "provider.out"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, client_id: str, secret: str) -> dict[str, object]:
        return {
            "client_id": client_id,
            "client_secret": secret,
            "redirect_uris": [f"{self.redirect_base}/login/campus/done"],
            "post_logout_redirect_uris": [f"{self.redirect_base}/login"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }

    def start(self) -> OidcProvider:
        settings = self.directory / "provider.json"
        settings.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "issuer": self.issuer,
                    "clients": [self.client(self.CLIENT_ID, self.client_secret), *self.other_clients],
                    "accounts": self.accounts,
                    "jwks": {"keys": self.keys},
                    "clock_offset_seconds": self.clock_offset,
                    "id_token_seconds": self.id_token_seconds,
                }
            )
        )
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                [self.node, str(OIDC_PROVIDER_SCRIPT), str(settings)],
                stdout=output, stderr=subprocess.STDOUT, cwd=OIDC_PROVIDER_PACKAGE.parents[1],
            )  # fmt: skip
        deadline = time.monotonic() + START_BOUND_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"{self.issuer}/.well-known/openid-configuration", timeout=5
                ) as answer:
                    if answer.status == 200:
                        return self
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"The OpenID provider did not start on port {self.port}:\n{_log_tail(self.log)}")

    def restart(self, *, rotate_keys: bool = False) -> OidcProvider:
        self.stop()
        if rotate_keys:
            self.keys = [signing_key(f"key-{secrets.token_hex(4)}")]
        return self.start()

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None
