"""The Mail page's list of emails: searched by recipient, subject, email or state, newest first, a page at a time."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from printlab.domain.history import email_name
from printlab.domain.text import is_clean
from printlab.models import Job, OutboxMessage, OutboxStatus
from printlab.services.mail.delivery import job_short_id
from printlab.services.mail.render import STUDENT_TEMPLATES, TEMPLATES, subject_outline

PAGE_SIZE = 25
MAX_QUERY = 100
#: The states a person can pick in the search form, in words.
STATES = {
    OutboxStatus.PENDING: "Waiting",
    OutboxStatus.SENT: "Sent",
    OutboxStatus.FAILED: "Failed",
    OutboxStatus.CANCELLED: "Not sent",
}
_HEX = re.compile(r"[0-9a-f]{4,32}")


@dataclass(frozen=True)
class MailSearch:
    """What the search form asked for: words (recipient, subject or email name) and a state."""

    text: str = ""
    state: str = ""

    @classmethod
    def parse(cls, text: str | None, state: str | None) -> MailSearch:
        """The form's values, trimmed; an unknown state means any state, and words that break the one
        text rule (a NUL, control or bidi character) search for nothing rather than fail."""
        words = " ".join((text or "").split())[:MAX_QUERY]
        if not is_clean(words):
            words = "".join(ch for ch in words if is_clean(ch))
        return cls(words, state if state in STATES else "")


@dataclass(frozen=True)
class MailLine:
    """One email as the list shows it, with its technical fields kept for the details toggle."""

    message: OutboxMessage
    what: str
    state: str
    when: datetime
    when_means: str
    job_short_id: str | None


@dataclass(frozen=True)
class MailPage:
    lines: list[MailLine]
    #: Ids for the keyset links: `older` shows the emails before this id, `newer` those after it.
    older: int | None
    newer: int | None


def _state(message: OutboxMessage) -> tuple[str, datetime, str]:
    """The state in words, and the time that matters for it (and what that time is)."""
    if message.status == OutboxStatus.SENT:
        return "Sent", message.sent_at or message.created_at, "sent"
    if message.status == OutboxStatus.FAILED:
        return "Failed — needs a Retry", message.created_at, "queued"
    if message.status == OutboxStatus.CANCELLED:
        return "Not sent — no longer needed", message.created_at, "queued"
    if message.attempts:
        return f"Waiting — try {message.attempts + 1} due", message.next_attempt_at, "next try"
    return "Waiting to be sent", message.created_at, "queued"


def _templates_matching(text: str) -> list[str]:
    """The emails whose name or subject contains the words."""
    wanted = text.lower()
    return [
        t
        for t in (*TEMPLATES, *STUDENT_TEMPLATES)
        if wanted in email_name(t).lower() or wanted in subject_outline(t).lower()
    ]


def mail_page(
    session: Session,
    search: MailSearch,
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> MailPage:
    """One page of emails, newest first (keyset on id: `before` pages back, `after` pages forward)."""
    query = select(OutboxMessage, Job.display_name).outerjoin(Job, Job.id == OutboxMessage.job_id)
    if search.state:
        query = query.where(OutboxMessage.status == search.state)
    if search.text:
        escaped = search.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [func.lower(OutboxMessage.recipient).like(f"%{escaped}%", escape="\\")]
        templates = _templates_matching(search.text)
        if templates:
            matches.append(OutboxMessage.template.in_(templates))
        if _HEX.fullmatch(search.text.lower()):
            matches.append(OutboxMessage.job_id.like(f"{search.text.lower()}%"))
        query = query.where(or_(*matches))
    if after is not None:
        rows = session.execute(
            query.where(OutboxMessage.id > after).order_by(OutboxMessage.id).limit(size + 1)
        ).all()
        more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        more_older = True
    else:
        if before is not None:
            query = query.where(OutboxMessage.id < before)
        rows = session.execute(query.order_by(OutboxMessage.id.desc()).limit(size + 1)).all()
        more_older = len(rows) > size
        rows = rows[:size]
        more_newer = before is not None
    lines = []
    for message, display_name in rows:
        state, when, means = _state(message)
        lines.append(
            MailLine(
                message=message,
                what=f"{email_name(message.template)} email",
                state=state,
                when=when,
                when_means=means,
                job_short_id=job_short_id(display_name, message.job_id),
            )
        )
    return MailPage(
        lines=lines,
        older=lines[-1].message.id if lines and more_older else None,
        newer=lines[0].message.id if lines and more_newer else None,
    )
