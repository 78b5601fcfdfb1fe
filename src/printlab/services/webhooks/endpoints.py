"""The admin's webhook endpoints: add, edit, pause or resume, remove, a new signing secret, a test event,
retrying failed deliveries; and what the admin pages list (each endpoint's log). Every change is logged.

An endpoint's address is checked when it is saved (https, and every address its name leads to allowed
unless the admin allowed the lab's own network) and again before every attempt (`delivery`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.webhooks import EVENTS, WebhookRuleError, checked_url, new_secret
from printlab.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from printlab.services import sealing
from printlab.services.errors import NotFound, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console
from printlab.services.webhooks import events, targets

#: What the derived sealing key is for: it never opens a printer's API key, nor they these.
SECRET_PURPOSE = b"printlab webhook signing secret v1"
#: Deliveries shown on an endpoint's page at once.
LOG_PAGE = 50


@dataclass(frozen=True)
class Entry:
    """What an admin typed for an endpoint, checked."""

    name: str
    url: str
    events: list[str]
    allow_private: bool


@dataclass(frozen=True)
class NewSecret:
    """An endpoint and its signing secret, shown once (it is kept sealed)."""

    endpoint: WebhookEndpoint
    secret: str


def _read(
    *, name: object, url: object, chosen: object, allow_private: object
) -> tuple[Entry, dict[str, str]]:
    """What was typed, checked without the database, and a message per field that can't be used. The
    address is resolved here, before any transaction: a slow name server must not hold the database."""
    errors: dict[str, str] = {}
    cleaned = ""
    try:
        cleaned = " ".join(checked_text(name, "name", "The endpoint's name").split())
        if not 2 <= len(cleaned) <= 100:
            errors["name"] = (
                "Give the endpoint a name of 2 to 100 characters, saying what receives the events."
            )
    except ValidationError as exc:
        errors.update(exc.errors)
    kinds = [
        str(kind) for kind in (chosen if isinstance(chosen, list | tuple) else [chosen] if chosen else [])
    ]
    if not kinds or any(kind not in EVENTS for kind in kinds):
        errors["events"] = "Choose at least one event to send."
    private = allow_private in (True, "1", "on", "yes", "true")
    address = ""
    try:
        address = checked_text(url, "url", "The address").strip()
        targets.checked_addresses(checked_url(address), allow_private=private)
    except ValidationError as exc:
        errors.update(exc.errors)
    except WebhookRuleError as exc:
        errors["url"] = str(exc)
    return Entry(cleaned, address, [kind for kind in EVENTS if kind in kinds], private), errors


def _refuse(session: Session, entry: Entry, errors: dict[str, str], *, endpoint_id: int | None) -> None:
    """Raise ValidationError with every message, another endpoint's name among them (in the transaction)."""
    if entry.name and "name" not in errors:
        clash = select(WebhookEndpoint.id).where(WebhookEndpoint.name == entry.name)
        if endpoint_id is not None:
            clash = clash.where(WebhookEndpoint.id != endpoint_id)
        if session.scalar(clash) is not None:
            errors = {
                **errors,
                "name": f"An endpoint named {entry.name} already exists; choose another name.",
            }
    if errors:
        raise ValidationError(errors)


def create(
    session: Session,
    lab_secret: str,
    *,
    name: object,
    url: object,
    chosen: object,
    allow_private: object = False,
    by: Actor | None = None,
    now: datetime | None = None,
) -> NewSecret:
    """Add an endpoint with a new signing secret (logged). Raises ValidationError with a message per field."""
    now = now or utcnow()
    entry, errors = _read(name=name, url=url, chosen=chosen, allow_private=allow_private)
    with write_transaction(session):
        actor = admin_or_console(session, by)
        _refuse(session, entry, errors, endpoint_id=None)
        secret = new_secret()
        endpoint = WebhookEndpoint(
            name=entry.name, url=entry.url, events=entry.events,
            secret_sealed=sealing.seal(lab_secret, secret, SECRET_PURPOSE), allow_private=entry.allow_private,
            enabled=True, created_at=now, created_by=actor.staff, updated_at=now,
        )  # fmt: skip
        session.add(endpoint)
        admin_log.record(
            session, "WebhookEndpointAdded", _logged(entry), staff=actor.staff, workstation=actor.workstation, now=now
        )  # fmt: skip
    return NewSecret(endpoint, secret)


def _logged(entry: Entry | WebhookEndpoint) -> dict[str, object]:
    return {
        "name": entry.name,
        "url": entry.url,
        "events": list(entry.events),
        "allow_private": entry.allow_private,
    }


