"""The student's quote link: a single-use capability token, stored only as its hash, and what it would do now."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.catalog import Catalog
from printlab.domain.statuses import Status
from printlab.models import Job


def hash_token(token: str) -> str:
    """The stored form of a capability token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(job: Job, catalog: Catalog, now: datetime) -> str:
    """A fresh single-use confirm token (256 bits). Only its hash is stored; the raw one goes in the email."""
    token = secrets.token_urlsafe(32)
    job.confirm_token = hash_token(token)
    job.confirm_token_expires = now + timedelta(hours=catalog.confirm_link_hours)
    job.is_confirmation_expired = False
    job.confirmation_last_sent_at = now
    return token


def quote_context(job: Job, token: str) -> dict[str, Any]:
    assert job.confirm_token_expires is not None
    return {"token": token, "expires_at": job.confirm_token_expires.isoformat()}


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY_CONFIRMED = "already_confirmed"
    EXPIRED = "expired"
    INVALID = "invalid"


def find_by_token(session: Session, token: str) -> Job | None:
    if not token or len(token) > 200:
        return None
    return session.scalar(select(Job).where(Job.confirm_token == hash_token(token)))


def token_state(job: Job | None, now: datetime) -> ConfirmOutcome | None:
    """What a confirm link would do right now (None: it would confirm)."""
    if job is None:
        return ConfirmOutcome.INVALID
    if job.student_confirmed:
        return ConfirmOutcome.ALREADY_CONFIRMED
    if job.status != Status.PENDING:
        return ConfirmOutcome.INVALID
    if job.is_confirmation_expired or (job.confirm_token_expires and job.confirm_token_expires <= now):
        return ConfirmOutcome.EXPIRED
    return None
