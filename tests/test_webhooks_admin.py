"""Admin › Webhooks through the app: adding an endpoint (its secret shown once), the refusals in words, the
endpoint's page with its delivery log, a test event, pausing, a new secret, retrying and removing; staff
who aren't admins can't see any of it."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from printlab.models import AdminLogEntry, WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from printlab.services.webhooks import endpoints

from .conftest import sign_in_client
from .factories import STAFF, make_staff
from .fleet_factories import SECRET
from .test_exports import admin_client


def _csrf(client, path: str) -> str:  # type: ignore[no-untyped-def]
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _add(client, **fields):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": _csrf(client, "/admin/webhooks"),
        "acting_as": STAFF,
        "name": "Finance system",
        "url": "https://127.0.0.1:9443/hooks",
        "events": ["job.created", "payment.recorded"],
        "allow_private": "1",
    } | fields
    return client.post("/admin/webhooks", data=data)


def test_an_admin_adds_an_endpoint_and_sees_its_secret_once(app, session):
    make_staff(session)
    client = admin_client(app, session)
    answer = _add(client)
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    session.rollback()  # a fresh read of what the app committed
    secret = re.search(r'id="new-secret-value" class="secret">(whsec_[^<]+)<', page).group(1)  # type: ignore[union-attr]
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    assert endpoint.events == ["job.created", "payment.recorded"] and endpoint.created_by == STAFF
    assert secret not in endpoint.secret_sealed
    listed = client.get("/admin/webhooks").get_data(as_text=True)
    assert "Finance system" in listed and secret not in listed and "Sending" in listed
    entry = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "WebhookEndpointAdded")).one()
    assert entry.triggered_by == STAFF


def test_refusals_are_sentences_beside_their_fields_and_nothing_is_saved(app, session):
    make_staff(session)
    client = admin_client(app, session)
    answer = _add(client, url="https://10.0.0.8/hooks", allow_private="", events=[])
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422
    assert "PrintLab won&#39;t send to 10.0.0.8: 10.0.0.8 is a private network address." in page
    assert "Choose at least one event to send." in page
    assert 'aria-invalid="true" aria-describedby="add-url-error"' in page
    assert 'value="https://10.0.0.8/hooks"' in page  # what was typed stays
    assert session.scalar(select(WebhookEndpoint.id)) is None


def test_the_endpoint_page_shows_its_log_and_its_buttons_work(app, session):
    make_staff(session)
    client = admin_client(app, session)
    _add(client)
    session.rollback()  # a fresh read of what the app committed
    endpoint = session.scalars(select(WebhookEndpoint)).one()
    path = f"/admin/webhooks/{endpoint.id}"

    answer = client.post(f"{path}/test", data={"csrf_token": _csrf(client, path), "acting_as": STAFF})
    assert answer.status_code == 303
    page = client.get(path).get_data(as_text=True)
    assert "Test event queued" in page and f"Test event sent by {STAFF}" in page
    assert "Waiting to be sent" in page and "&#34;type&#34;: &#34;webhook.test&#34;" in page
    session.rollback()  # a fresh read of what the app committed

    # A delivery that gave up shows why, and is sent again by its button.
    session.execute(
        update(WebhookDelivery).values(
            status=WebhookDeliveryStatus.FAILED, attempts=8, last_error="The endpoint answered 500."
        )
    )
    session.commit()
    page = client.get(path).get_data(as_text=True)
    assert "1 failed delivery" in page and "Failed</strong> after 8 tries: The endpoint answered 500." in page
    answer = client.get("/healthz")
    health = answer.get_json()
    assert (answer.status_code, health["status"]) == (
        200,
        "degraded",
    )  # serving: it never takes the site down…
    assert health["components"]["webhooks"] == {
        "status": "degraded",
        "waiting": 0,
        "failed": 1,
    }  # …monitoring sees it
    delivery = session.scalars(select(WebhookDelivery)).one()
    client.post(
        f"{path}/retry", data={"csrf_token": _csrf(client, path), "acting_as": STAFF, "delivery": delivery.id}
    )
    session.rollback()  # a fresh read of what the app committed
    assert delivery.status == WebhookDeliveryStatus.PENDING and delivery.retried_by == STAFF

    client.post(f"{path}/state", data={"csrf_token": _csrf(client, path), "acting_as": STAFF, "enabled": "0"})
    session.rollback()  # a fresh read of what the app committed
    assert endpoint.enabled is False
    assert "when the endpoint is resumed" in client.get(path).get_data(as_text=True)

    answer = client.post(f"{path}/secret", data={"csrf_token": _csrf(client, path), "acting_as": STAFF})
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert "whsec_" in answer.get_data(as_text=True)

    answer = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path), "acting_as": STAFF, "name": "Bursar", "url": endpoint.url,
            "events": ["printer.state_changed"], "allow_private": "1",
        },
    )  # fmt: skip
    assert answer.status_code == 303
    session.rollback()  # a fresh read of what the app committed
    assert (endpoint.name, endpoint.events) == ("Bursar", ["printer.state_changed"])

    refused = client.post(f"{path}/remove", data={"csrf_token": _csrf(client, path), "acting_as": STAFF})
    session.rollback()  # a fresh read of what the app committed
    assert refused.status_code == 303 and session.scalar(select(WebhookEndpoint.id)) is not None
    client.post(
        f"{path}/remove", data={"csrf_token": _csrf(client, path), "acting_as": STAFF, "confirm": "yes"}
    )
    session.rollback()  # a fresh read of what the app committed
    assert session.scalar(select(WebhookEndpoint.id)) is None
    assert session.scalar(select(WebhookDelivery.id)) is None
    assert client.get(path).status_code == 404


def test_staff_at_an_ordinary_workstation_cant_reach_webhooks(app, session):
    make_staff(session)
    made = endpoints.create(
        session, SECRET, name="Finance", url="https://127.0.0.1/h", chosen=["job.created"], allow_private=True
    )
    client = sign_in_client(app.test_client(), session)
    for path in ("/admin/webhooks", f"/admin/webhooks/{made.endpoint.id}"):
        answer = client.get(path)
        assert answer.status_code in (302, 303, 403)
        assert "whsec_" not in answer.get_data(as_text=True)
