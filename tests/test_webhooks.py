"""Webhooks end to end on both databases: deliveries written with the change, signed as the Standard
Webhooks library verifies, sent to a real HTTPS receiver on loopback exactly once across a receiver
outage and a worker stopped mid-send, retried on the schedule then failed and retried by an admin, and
never sent to the lab's own network unless an admin allowed it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select, update

from printlab.clock import utcnow
from printlab.domain.history import admin_log_sentence
from printlab.domain.statuses import Status
from printlab.domain.webhooks import ATTEMPTS, BACKOFF, EVENTS
from printlab.models import AdminLogEntry, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from printlab.services.errors import ValidationError
from printlab.services.jobs import refunds, workflow
from printlab.services.printers import polling
from printlab.services.webhooks import delivery, endpoints

from .factories import actor, make_job, make_staff, submit_job
from .fleet_factories import SECRET, make_printer
from .servers import PRINTLAB, free_port
from .webhook_receiver import Receiver


@pytest.fixture
def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    made = Receiver(tmp_path)
    yield made
    made.stop()


def _endpoint(session, receiver: Receiver, chosen=tuple(EVENTS), name="Finance system") -> WebhookEndpoint:  # type: ignore[no-untyped-def]
    made = endpoints.create(
        session, SECRET, name=name, url=receiver.url, chosen=list(chosen), allow_private=True
    )
    receiver.secret = made.secret
    return made.endpoint


def _deliveries(session, **where) -> list[WebhookDelivery]:  # type: ignore[no-untyped-def]
    session.rollback()  # a fresh read: what the workers committed since
    return list(session.scalars(select(WebhookDelivery).filter_by(**where).order_by(WebhookDelivery.id)))


def _sender(receiver: Receiver, name: str = "test-worker") -> delivery.Sender:
    return delivery.Sender(name, ca_file=receiver.ca_file)


def test_each_change_queues_one_delivery_for_each_endpoint_that_chose_it(session, storage, receiver):
    everything = _endpoint(session, receiver)
    money = _endpoint(session, receiver, ["payment.recorded"], name="Bursar")
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    refunds.refund_or_correct(
        session,
        storage,
        job.id,
        actor=actor(),
        kind="REFUND",
        amount_usd="1.00",
        method="CARD",
        reason="Misprint",
    )

    kinds = [d.kind for d in _deliveries(session, endpoint_id=everything.id)]
    assert kinds == [
        "job.created", "job.status_changed", "job.status_changed", "job.status_changed",
        "job.status_changed", "payment.recorded", "job.status_changed", "payment.recorded",
    ]  # fmt: skip
    paid = [json.loads(d.body) for d in _deliveries(session, endpoint_id=money.id)]
    assert [p["data"]["payment"]["kind"] for p in paid] == ["CHARGE", "REFUND"]
    assert paid[1]["data"]["payment"]["amount_usd"] == "-1.00"
    charged = Decimal(paid[0]["data"]["payment"]["amount_usd"])
    assert paid[0]["data"]["balance_usd"] == f"{charged:.2f}"
    assert paid[1]["data"]["balance_usd"] == f"{charged - 1:.2f}"
    moves = [json.loads(d.body)["data"] for d in _deliveries(session, kind="job.status_changed")]
    assert [(m["from"], m["to"]) for m in moves] == [
        ("UPLOADED", "PENDING"), ("PENDING", "READYTOPRINT"), ("READYTOPRINT", "PRINTING"),
        ("PRINTING", "COMPLETED"), ("COMPLETED", "PAIDPICKEDUP"),
    ]  # fmt: skip
    assert moves[0]["by"] == "Alex Rivera" and moves[1]["by"] is None  # the student confirmed
    for row in _deliveries(session):
        body = json.loads(row.body)
        assert body["type"] == row.kind and body["timestamp"].endswith("Z")
        # No student's name or address leaves the lab in a webhook.
        assert "Jane" not in row.body and "jane.doe@example.edu" not in row.body
        assert row.message_id.startswith("msg_") and row.status == WebhookDeliveryStatus.PENDING


def test_a_refused_change_queues_nothing_and_a_paused_endpoint_is_told_nothing(session, storage, receiver):
    endpoint = _endpoint(session, receiver)
    job = submit_job(session, storage)
    make_staff(session)
    before = len(_deliveries(session))
    with pytest.raises(ValidationError):
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=-3, time_hours=1)
    assert len(_deliveries(session)) == before

    endpoints.set_enabled(session, endpoint.id, False)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2)
    assert len(_deliveries(session)) == before


def test_deliveries_arrive_signed_and_exactly_once_across_a_receiver_outage(session, storage, receiver):
    _endpoint(session, receiver)
    make_job(session, storage, Status.READYTOPRINT)
    queued = _deliveries(session)
    assert len(queued) == 3
    sender = _sender(receiver)
    now = utcnow()
    try:
        # The receiver is down: every delivery fails once and waits for its next attempt, nothing lost.
        report = delivery.deliver_due(session, sender, SECRET, now=now)
        assert (report.delivered, report.retrying) == (0, 3)
        for row in _deliveries(session):
            assert row.status == WebhookDeliveryStatus.PENDING and row.attempts == 1
            assert row.next_attempt_at == now + BACKOFF[0]
            assert row.last_error == "The endpoint refused the connection (nothing is listening there)."
        # Not due yet: nothing is tried.
        assert delivery.deliver_due(session, sender, SECRET, now=now + timedelta(seconds=1)).delivered == 0

        receiver.start()
        report = delivery.deliver_due(session, sender, SECRET, now=now + BACKOFF[0])
        assert report.delivered == 3
        # Nothing is sent twice afterwards.
        assert delivery.deliver_due(session, sender, SECRET, now=now + timedelta(hours=1)).delivered == 0
    finally:
        sender.close()

    assert sorted(receiver.ids()) == sorted(d.message_id for d in queued)
    assert all(r.verified for r in receiver.received)
    first = receiver.received[0]
    assert first.headers["content-type"] == "application/json"
    assert first.headers["webhook-signature"].startswith("v1,")
    assert int(first.timestamp) == int((now + BACKOFF[0]).replace(tzinfo=UTC).timestamp())
    for row in _deliveries(session):
        assert row.status == WebhookDeliveryStatus.DELIVERED and row.attempts == 2
        assert row.last_status_code == 204 and row.last_error is None and not row.interrupted


def test_a_signature_made_with_another_secret_is_refused_by_the_receiver(session, storage, receiver):
    endpoint = _endpoint(session, receiver)
    old_secret = receiver.secret
    replaced = endpoints.replace_secret(session, SECRET, endpoint.id)
    assert replaced.secret != old_secret
    endpoints.send_test(session, endpoint.id)
    receiver.start()
    sender = _sender(receiver)
    try:
        assert delivery.deliver_due(session, sender, SECRET).delivered == 1
    finally:
        sender.close()
    assert receiver.received[0].verified is False  # checked with the old secret
    receiver.secret = replaced.secret
    receiver._record(receiver.received[0].headers, receiver.received[0].body)
    assert receiver.received[-1].verified is True
    assert json.loads(receiver.received[0].body)["type"] == "webhook.test"


def test_a_delivery_that_keeps_failing_is_failed_then_retried_by_an_admin(session, storage, receiver):
    endpoint = _endpoint(session, receiver)
    endpoints.send_test(session, endpoint.id)
    receiver.status = 500
    receiver.start()
    sender = _sender(receiver)
    now = utcnow()
    try:
        for attempt in range(1, ATTEMPTS + 1):
            report = delivery.deliver_due(session, sender, SECRET, now=now)
            (row,) = _deliveries(session)
            assert row.attempts == attempt and row.last_status_code == 500
            assert row.last_error == "The endpoint answered 500 (Internal Server Error)."
            if attempt < ATTEMPTS:
                assert report.retrying == 1 and row.status == WebhookDeliveryStatus.PENDING
                now = row.next_attempt_at
            else:
                assert report.failed == 1 and row.status == WebhookDeliveryStatus.FAILED
        assert len(receiver.received) == ATTEMPTS
        assert len(set(receiver.ids())) == 1  # every attempt under the same webhook-id

        receiver.status = 200
        assert endpoints.retry(session, endpoint.id) == 1
        (row,) = _deliveries(session)
        assert row.status == WebhookDeliveryStatus.PENDING and row.attempts == 0
        assert delivery.deliver_due(session, sender, SECRET).delivered == 1
    finally:
        sender.close()
    logged = session.scalars(
        select(AdminLogEntry).where(AdminLogEntry.action == "WebhookDeliveriesRetried")
    ).one()
    assert (
        admin_log_sentence(logged.action, logged.details, logged.triggered_by or "the server console")
        == "1 failed delivery to webhook endpoint “Finance system” sent again by the server console"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://localhost:8443/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://[fd00::5]/hooks",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://100.64.0.1/hooks",
    ],
)
def test_an_address_on_the_labs_own_network_is_refused_unless_an_admin_allows_it(session, url):
    with pytest.raises(ValidationError) as refused:
        endpoints.create(session, SECRET, name="Signage", url=url, chosen=["job.created"])
    assert "won't send to" in refused.value.errors["url"]
    assert (
        "Tick “Allow an address on the lab's own network” if it belongs there." in refused.value.errors["url"]
    )
    assert session.scalar(select(WebhookEndpoint.id)) is None

    made = endpoints.create(
        session, SECRET, name="Signage", url=url, chosen=["job.created"], allow_private=True
    )
    assert made.endpoint.allow_private is True


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://finance.example.edu/hooks", "must start with https://"),
        ("https://user:pw@finance.example.edu/hooks", "Leave the user name and password out"),
        ("https://0.0.0.0/hooks", "can't be sent to"),
        ("https://[ff02::1]/hooks", "can't be sent to"),
        ("https://no-such-name.invalid/hooks", "can't be found"),
        ("ftp://x", "must start with https://"),
        ("", "Enter the endpoint's address"),
    ],
)
def test_an_address_that_cant_be_used_gets_a_clear_message(session, url, words):
    with pytest.raises(ValidationError) as refused:
        endpoints.create(session, SECRET, name="Finance", url=url, chosen=["job.created"], allow_private=True)
    assert words in refused.value.errors["url"]


def test_a_name_that_now_leads_to_a_private_address_is_refused_when_sending(session, storage, receiver):
    endpoint = _endpoint(session, receiver)
    # As if the endpoint's name had been pointed at the lab's own network after it was registered.
    session.execute(update(WebhookEndpoint).values(allow_private=False))
    session.commit()
    endpoints.send_test(session, endpoint.id)
    receiver.start()
    sender = _sender(receiver)
    try:
        report = delivery.deliver_due(session, sender, SECRET)
    finally:
        sender.close()
    assert report.failed == 1 and receiver.received == []
    (row,) = _deliveries(session)
    assert row.status == WebhookDeliveryStatus.FAILED
    assert row.last_error.startswith(
        "Not sent: PrintLab won't send to 127.0.0.1: 127.0.0.1 is this server itself"
    )


def test_a_certificate_from_an_unknown_authority_is_refused(session, receiver):
    endpoint = _endpoint(session, receiver)
    endpoints.send_test(session, endpoint.id)
    receiver.start()
    sender = delivery.Sender("no-lab-ca")  # the public authorities only
    try:
        assert delivery.deliver_due(session, sender, SECRET).retrying == 1
    finally:
        sender.close()
    (row,) = _deliveries(session)
    assert row.last_error == "The endpoint's HTTPS certificate couldn't be verified."
    assert receiver.received == []


def test_a_printer_that_stops_answering_is_announced_once(session, receiver):
    _endpoint(session, receiver, ["printer.state_changed"])
    printer = make_printer(session, address=f"http://127.0.0.1:{free_port()}")
    connectors = polling.Connectors(SECRET)
    now = utcnow()
    try:
        for step in range(3):  # nothing listens there: offline from its first poll, and it stays so
            polling.poll_printer(session, printer.id, connectors, now=now + timedelta(seconds=30 * step))
    finally:
        connectors.close()
    (row,) = _deliveries(session)
    data = json.loads(row.body)["data"]
    assert data["printer"] == {"id": printer.id, "name": "Prusa MK4S"}
    assert (data["from"], data["to"]) == (None, "offline")


def test_workers_restarted_or_killed_mid_send_lose_nothing_and_the_receiver_takes_each_event_once(
    session, storage, receiver, lab_env, tmp_path
):
    endpoint = _endpoint(session, receiver)
    for _ in range(16):
        endpoints.send_test(session, endpoint.id)
    expected = {d.message_id for d in _deliveries(session)}
    receiver.delay = 0.3  # each answer takes a moment, so the worker is stopped in the middle of a send
    receiver.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRINTLAB_")}
    env |= lab_env | {"PRINTLAB_WEBHOOK_CA_FILE": str(receiver.ca_file)}

    def worker(log: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as output:
            return subprocess.Popen(
                [str(PRINTLAB), "worker", "--poll", "0.2"], env=env, stdout=output, stderr=subprocess.STDOUT
            )

    # A restart: the worker is told to stop (SIGTERM, as systemd does) in the middle of its batch. It
    # finishes the message it is sending and hands back the rest: nothing is sent twice.
    first = worker("worker-1.log")
    try:
        receiver.wait_for(3)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    rows = _deliveries(session)
    assert all(d.claimed_by is None or d.status == WebhookDeliveryStatus.DELIVERED for d in rows)
    assert not any(d.interrupted or d.sending_at for d in rows)
    delivered = {d.message_id for d in rows if d.status == WebhookDeliveryStatus.DELIVERED}
    assert set(receiver.ids()) == delivered and len(receiver.ids()) == len(delivered)

    # A crash: the next worker is killed (SIGKILL) while a message is on its way.
    second = worker("worker-2.log")
    try:
        receiver.wait_for(len(delivered) + 3)
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait(timeout=30)
    # The killed worker's lease on what it had claimed runs out (two minutes; moved here, not waited for).
    session.rollback()
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.status == WebhookDeliveryStatus.PENDING)
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    session.commit()
    third = worker("worker-3.log")
    try:
        deadline = time.monotonic() + 60
        while any(d.status != WebhookDeliveryStatus.DELIVERED for d in _deliveries(session)):
            assert time.monotonic() < deadline, (tmp_path / "worker-3.log").read_text()[-2000:]
            time.sleep(0.1)
    finally:
        third.send_signal(signal.SIGTERM)
        third.wait(timeout=30)

    received = receiver.ids()
    assert set(received) == expected  # nothing lost
    duplicated = {m for m in received if received.count(m) > 1}
    interrupted = {d.message_id for d in _deliveries(session) if d.interrupted}
    # A second arrival only for the one the killed worker was sending, under the same webhook-id: a
    # receiver that keeps the ids it has seen (as the convention asks) takes each event exactly once.
    assert len(interrupted) == 1 and duplicated <= interrupted
    assert all(r.verified for r in receiver.received)


def test_an_endpoint_that_hangs_is_tried_once_a_run_and_its_other_messages_wait(session, receiver):
    """A receiver that takes the connection and never answers costs one time-out, not one per message."""
    import socket
    import threading

    endpoint = _endpoint(session, receiver)
    for _ in range(3):
        endpoints.send_test(session, endpoint.id)
    hung = socket.create_server(("127.0.0.1", receiver.port))
    taken: list[socket.socket] = []
    threading.Thread(target=lambda: taken.append(hung.accept()[0]), daemon=True).start()
    sender = delivery.Sender("hung", ca_file=receiver.ca_file, timeout=0.5)
    try:
        report = delivery.deliver_due(session, sender, SECRET)
    finally:
        sender.close()
        for connection in taken:
            connection.close()
        hung.close()
    assert report.retrying == 3 and len(taken) == 1
    for row in _deliveries(session):
        assert row.status == WebhookDeliveryStatus.PENDING and row.attempts == 1
        assert row.last_error == "The endpoint didn't answer within 0.5 seconds."


def test_a_name_that_no_longer_resolves_is_tried_again_later(session, receiver):
    endpoint = _endpoint(session, receiver)
    session.execute(update(WebhookEndpoint).values(url="https://no-such-name.invalid/hooks"))
    session.commit()
    endpoints.send_test(session, endpoint.id)
    sender = _sender(receiver)
    try:
        assert delivery.deliver_due(session, sender, SECRET).retrying == 1
    finally:
        sender.close()
    (row,) = _deliveries(session)
    assert row.status == WebhookDeliveryStatus.PENDING
    assert row.last_error == "Not sent: The name no-such-name.invalid can't be found; check the address."
