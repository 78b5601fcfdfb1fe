"""Signing a student in by an emailed link: single-use 15-minute links and 30-day revocable sessions.

Nothing here looks at the student's jobs: a link is made and emailed for any well-formed address, so
asking reveals nothing about who has sent prints (the same rows, email and answer either way). The
raw tokens only ever travel in the email and the browser's cookie; the tables keep their SHA-256.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.submission import MESSAGES
from printlab.domain.text import is_email
from printlab.models import StudentSession, StudentSignInLink
from printlab.services.errors import ServiceError, ValidationError, checked_text
from printlab.services.jobs.quote_links import hash_token
from printlab.services.mail import outbox

#: How long an emailed sign-in link works (once).
LINK_LIFETIME = timedelta(minutes=15)
#: How long a browser stays signed in as the address, unless signed out sooner.
SESSION_LIFETIME = timedelta(days=30)
#: Links one address may be sent in an hour (counted in the database, so every app server agrees).
LINKS_PER_HOUR = 5
#: Spent links and ended sessions are deleted this long after they stopped working.
KEEP_SPENT = timedelta(days=1)
#: Longer than any token this module hands out; anything longer is not looked up.
_MAX_TOKEN = 200


class LinkState(StrEnum):
    """What a sign-in link would do now."""

    USABLE = "usable"
    USED = "used"
    EXPIRED = "expired"
    INVALID = "invalid"


class LinkRefused(ServiceError):
    """The link can't sign anyone in: `state` says whether it was used, expired or never valid."""

    def __init__(self, state: LinkState):
        self.state = state
        super().__init__(f"This sign-in link is {state.value}.")


class TooManyLinks(ServiceError):
    """The address was sent as many links as it may have in an hour; `retry_at` (naive UTC) says when."""

    def __init__(self, retry_at: datetime):
        self.retry_at = retry_at
        super().__init__("We've sent several links to this address in the last hour.")


@dataclass(frozen=True)
class SignedIn:
    """A new session: the raw id for the browser's cookie (never stored), whose it is and until when."""

    session_token: str
    email: str
    expires_at: datetime


def read_email(value: object) -> str:
    """The typed address as PrintLab stores addresses (trimmed, lower-cased); ValidationError if unusable."""
    email = checked_text(value, "student_email", "Your email address").strip().lower()
    if not email:
        raise ValidationError({"student_email": MESSAGES["student_email.missing"]})
    if not is_email(email):
        raise ValidationError({"student_email": MESSAGES["student_email"]})
    return email


