"""SMTP transport against a real server on loopback: plain, STARTTLS with login, implicit TLS, and every refusal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from printlab.services.mail.render import RenderedEmail, build_message
from printlab.services.mail.transport import (
    Envelope,
    PermanentFailure,
    ServerUnreachable,
    SmtpTransport,
    TemporaryFailure,
)

from .mail_server import Certificate, SmtpServer, make_certificate, password_checker

USER, PASSWORD = "printlab", "correct horse battery staple"


def a_message(recipient: str = "jane.doe@example.edu", outbox_id: int = 1) -> tuple:  # type: ignore[type-arg]
    rendered = RenderedEmail("Test — ünïcode subject", "Plain text body\n", "<p>HTML body</p>\n")
    message = build_message(
        rendered,
        sender="Makerspace 3D Print Lab <makerspace@example.edu>",
        reply_to="makerspace@example.edu",
        recipient=recipient,
        message_id=f"<printlab.{outbox_id}.test@print.example.edu>",
        date=datetime(2026, 11, 26, 15, 0),
        template="receipt",
        outbox_id=outbox_id,
    )
    return message, Envelope("makerspace@example.edu", recipient, outbox_id, "receipt")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def starttls(certificate: Certificate) -> Iterator[SmtpServer]:
    server = SmtpServer(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=password_checker(USER, PASSWORD),
    ).start()
    yield server
    server.stop()


def send(transport: SmtpTransport, *messages: tuple) -> None:  # type: ignore[type-arg]
    connection = transport.connect()
    try:
        for message, envelope in messages:
            connection.send(message, envelope)
    finally:
        connection.close()


def test_plain_smtp_delivers_a_multipart_message_with_its_headers(plain):
    send(SmtpTransport(plain.settings()), a_message())
    (received,) = plain.inbox.wait_for(1)
    assert received.recipients == ("jane.doe@example.edu",)
    assert received.sender == "makerspace@example.edu"
    assert received.message.get_content_type() == "multipart/alternative"
    assert received.message["Subject"] == "Test — ünïcode subject"
    assert received.message_id == "<printlab.1.test@print.example.edu>"
    assert received.message["Auto-Submitted"] == "auto-generated"
    assert received.text == "Plain text body\n" and received.html == "<p>HTML body</p>\n"


def test_one_connection_carries_many_messages(plain):
    send(SmtpTransport(plain.settings()), *(a_message(outbox_id=i) for i in range(1, 6)))
    assert sorted(plain.inbox.count_by_message_id().values()) == [1] * 5


def test_starttls_with_login(starttls, certificate):
    transport = SmtpTransport(
        starttls.settings("starttls", username=USER, password=PASSWORD),
        ssl_context=certificate.client_context(),
    )
    send(transport, a_message())
    assert len(starttls.inbox.wait_for(1)) == 1


def test_a_wrong_password_is_a_retryable_failure_that_never_shows_the_password(starttls, certificate):
    transport = SmtpTransport(
        starttls.settings("starttls", username=USER, password="wrong-password-123"),
        ssl_context=certificate.client_context(),
    )
    with pytest.raises(ServerUnreachable, match="login refused") as exc:
        transport.connect()
    assert "wrong-password-123" not in str(exc.value)
    assert "wrong-password-123" not in repr(transport.settings)
    assert starttls.inbox.messages() == []


def test_an_untrusted_certificate_is_refused(starttls):
    # The system trust store doesn't know the test certificate: no mail, and no password sent.
    transport = SmtpTransport(starttls.settings("starttls", username=USER, password=PASSWORD))
    with pytest.raises(ServerUnreachable, match="unreachable"):
        transport.connect()


def test_starttls_is_required_when_configured(plain, certificate):
    # A server (or a man in the middle) that doesn't offer STARTTLS never gets the message in clear text.
    transport = SmtpTransport(plain.settings("starttls"), ssl_context=certificate.client_context())
    with pytest.raises(ServerUnreachable, match="STARTTLS"):
        transport.connect()
    assert plain.inbox.messages() == []


def test_implicit_tls(certificate):
    server = SmtpServer(ssl_context=certificate.server_context()).start()
    try:
        send(SmtpTransport(server.settings("ssl"), ssl_context=certificate.client_context()), a_message())
        assert len(server.inbox.wait_for(1)) == 1
    finally:
        server.stop()


def test_a_refused_recipient_is_permanent_and_a_deferred_one_temporary(plain):
    plain.inbox.refuse.add("gone@example.edu")
    plain.inbox.defer.add("busy@example.edu")
    connection = SmtpTransport(plain.settings()).connect()
    try:
        with pytest.raises(PermanentFailure, match="550"):
            connection.send(*a_message("gone@example.edu"))
        with pytest.raises(TemporaryFailure, match="451"):
            connection.send(*a_message("busy@example.edu", outbox_id=2))
        connection.send(*a_message(outbox_id=3))  # the connection is still good for the next one
    finally:
        connection.close()
    assert [r.recipients for r in plain.inbox.messages()] == [("jane.doe@example.edu",)]


def test_a_server_that_is_down_is_unreachable(tmp_path: Path):
    server = SmtpServer()  # never started: nothing listens on its port
    with pytest.raises(ServerUnreachable, match="unreachable"):
        SmtpTransport(server.settings()).connect()
