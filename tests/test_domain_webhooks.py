"""Webhooks' pure rules: endpoint addresses, which network addresses are refused, the retry schedule, the
signature (against the Standard Webhooks library's own), and each delivery's event in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from printlab.domain.webhooks import (
    ATTEMPTS,
    BACKOFF,
    WebhookRuleError,
    checked_url,
    new_secret,
    next_attempt_after,
    refused_address,
    signature,
    what_happened,
)


def test_an_address_is_taken_apart():
    target = checked_url(" https://Finance.Example.edu:8443/hooks/printlab?source=lab ")
    assert (target.host, target.port, target.path, target.is_ip) == (
        "finance.example.edu", 8443, "/hooks/printlab?source=lab", False,
    )  # fmt: skip
    assert checked_url("https://[2001:db8::1]").host == "2001:db8::1"
    assert checked_url("https://hooks.example.edu").path == "/"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://x.example.edu/", "must start with https://"),
        ("https://a:b@x.example.edu/", "user name and password"),
        ("https://x.example.edu/#part", "part after #"),
        ("https:///nohost", "needs a host name"),
        ("https://x.example.edu/a b", "spaces or control characters"),
        ("https://x.example.edu:99999/", "not a web address"),
        ("https://" + "a" * 64 + ".example.edu/", "host name is not valid"),
        ("https://x.example.edu/" + "p" * 2000, "too long"),
    ],
)
def test_an_address_that_cant_be_used_is_refused_in_words(url, words):
    with pytest.raises(WebhookRuleError) as refused:
        checked_url(url)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("127.0.0.1", "this server itself (loopback)"),
        ("::1", "this server itself (loopback)"),
        ("10.20.30.40", "a private network address"),
        ("172.16.0.9", "a private network address"),
        ("192.168.1.1", "a private network address"),
        ("100.64.1.1", "a private network address"),
        ("fd12:3456::1", "a private network address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("::ffff:192.168.1.1", "192.168.1.1 is a private network address"),
        ("2002:c0a8:0101::1", "192.168.1.1 is a private network address"),  # 6to4 of 192.168.1.1
        ("64:ff9b::7f00:1", "127.0.0.1 is this server itself"),  # NAT64 of 127.0.0.1
    ],
)
def test_addresses_on_the_labs_own_network_are_refused_unless_allowed(address, words):
    assert words in (refused_address(address, allow_private=False) or "")
    assert refused_address(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "224.0.0.1", "ff02::1", "240.0.0.1", "not-an-ip"])
def test_addresses_nothing_answers_on_are_refused_even_when_allowed(address):
    assert refused_address(address, allow_private=True) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert refused_address(address, allow_private=False) is None


def test_the_signature_is_the_one_the_standard_webhooks_library_makes_and_checks():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    body = b'{"type":"webhook.test","timestamp":"2026-12-04T21:40:00Z","data":{}}'
    when = datetime(2026, 12, 4, 21, 40, tzinfo=UTC)
    ours = signature(secret, "msg_abc", int(when.timestamp()), body)
    assert ours == Webhook(secret).sign("msg_abc", when, body.decode())
    headers = {
        "webhook-id": "msg_abc",
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": ours,
    }
    with pytest.raises(Exception):  # noqa: B017 (the library's own error: too old a timestamp)
        Webhook(secret).verify(body, headers)
    now = int(datetime.now(UTC).timestamp())
    fresh = headers | {
        "webhook-timestamp": str(now),
        "webhook-signature": signature(secret, "msg_abc", now, body),
    }
    assert Webhook(secret).verify(body, fresh) == {
        "type": "webhook.test",
        "timestamp": "2026-12-04T21:40:00Z",
        "data": {},
    }
    assert signature(new_secret(), "msg_abc", now, body) != fresh["webhook-signature"]


def test_the_retry_schedule_spans_about_28_hours_in_eight_tries():
    assert ATTEMPTS == 8
    assert [next_attempt_after(n) for n in range(1, ATTEMPTS)] == list(BACKOFF)
    assert next_attempt_after(ATTEMPTS) is None and next_attempt_after(0) is None
    assert timedelta(hours=27) < sum(BACKOFF, timedelta()) < timedelta(hours=28)


def test_each_event_in_words():
    job = {"reference": "a1b2c3"}
    assert what_happened("job.created", {"job": job}) == "Job a1b2c3 submitted"
    assert (
        what_happened("job.status_changed", {"job": job, "from": "PENDING", "to": "READYTOPRINT"})
        == "Job a1b2c3: Pending → Ready to Print"
    )
    assert (
        what_happened("payment.recorded", {"job": job, "payment": {"kind": "REFUND", "amount_usd": "-1.00"}})
        == "Job a1b2c3: refund $-1.00"
    )
    assert (
        what_happened(
            "printer.state_changed", {"printer": {"name": "Prusa MK4S"}, "from": None, "to": "offline"}
        )
        == "Prusa MK4S: first answer → Offline"
    )
    assert what_happened("webhook.test", {"sent_by": "Alex Rivera"}) == "Test event sent by Alex Rivera"
    assert what_happened("job.created", None) == "A job submitted"