def request_link(session: Session, email: object, *, now: datetime | None = None) -> str:
    """Email a sign-in link to the address (whether or not it has sent any print); returns the address.

    Raises ValidationError for an address that isn't one, TooManyLinks past LINKS_PER_HOUR.
    """
    address = read_email(email)
    now = now or utcnow()
    with write_transaction(session):
        recent = session.execute(
            select(func.count(), func.min(StudentSignInLink.created_at)).where(
                StudentSignInLink.email == address, StudentSignInLink.created_at > now - timedelta(hours=1)
            )
        ).one()
        if recent[0] >= LINKS_PER_HOUR:
            raise TooManyLinks(recent[1] + timedelta(hours=1))
        token = secrets.token_urlsafe(32)
        expires = now + LINK_LIFETIME
        session.add(
            StudentSignInLink(token_hash=hash_token(token), email=address, created_at=now, expires_at=expires)
        )
        outbox.enqueue_for_student(
            session,
            "sign_in_link",
            address,
            now,
            token=token,
            expires_at=expires.isoformat(),
            minutes=int(LINK_LIFETIME.total_seconds() // 60),
        )
    return address


def _state(link: StudentSignInLink | None, now: datetime) -> LinkState:
    if link is None:
        return LinkState.INVALID
    if link.used_at is not None:
        return LinkState.USED
    if link.expires_at <= now:
        return LinkState.EXPIRED
    return LinkState.USABLE


def _usable_token(token: str | None) -> bool:
    return bool(token) and len(token or "") <= _MAX_TOKEN


def link_state(session: Session, token: str, *, now: datetime | None = None) -> LinkState:
    """What the link would do now (a read: a mail scanner fetching the link changes nothing)."""
    if not _usable_token(token):
        return LinkState.INVALID
    link = session.scalar(select(StudentSignInLink).where(StudentSignInLink.token_hash == hash_token(token)))
    state = _state(link, now or utcnow())
    session.rollback()  # end the read, so a later write starts afresh
    return state


def sign_in(session: Session, token: str, *, now: datetime | None = None) -> SignedIn:
    """Use the link up and open a session for its address. Raises LinkRefused (used, expired, invalid)."""
    if not _usable_token(token):
        raise LinkRefused(LinkState.INVALID)
    now = now or utcnow()
    with write_transaction(session):
        # Locked, and re-read, so two tabs opening the same link can't both sign in with it.
        link = session.scalar(
            select(StudentSignInLink)
            .where(StudentSignInLink.token_hash == hash_token(token))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        state = _state(link, now)
        if state != LinkState.USABLE or link is None:
            raise LinkRefused(state)
        link.used_at = now
        return _open_session(session, link.email, now)


def sign_in_vouched(session: Session, email: str, *, now: datetime | None = None) -> SignedIn:
    """Open a session for an address the campus sign-in vouched for (no link needed).
    Raises ValidationError for an address that can't be one."""
    address = read_email(email)
    now = now or utcnow()
    with write_transaction(session):
        return _open_session(session, address, now)


def _open_session(session: Session, email: str, now: datetime) -> SignedIn:
    """A new 30-day session for the address, its id stored hashed (in the caller's transaction)."""
    raw = secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    session.add(StudentSession(token_hash=hash_token(raw), email=email, created_at=now, expires_at=expires))
    return SignedIn(raw, email, expires)


def _live(now: datetime):  # type: ignore[no-untyped-def]
    return (StudentSession.revoked_at.is_(None)) & (StudentSession.expires_at > now)


def signed_in_as(session: Session, session_token: str | None, *, now: datetime | None = None) -> str | None:
    """The address a browser's session id is signed in as, or None (unknown, expired or signed out)."""
    if not session_token or not _usable_token(session_token):
        return None
    email = session.scalar(
        select(StudentSession.email).where(
            StudentSession.token_hash == hash_token(session_token), _live(now or utcnow())
        )
    )
    session.rollback()
    return email


def sign_out(session: Session, session_token: str | None, *, now: datetime | None = None) -> None:
    """End this browser's session (nothing happens for one that already ended or never was)."""
    if not session_token or not _usable_token(session_token):
        return
    now = now or utcnow()
    with write_transaction(session):
        session.execute(
            update(StudentSession)
            .where(
                StudentSession.token_hash == hash_token(session_token), StudentSession.revoked_at.is_(None)
            )
            .values(revoked_at=now)
        )


def sign_out_everywhere(session: Session, session_token: str | None, *, now: datetime | None = None) -> int:
    """End every session of the address this browser is signed in as; how many ended (0: not signed in)."""
    if not session_token or not _usable_token(session_token):
        return 0
    now = now or utcnow()
    with write_transaction(session):
        email = session.scalar(
            select(StudentSession.email).where(
                StudentSession.token_hash == hash_token(session_token), _live(now)
            )
        )
        if email is None:
            return 0
        ended = session.execute(
            update(StudentSession)
            .where(StudentSession.email == email, _live(now))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
    return int(ended.rowcount or 0)


def forget_spent(session: Session, *, now: datetime | None = None) -> int:
    """Delete links and sessions that stopped working more than KEEP_SPENT ago (the worker's sweep).

    A plain read first: on the usual tick there is nothing to delete and no write lock is taken.
    """
    now = now or utcnow()
    before = now - KEEP_SPENT
    spent_link = StudentSignInLink.expires_at < before
    spent_session = or_(StudentSession.expires_at < before, StudentSession.revoked_at < before)
    due = session.scalar(select(StudentSignInLink.id).where(spent_link).limit(1)) or session.scalar(
        select(StudentSession.id).where(spent_session).limit(1)
    )
    session.rollback()
    if due is None:
        return 0
    with write_transaction(session):
        links = session.execute(delete(StudentSignInLink).where(spent_link))
        sessions = session.execute(delete(StudentSession).where(spent_session))
    return int(links.rowcount or 0) + int(sessions.rowcount or 0)
