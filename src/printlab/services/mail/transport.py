"""How a finished email leaves PrintLab: an SMTP server (STARTTLS, implicit TLS, login) or .eml files in a folder."""

from __future__ import annotations

import os
import re
import smtplib
import socket
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from printlab.clock import utcnow
from printlab.config import Config, SmtpSettings


class DeliveryError(Exception):
    """A message could not be handed over. `permanent` ones are not retried automatically."""

    permanent = False


class TemporaryFailure(DeliveryError):
    """Worth retrying later: the server is down, busy, or answered 4xx."""


class PermanentFailure(DeliveryError):
    """Retrying won't help (the server answered 5xx, the message can't be built): mark it failed."""

    permanent = True


class ServerUnreachable(TemporaryFailure):
    """No connection at all; every other message waiting now would fail the same way."""


@dataclass(frozen=True)
class Envelope:
    sender: str
    recipient: str
    #: For naming .eml files and for logs: which outbox row and which kind of message.
    outbox_id: int
    template: str


class Connection(Protocol):
    def send(self, message: EmailMessage, envelope: Envelope) -> None: ...

    def close(self) -> None: ...


class Transport(Protocol):
    #: Shown on the admin Mail page: where messages go.
    description: str

    def connect(self) -> Connection:
        """Open a connection; raises ServerUnreachable (or another DeliveryError)."""
        ...


# -- SMTP ----------------------------------------------------------------------------------------


class SmtpTransport:
    """An SMTP server. Certificates are checked against the system's trust store (or `ssl_context`)."""

    def __init__(self, settings: SmtpSettings, *, ssl_context: ssl.SSLContext | None = None):
        self.settings = settings
        self.ssl_context = ssl_context
        self.description = f"SMTP {settings.host}:{settings.port} ({settings.security})"

    def connect(self) -> SmtpConnection:
        s = self.settings
        context = self.ssl_context or ssl.create_default_context()
        client: smtplib.SMTP | None = None
        try:
            if s.security == "ssl":
                client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            client.ehlo()
            if s.security == "starttls":
                # Refuse to go on in clear text: a server (or someone in between) that doesn't offer
                # STARTTLS would otherwise get the password and the students' emails unencrypted.
                client.starttls(context=context)
                client.ehlo()
            if s.username and s.password is not None:
                client.login(s.username, s.password)
        except smtplib.SMTPAuthenticationError as exc:
            _close(client)
            raise ServerUnreachable(f"SMTP login refused: {_reply(exc.smtp_code, exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            _close(client)
            raise ServerUnreachable(f"SMTP server {s.host}:{s.port} doesn't support {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS failure, name lookup
            _close(client)
            raise ServerUnreachable(f"SMTP server {s.host}:{s.port} unreachable: {_describe(exc)}") from None
        return SmtpConnection(client)


class SmtpConnection:
    def __init__(self, client: smtplib.SMTP):
        self.client = client

    def send(self, message: EmailMessage, envelope: Envelope) -> None:
        try:
            refused = self.client.send_message(
                message, from_addr=envelope.sender, to_addrs=[envelope.recipient]
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (0, b""))
            raise _by_code(code, f"recipient refused: {_reply(code, text)}") from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, …
            raise _by_code(exc.smtp_code, _reply(exc.smtp_code, exc.smtp_error)) from None
        except (smtplib.SMTPException, OSError) as exc:  # the connection dropped mid-way
            raise TemporaryFailure(f"connection lost: {_describe(exc)}") from None
        if refused:  # one recipient only, so this can't happen; kept so a refusal is never silent
            code, text = next(iter(refused.values()))
            raise _by_code(code, f"recipient refused: {_reply(code, text)}")

    def close(self) -> None:
        _close(self.client, polite=True)


def _close(client: smtplib.SMTP | None, *, polite: bool = False) -> None:
    if client is None:
        return
    try:
        if polite:
            client.quit()
        else:
            client.close()
    except (smtplib.SMTPException, OSError):
        client.close()


def _by_code(code: int, message: str) -> DeliveryError:
    return PermanentFailure(message) if 500 <= code < 600 else TemporaryFailure(message)


def _reply(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}".strip()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- the mail folder -----------------------------------------------------------------------------

#: `<UTC time>-<outbox id>-<template>.eml`: sorting the names sorts the messages by time.
FOLDER_NAME = re.compile(r"^\d{8}T\d{12}Z-\d{8}-[a-z_]{1,40}\.eml$")


class FolderTransport:
    """Writes each message as an RFC 5322 .eml file (CRLF line ends), for the embedded setup.

    A file appears whole or not at all: it is written under a temporary name, synced, then linked
    to its final name (which never replaces an existing file).
    """

    def __init__(self, directory: Path):
        self.directory = directory
        self.description = f"mail folder {directory}"

    def connect(self) -> FolderTransport:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServerUnreachable(f"mail folder {self.directory} can't be created: {exc}") from None
        return self

    def send(self, message: EmailMessage, envelope: Envelope, *, now: datetime | None = None) -> None:
        data = message.as_bytes(policy=policy.SMTP)
        name = f"{(now or utcnow()):%Y%m%dT%H%M%S%f}Z-{envelope.outbox_id:08d}-{envelope.template}.eml"
        try:
            fd, temporary = tempfile.mkstemp(prefix=".incoming-", suffix=".eml", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(temporary, self.directory / name)
            finally:
                os.unlink(temporary)
        except FileExistsError:
            raise TemporaryFailure(f"{name} already exists in the mail folder") from None
        except OSError as exc:
            raise TemporaryFailure(f"can't write to the mail folder: {exc}") from None

    def close(self) -> None:
        return None


def transport_for(config: Config) -> Transport:
    """SMTP when PRINTLAB_SMTP_HOST is set, otherwise the mail folder."""
    if config.smtp is not None:
        return SmtpTransport(config.smtp)
    return FolderTransport(config.mail_dir)
