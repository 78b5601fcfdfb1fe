"""The job page's email section: failed emails retried, any fitting email sent again, by a named person."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import OutboxMessage
from printlab.services.jobs import quote_links, workflow
from printlab.services.lab import workstations

from .factories import STAFF, make_job, quote_token


def client_for(lab_env, session):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    workstations.add_workstation(session, "LAB-PC-1", "a-long-password-1")
    client = app.test_client()
    client.post("/login", data={"workstation": "LAB-PC-1", "password": "a-long-password-1"})
    return app, client


def test_failed_email_is_retried_and_quote_resent_with_a_new_link(lab_env, session, storage):
    job = make_job(session, storage, Status.PENDING)
    app, client = client_for(lab_env, session)
    quote = session.scalars(select(OutboxMessage).where(OutboxMessage.template == "quote")).one()
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == quote.id)
        .values(status="FAILED", last_error="550 no such user")
    )
    session.commit()
    page = client.get(f"/jobs/{job.id}").data.decode()
    assert "550 no such user" in page and "Retry" in page

    assert (
        client.post(f"/jobs/{job.id}/emails/{quote.id}/retry", data={}).status_code == 303
    )  # no name: refused
    session.rollback()
    session.expire_all()
    assert session.get(OutboxMessage, quote.id).status == "FAILED"
    client.post(f"/jobs/{job.id}/emails/{quote.id}/retry", data={"acting_as": STAFF})
    session.rollback()
    session.expire_all()
    assert session.get(OutboxMessage, quote.id).status == "PENDING"

    old = quote_token(session, job.id)
    page = client.get(f"/jobs/{job.id}").data.decode()
    form = page[page.index('id="resend-form"') :]
    version = dict(re.findall(r'<input type="hidden" name="(expected_\w+)" value="([^"]*)"', form)[:2])
    resent = client.post(
        f"/jobs/{job.id}/emails/resend", data={**version, "acting_as": STAFF, "template": "quote"}
    )
    assert resent.status_code == 303
    session.rollback()
    new = quote_token(session, job.id)
    assert new != old
    assert workflow.confirm(session, storage, old).outcome == quote_links.ConfirmOutcome.INVALID
    assert workflow.confirm(session, storage, new).outcome == quote_links.ConfirmOutcome.CONFIRMED
    app.extensions["printlab"].engine.dispose()
