"""Personal API tokens: made by an admin for one active staff member, shown once, only their hash kept.

A token acts as the staff member it was made for (their name goes on the events it causes, like a
name picked in "Acting as"); it is scoped read (look only) or write (also move jobs), expires, has its
own rate limit, records when it was last used, and can be revoked. Making and revoking are logged.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.text import is_clean
from printlab.models import ApiToken, Staff
from printlab.services.errors import NotFound, ValidationError, checked_text
from printlab.services.lab import admin_log
from printlab.services.lab.actors import Actor, admin_or_console

SCOPES = {"read": "Read only", "write": "Read and change jobs"}
#: What every token starts with, so a leaked one is recognisable (secret scanners, logs).
TOKEN_START = "plt_"  # noqa: S105 (a prefix, not a secret)
MAX_DAYS = 366
DEFAULT_DAYS = 90
DEFAULT_RATE = 120
MAX_RATE = 6000
#: last_used_at is written at most this often per token, so a busy client doesn't write on every call.
LAST_USED_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    """SHA-256 of a token: a 256-bit random value needs no slow hash (nothing to guess)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewToken:
    """A token just made: the row, and the token itself, which exists nowhere else."""

    token: ApiToken
    secret: str


def _whole(value: object, field: str, label: str, low: int, high: int, default: int) -> int:
    text = str(value if value is not None else "").strip()
    if not text:
        return default
    if not text.isdigit() or len(text) > 6 or not low <= int(text) <= high:
        raise ValidationError({field: f"{label} must be a whole number from {low} to {high}."})
    return int(text)


def create(
    session: Session,
    *,
    name: object,
    staff_name: object,
    scope: object,
    days: object = None,
    rate_per_minute: object = None,
    by: Actor | None = None,
    now: datetime | None = None,
) -> NewToken:
    """Make a token (logged). Raises ValidationError with a message per field."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    cleaned = ""
    try:
        cleaned = " ".join(checked_text(name, "name", "The token's name").split())
        if not 2 <= len(cleaned) <= 100:
            errors["name"] = "Give the token a name of 2 to 100 characters, saying what it is for."
    except ValidationError as exc:
        errors.update(exc.errors)
    if scope not in SCOPES:
        errors["scope"] = "Choose read only, or read and change jobs."
    length = rate = 0
    try:
        length = _whole(days, "days", "Days until it expires", 1, MAX_DAYS, DEFAULT_DAYS)
    except ValidationError as exc:
        errors.update(exc.errors)
    try:
        rate = _whole(rate_per_minute, "rate_per_minute", "Requests a minute", 1, MAX_RATE, DEFAULT_RATE)
    except ValidationError as exc:
        errors.update(exc.errors)
    staff_text = str(staff_name or "").strip()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        staff = session.get(Staff, staff_text) if staff_text and is_clean(staff_text) else None
        if staff is None or not staff.is_active:
            errors["staff_name"] = "Choose the active staff member the token acts as."
        if (
            cleaned
            and "name" not in errors
            and session.scalar(select(ApiToken.id).where(ApiToken.name == cleaned))
        ):
            errors["name"] = f"A token named {cleaned} already exists; choose another name."
        if errors:
            raise ValidationError(errors)
        secret = TOKEN_START + secrets.token_urlsafe(32)
        token = ApiToken(
            name=cleaned,
            staff_name=staff_text,
            scope=str(scope),
            token_hash=hash_token(secret),
            prefix=secret[:8],
            rate_per_minute=rate,
            created_at=now,
            created_by=actor.staff,
            expires_at=now + timedelta(days=length),
        )
        session.add(token)
        admin_log.record(
            session, "ApiTokenCreated",
            {"name": cleaned, "staff": staff_text, "scope": token.scope, "expires_at": token.expires_at.isoformat()},
            staff=actor.staff, workstation=actor.workstation, now=now,
        )  # fmt: skip
    return NewToken(token, secret)


def revoke(
    session: Session, token_id: int, *, by: Actor | None = None, now: datetime | None = None
) -> ApiToken:
    """Revoke a token at once (logged; revoking a revoked one changes nothing). Raises NotFound."""
    now = now or utcnow()
    with write_transaction(session):
        actor = admin_or_console(session, by)
        token = session.get(ApiToken, token_id)
        if token is None:
            raise NotFound("There is no such token.")
        if token.revoked_at is None:
            token.revoked_at = now
            token.revoked_by = actor.staff
            admin_log.record(
                session, "ApiTokenRevoked", {"name": token.name, "staff": token.staff_name},
                staff=actor.staff, workstation=actor.workstation, now=now,
            )  # fmt: skip
    return token


def list_tokens(session: Session) -> list[ApiToken]:
    """Every token, newest first (revoked and expired ones too: they say who had access when)."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


class TokenRefused(Exception):
    """The token can't be used; the message says why in words a client's developer can act on."""


def authenticate(session: Session, secret: str, *, now: datetime | None = None) -> ApiToken:
    """The usable token for `secret`, its last use noted. Raises TokenRefused.

    Unknown, revoked and expired tokens, and tokens whose staff member was deactivated, are refused.
    """
    now = now or utcnow()
    if not secret.startswith(TOKEN_START) or len(secret) > 200 or not is_clean(secret):
        raise TokenRefused("The token isn't a PrintLab API token.")
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None:
        raise TokenRefused("The token isn't known. Ask an admin for a new one.")
    if token.revoked_at is not None:
        raise TokenRefused("The token was revoked. Ask an admin for a new one.")
    if token.expires_at <= now:
        raise TokenRefused("The token has expired. Ask an admin for a new one.")
    staff = session.get(Staff, token.staff_name)
    if staff is None or not staff.is_active:
        raise TokenRefused("The staff member this token acts as is no longer active.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        with write_transaction(session):
            session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        session.refresh(token)
    return token


def actor_for(token: ApiToken) -> Actor:
    """Who a token's changes are attributed to: its staff member, at "API: <token name>"."""
    return Actor(token.staff_name, f"API: {token.name}"[:100])
