"""A "needs changes" request's record: its reply link (stored hashed), finding it, and closing it.

Staff ask for a corrected file instead of rejecting (`student_actions.request_changes`); the job stays
Uploaded and an open `job_change_request` row is what "waiting for the student" means. The row is
closed when the student sends the file, when the sweep gives up waiting, or when the job leaves
Uploaded any other way (the status-change engine calls `close_open`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from printlab.domain.catalog import Catalog
from printlab.domain.statuses import Status
from printlab.models import ChangeOutcome, Job, JobChangeRequest
from printlab.services.jobs.quote_links import hash_token

#: The longest link token the pages look up (a real one is 43 characters).
MAX_TOKEN = 200


def open_request(session: Session, job_id: str) -> JobChangeRequest | None:
    """The job's request still waiting for the student's file, if any."""
    return session.scalar(
        select(JobChangeRequest)
        .where(JobChangeRequest.job_id == job_id, JobChangeRequest.closed_at.is_(None))
        .order_by(JobChangeRequest.id.desc())
        .limit(1)
    )


def latest_request(session: Session, job_id: str) -> JobChangeRequest | None:
    return session.scalar(
        select(JobChangeRequest)
        .where(JobChangeRequest.job_id == job_id)
        .order_by(JobChangeRequest.id.desc())
        .limit(1)
    )


def issue(
    session: Session, job: Job, *, staff: str, reasons: dict[str, Any], catalog: Catalog, now: datetime
) -> tuple[JobChangeRequest, str]:
    """A new open request with a fresh reply token (256 bits); only its hash is stored."""
    token = secrets.token_urlsafe(32)
    request = JobChangeRequest(
        job_id=job.id,
        requested_at=now,
        requested_by=staff,
        reasons=reasons,
        token_hash=hash_token(token),
        expires_at=now + timedelta(days=catalog.changes_reply_days),
    )
    session.add(request)
    return request, token


def close_open(session: Session, job: Job, outcome: str, now: datetime) -> JobChangeRequest | None:
    """Close the job's open request (inside the caller's transaction); None when there was none."""
    request = open_request(session, job.id)
    if request is not None and request.closed_at is None:  # not closed already by the change itself
        request.closed_at = now
        request.outcome = outcome
    return request


class LinkState(StrEnum):
    """What a reply link does now."""

    OPEN = "open"
    USED = "used"  # the corrected file arrived already
    EXPIRED = "expired"  # the days ran out (or the job was rejected for it)
    CLOSED = "closed"  # the job moved on otherwise
    INVALID = "invalid"


@dataclass(frozen=True)
class ReplyLink:
    state: LinkState
    request: JobChangeRequest | None
    job: Job | None


def find_link(session: Session, token: str, now: datetime) -> ReplyLink:
    """The request a reply link names and what it would do now (never raises)."""
    if not token or len(token) > MAX_TOKEN:
        return ReplyLink(LinkState.INVALID, None, None)
    request = session.scalar(select(JobChangeRequest).where(JobChangeRequest.token_hash == hash_token(token)))
    if request is None:
        return ReplyLink(LinkState.INVALID, None, None)
    job = session.get(Job, request.job_id)
    return ReplyLink(link_state(request, job, now), request, job)


def link_state(request: JobChangeRequest, job: Job | None, now: datetime) -> LinkState:
    if job is None:
        return LinkState.INVALID
    if request.outcome == ChangeOutcome.REPLACED:
        return LinkState.USED
    if request.outcome == ChangeOutcome.NO_ANSWER:
        return LinkState.EXPIRED
    if request.closed_at is not None or job.status != Status.UPLOADED:
        return LinkState.CLOSED
    if request.expires_at <= now:
        return LinkState.EXPIRED
    return LinkState.OPEN


def reasons_list(reasons: Any) -> list[str]:
    """A request's reasons as the student reads them (catalog reasons, then the staff's own words)."""
    if not isinstance(reasons, dict):
        return []
    return [*[str(r) for r in reasons.get("reasons") or []], *filter(None, [reasons.get("other")])]
