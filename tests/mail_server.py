"""A real SMTP server on loopback for the mail tests (aiosmtpd): counts by Message-ID, refuses, stalls, goes down."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from printlab.config import SmtpSettings

from .servers import free_port


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage)
        return part.get_content().replace("\r\n", "\n")  # as on the wire: CRLF

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert isinstance(part, EmailMessage)
        return part.get_content().replace("\r\n", "\n")


class Inbox:
    """The aiosmtpd handler: keeps every accepted message; can refuse addresses or stall in DATA."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()
        #: Addresses answered with 550 at RCPT TO.
        self.refuse: set[str] = set()
        #: Addresses answered with 451 (try again later) at RCPT TO.
        self.defer: set[str] = set()
        #: When set, DATA waits here (after keeping the message) until the event is set.
        self.hold: threading.Event | None = None
        self.holding = threading.Event()
        #: A process to kill with SIGKILL after the message is kept and before the server answers.
        self.kill_pid: int | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: no such user here"
        if address in self.defer:
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, tuple(envelope.rcpt_tos), parsed))
        if self.kill_pid is not None:
            # The server has the message; the client never hears "250": the crash window.
            os.kill(self.kill_pid, signal.SIGKILL)
            self.kill_pid = None
        if self.hold is not None:
            self.holding.set()
            # aiosmtpd runs handlers on its own event loop thread; blocking it is what a stalled
            # server looks like to the client.
            self.hold.wait(30)
        return "250 2.0.0 Message accepted for delivery"

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def count_by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.messages())

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages()) >= count:
                return self.messages()
            time.sleep(0.02)
        raise AssertionError(f"expected {count} messages, got {len(self.messages())}")


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that can be stopped and started again on the same port."""

    def __init__(self, **smtp_options: Any):
        self.inbox = Inbox()
        self.port = free_port()
        self.smtp_options = smtp_options
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self.smtp_options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            if self.inbox.hold is not None:
                self.inbox.hold.set()
            self.controller.stop()
            self.controller = None

    def settings(self, security: str = "none", **overrides: Any) -> SmtpSettings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "security": security,
            "username": None,
            "password": None,
            "timeout": 5.0,
        }
        values.update(overrides)
        return SmtpSettings(**values)

    def env(self) -> dict[str, str]:
        """PRINTLAB_SMTP_* settings for a child process sending here (plain SMTP on loopback)."""
        return {
            "PRINTLAB_SMTP_HOST": "127.0.0.1",
            "PRINTLAB_SMTP_PORT": str(self.port),
            "PRINTLAB_SMTP_SECURITY": "none",
            "PRINTLAB_SMTP_TIMEOUT": "5",
        }


# -- TLS and login ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Trusts this certificate only, with hostname checks on: as strict as the real thing."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(folder: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)


def password_checker(username: str, password: str):  # type: ignore[no-untyped-def]
    """An aiosmtpd authenticator accepting exactly one login."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check