def _locked(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if endpoint is None:
        raise NotFound("There is no such webhook endpoint.")
    return endpoint


def update_endpoint(
    session: Session,
    endpoint_id: int,
    *,
    name: object,
    url: object,
    chosen: object,
    allow_private: object = False,
    by: Actor | None = None,
    now: datetime | None = None,
) -> WebhookEndpoint:
    """Change an endpoint's name, address, events or network permission (logged). Deliveries already
    queued go to the new address, checked again before each attempt."""
    now = now or utcnow()
    entry, errors = _read(name=name, url=url, chosen=chosen, allow_private=allow_private)
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        _refuse(session, entry, errors, endpoint_id=endpoint_id)
        before = _logged(endpoint)
        endpoint.name, endpoint.url, endpoint.events = entry.name, entry.url, entry.events
        endpoint.allow_private = entry.allow_private
        endpoint.updated_at = now
        admin_log.record(
            session, "WebhookEndpointChanged", {"before": before, **_logged(entry)},
            staff=actor.staff, workstation=actor.workstation, now=now,
        )  # fmt: skip
    return endpoint


def set_enabled(
    session: Session, endpoint_id: int, enabled: bool, *, by: Actor | None = None, now: datetime | None = None
) -> WebhookEndpoint:
    """Pause an endpoint (nothing new is queued and nothing is sent; what was queued waits) or resume it."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        if endpoint.enabled != enabled:
            endpoint.enabled = enabled
            endpoint.updated_at = now
            admin_log.record(
                session, "WebhookEndpointResumed" if enabled else "WebhookEndpointPaused", {"name": endpoint.name},
                staff=actor.staff, workstation=actor.workstation, now=now,
            )  # fmt: skip
    return endpoint


def remove(
    session: Session, endpoint_id: int, *, by: Actor | None = None, now: datetime | None = None
) -> str:
    """Remove an endpoint and its delivery log (logged); its name."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        name = endpoint.name
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
        session.delete(endpoint)
        admin_log.record(
            session, "WebhookEndpointRemoved", {"name": name, "url": endpoint.url},
            staff=actor.staff, workstation=actor.workstation, now=now,
        )  # fmt: skip
    return name


def replace_secret(
    session: Session,
    lab_secret: str,
    endpoint_id: int,
    *,
    by: Actor | None = None,
    now: datetime | None = None,
) -> NewSecret:
    """A new signing secret for the endpoint, used from its next attempt on (the old one stops at once)."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        secret = new_secret()
        endpoint.secret_sealed = sealing.seal(lab_secret, secret, SECRET_PURPOSE)
        endpoint.updated_at = now
        admin_log.record(
            session, "WebhookSecretReplaced", {"name": endpoint.name},
            staff=actor.staff, workstation=actor.workstation, now=now,
        )  # fmt: skip
    return NewSecret(endpoint, secret)


def send_test(
    session: Session, endpoint_id: int, *, by: Actor | None = None, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a test event to this endpoint (whatever events it chose; a paused one sends it once resumed)."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        return events.test_event(session, endpoint.id, by=actor.staff, now=now)


def retry(
    session: Session, endpoint_id: int, delivery_id: int | None = None, *, by: Actor | None = None,
    now: datetime | None = None,
) -> int:  # fmt: skip
    """Send failed deliveries of the endpoint again from their first attempt: one (`delivery_id`) or all of
    them. Logged; returns how many. Raises NotFound, ValidationError (that delivery hasn't failed)."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        endpoint = _locked(session, endpoint_id)
        chosen = (WebhookDelivery.endpoint_id == endpoint_id) & (
            WebhookDelivery.status == WebhookDeliveryStatus.FAILED
        )
        if delivery_id is not None:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None or row.endpoint_id != endpoint_id:
                raise NotFound("There is no such delivery.")
            if row.status != WebhookDeliveryStatus.FAILED:
                raise ValidationError({"delivery": "Only a failed delivery can be retried; this one isn't."})
            chosen = chosen & (WebhookDelivery.id == delivery_id)
        count = session.execute(
            update(WebhookDelivery)
            .where(chosen)
            .values(
                status=WebhookDeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                claimed_by=None,
                sending_at=None,
                retried_by=actor.staff,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if count:
            admin_log.record(
                session, "WebhookDeliveriesRetried", {"name": endpoint.name, "count": count},
                staff=actor.staff, workstation=actor.workstation, now=now,
            )  # fmt: skip
    return int(count or 0)


# -- what the pages show -------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    endpoint: WebhookEndpoint
    delivered: int
    waiting: int
    failed: int
    last_delivered_at: datetime | None


def summaries(session: Session) -> list[Summary]:
    """Every endpoint, by name, with its deliveries counted (one query for the counts)."""
    endpoints = list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.name)))
    counts = {
        endpoint_id: (delivered or 0, waiting or 0, failed or 0, last)
        for endpoint_id, delivered, waiting, failed, last in session.execute(
            select(
                WebhookDelivery.endpoint_id,
                func.sum(case((WebhookDelivery.status == WebhookDeliveryStatus.DELIVERED, 1), else_=0)),
                func.sum(case((WebhookDelivery.status == WebhookDeliveryStatus.PENDING, 1), else_=0)),
                func.sum(case((WebhookDelivery.status == WebhookDeliveryStatus.FAILED, 1), else_=0)),
                func.max(WebhookDelivery.delivered_at),
            ).group_by(WebhookDelivery.endpoint_id)
        )
    }
    return [Summary(endpoint, *counts.get(endpoint.id, (0, 0, 0, None))) for endpoint in endpoints]


@dataclass
class Log:
    endpoint: WebhookEndpoint
    deliveries: list[WebhookDelivery] = field(default_factory=list)
    failed: int = 0
    #: The id to ask for the next (older) page with, or None when this is the last page.
    older: int | None = None


def endpoint_log(
    session: Session, endpoint_id: int, *, before: int | None = None, limit: int = LOG_PAGE
) -> Log:
    """An endpoint and its deliveries, newest first, a page at a time (keyset: ids below `before`)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("There is no such webhook endpoint.")
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    rows = list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    failed = session.scalar(
        select(func.count())
        .select_from(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == WebhookDeliveryStatus.FAILED
        )
    )
    older = rows[limit - 1].id if len(rows) > limit else None
    return Log(endpoint, rows[:limit], int(failed or 0), older)
