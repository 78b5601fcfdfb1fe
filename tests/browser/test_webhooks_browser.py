"""Admin › Webhooks in Chromium on a phone: an admin adds an endpoint for a real HTTPS receiver, copies its
secret, sends a test event, and the app's own worker delivers it and a job's status change, signed as the
Standard Webhooks library verifies; the log says so in words."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from printlab.models import WebhookDelivery, WebhookDeliveryStatus
from printlab.services.jobs import workflow
from printlab.services.lab import workstations

from ..factories import STAFF, actor, submit_job
from ..webhook_receiver import Receiver
from .conftest import PASSWORD, PHONE, Live, act_as, sign_in

pytestmark = pytest.mark.browser

ADMIN_PC = "ADMIN-PC"


@pytest.fixture
def receiver(tmp_path: Path):  # type: ignore[no-untyped-def]
    made = Receiver(tmp_path).start()
    yield made
    made.stop()


@pytest.fixture
def lab_env(lab_env: dict[str, str], receiver: Receiver) -> dict[str, str]:
    """The live app trusts the receiver's certificate authority, as a lab would its campus CA."""
    return lab_env | {"PRINTLAB_WEBHOOK_CA_FILE": str(receiver.ca_file)}


def _delivered(live: Live, count: int) -> list[WebhookDelivery]:
    deadline = time.monotonic() + 30
    while True:
        rows = list(live.fresh().scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        if len(rows) >= count and all(r.status == WebhookDeliveryStatus.DELIVERED for r in rows):
            return rows
        assert time.monotonic() < deadline, [(r.kind, r.status, r.last_error) for r in rows]
        time.sleep(0.1)


def test_an_admin_adds_an_endpoint_and_watches_its_events_arrive_on_a_phone(
    live: Live, open_tab: Any, receiver: Receiver, storage
):
    workstations.add_workstation(live.session, ADMIN_PC, PASSWORD, is_admin=True)
    phone = open_tab("admin-phone", PHONE)
    sign_in(phone, live, ADMIN_PC)
    page = phone.page
    phone.go(f"{live.url}/admin/webhooks")
    act_as(phone, STAFF)

    # A private address is refused in words until the admin allows the lab's own network.
    page.get_by_label("Name", exact=True).fill("Finance system")
    page.get_by_label("Address", exact=True).fill(receiver.url)
    page.get_by_label("A job's status changes").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Add endpoint").click()
    assert "127.0.0.1 is this server itself (loopback)" in page.locator("#add-url-error").inner_text()
    assert page.get_by_label("Address", exact=True).input_value() == receiver.url  # what was typed stays
    page.get_by_label("Allow an address on the lab's own network").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Add endpoint").click()
    phone.audit()
    secret = page.locator("#new-secret-value").inner_text()
    assert secret.startswith("whsec_") and "not shown again" in page.locator("#new-secret").inner_text()
    width = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert width[0] <= width[1], f"the webhooks page scrolls sideways at 375 px: {width}"
    receiver.secret = secret

    # A test event, then a real status change: both arrive signed, and the log says so.
    with page.expect_navigation():
        page.get_by_role("link", name="Open Finance system").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Send a test event").click()
    assert "Test event queued" in page.locator(".flashes").inner_text()
    job = submit_job(live.session, storage)
    workflow.approve(live.session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2)
    rows = _delivered(live, 2)
    receiver.wait_for(2)
    assert [r.kind for r in rows] == ["webhook.test", "job.status_changed"]  # job.created wasn't chosen
    assert all(r.verified for r in receiver.received)
    change = next(
        json.loads(r.body) for r in receiver.received if json.loads(r.body)["type"] != "webhook.test"
    )
    assert (change["data"]["from"], change["data"]["to"], change["data"]["by"]) == (
        "UPLOADED",
        "PENDING",
        STAFF,
    )

    phone.go(page.url)
    log = page.locator("#deliveries").inner_text()
    assert f"Test event sent by {STAFF}" in log and "Uploaded → Pending" in log
    assert log.count("Delivered") == 2 and "(answer 204)" in log
    page.get_by_text("Message sent").first.click()
    assert '"type": "job.status_changed"' in page.locator("#deliveries pre").first.inner_text()
    phone.audit()
