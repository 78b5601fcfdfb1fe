"""Webhooks' rules: the events an endpoint may choose, what an endpoint's address may be, which network
addresses are refused, the retry schedule, and the Standard Webhooks signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from printlab.domain.printers import Activity
from printlab.domain.statuses import Status

#: The events an endpoint may be sent, in the words the admin page uses.
EVENTS: dict[str, str] = {
    "job.created": "A request is submitted",
    "job.status_changed": "A job's status changes",
    "payment.recorded": "A payment, refund or correction is recorded",
    "printer.state_changed": "A printer starts or stops printing, pauses, goes offline or reports an error",
}
#: Sent only by "Send a test event" on the endpoint's page.
TEST_EVENT = "webhook.test"
EVENT_WORDS = {**EVENTS, TEST_EVENT: "Test event"}

#: When a delivery is tried again after a failed attempt (the Standard Webhooks schedule): eight
#: attempts over about 28 hours, then it is failed and an admin may retry it.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
ATTEMPTS = len(BACKOFF) + 1

MAX_URL_LENGTH = 2000
#: Carrier-grade NAT's shared space: not global, not "private" to Python, on the lab's side of the internet.
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
SECRET_START = "whsec_"  # noqa: S105 (a prefix, not a secret)
_SECRET_BYTES = 32


class WebhookRuleError(ValueError):
    """An endpoint address (or a network address it leads to) that can't be used, in words."""


@dataclass(frozen=True)
class Target:
    """An endpoint's address, taken apart: where to connect and what to ask for."""

    host: str
    port: int
    #: The path and query sent in the request line ("/hooks/printlab?source=lab").
    path: str
    #: True when the host is written as an IP address rather than a name.
    is_ip: bool


def checked_url(url: str) -> Target:
    """The endpoint's address taken apart. Raises WebhookRuleError: https only, a host, no user name or
    password in it, no fragment, at most 2,000 characters."""
    text = url.strip()
    if not text:
        raise WebhookRuleError("Enter the endpoint's address, starting with https://.")
    if len(text) > MAX_URL_LENGTH:
        raise WebhookRuleError(f"The address is too long (at most {MAX_URL_LENGTH:,} characters).")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise WebhookRuleError("The address can't contain spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise WebhookRuleError("That is not a web address PrintLab can send to.") from None
    if parts.scheme.lower() != "https":
        raise WebhookRuleError("The address must start with https:// — events are only sent encrypted.")
    if parts.username is not None or parts.password is not None:
        raise WebhookRuleError(
            "Leave the user name and password out of the address; events are signed instead."
        )
    if parts.fragment:
        raise WebhookRuleError("Leave the part after # out of the address.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRuleError("The address needs a host name, such as https://finance.example.edu/hooks.")
    try:
        ipaddress.ip_address(host)
        is_ip = True
    except ValueError:
        is_ip = False
        labels = host.split(".")
        if any(not label or len(label) > 63 for label in labels) or len(host) > 253:
            raise WebhookRuleError("That host name is not valid.") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(host=host.lower(), port=port or 443, path=path, is_ip=is_ip)


def refused_address(address: str, *, allow_private: bool) -> str | None:
    """Why PrintLab won't send to this network address, or None.

    Only public (globally routed) addresses are allowed, unless an admin allowed the endpoint on the lab's
    own network (private, loopback, link-local, shared and unique-local addresses). Unspecified, multicast
    and reserved addresses are never allowed. An IPv4 address inside an IPv6 one (mapped, 6to4, NAT64) is
    judged as the IPv4 address it carries.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "it is not a network address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return refused_address(str(inner), allow_private=allow_private)
    if ip.is_unspecified or ip.is_multicast or (ip.version == 4 and ip.is_reserved):
        return f"{ip} can't be sent to"
    if ip.is_global:
        return None
    local = ip.is_loopback or ip.is_link_local or ip.is_private or ip in _SHARED
    if not local:  # reserved, documentation and other ranges nothing answers on
        return f"{ip} can't be sent to"
    if allow_private:
        return None
    if ip.is_loopback:
        kind = "this server itself (loopback)"
    elif ip.is_link_local:
        kind = "a link-local address"
    else:
        kind = "a private network address"
    return f"{ip} is {kind}"


def new_secret() -> str:
    """A new signing secret as Standard Webhooks writes them: "whsec_" and base64 of 32 random bytes."""
    return SECRET_START + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: "v1," and base64 of HMAC-SHA256 over "id.timestamp.body", keyed with
    the secret's bytes (the base64 after "whsec_")."""
    key = base64.b64decode(secret.removeprefix(SECRET_START))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def next_attempt_after(attempts: int) -> timedelta | None:
    """How long to wait after failed attempt number `attempts` (1-based), or None when it was the last."""
    if attempts < 1 or attempts > len(BACKOFF):
        return None
    return BACKOFF[attempts - 1]


def what_happened(kind: str, data: object) -> str:
    """A delivery's event in a few words for its log ("Job a1b2c3: Pending → Ready to Print")."""
    d = data if isinstance(data, dict) else {}
    job = d.get("job") if isinstance(d.get("job"), dict) else {}
    reference = f"Job {job.get('reference')}" if job.get("reference") else "A job"

    def status_words(code: object) -> str:
        try:
            return Status(str(code)).label
        except ValueError:
            return str(code)

    if kind == "job.created":
        return f"{reference} submitted"
    if kind == "job.status_changed":
        return f"{reference}: {status_words(d.get('from'))} → {status_words(d.get('to'))}"
    if kind == "payment.recorded":
        payment = d.get("payment") if isinstance(d.get("payment"), dict) else {}
        what = {
            "CHARGE": "paid",
            "REFUND": "refund",
            "CORRECTION": "correction",
            "REVERSAL": "payment reversed",
        }
        return f"{reference}: {what.get(str(payment.get('kind')), 'payment')} ${payment.get('amount_usd')}"
    if kind == "printer.state_changed":
        printer = d.get("printer") if isinstance(d.get("printer"), dict) else {}

        def activity_words(code: object) -> str:
            try:
                return Activity(str(code)).label
            except ValueError:
                return "first answer" if code is None else str(code)

        return f"{printer.get('name', 'A printer')}: {activity_words(d.get('from'))} → {activity_words(d.get('to'))}"
    if kind == TEST_EVENT:
        by = d.get("sent_by")
        return f"Test event sent by {by}" if by else "Test event"
    return EVENT_WORDS.get(kind, kind)
