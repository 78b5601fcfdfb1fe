"""The staff dashboard's read model: status counts in one query, and one page of job cards per request.

Every page costs the same few statements whatever the number of jobs: counts (one GROUP BY), the
page (keyset-paged on the (status, created_at, id) index), and, when filtered, the matching total.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, tuple_
from sqlalchemy.orm import Session

from printlab.clock import age_text, utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of
from printlab.domain.statuses import WORK_QUEUES, Status
from printlab.domain.text import TextError, clean_text, is_clean
from printlab.models import AnalysisState, Job, JobAnalysis

PAGE_SIZE = 24
#: The dates a filter may name; beyond them a day's start or end in the lab's zone can't be computed.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
MAX_PAGE_SIZE = 200
_HEX = re.compile(r"^[0-9a-f]{4,32}$")


@dataclass(frozen=True)
class Cursor:
    """A position in a keyset-paged list: the created_at and id of a card."""

    created_at: datetime
    job_id: str

    def encode(self) -> str:
        return f"{self.created_at.isoformat()}~{self.job_id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        try:
            moment, job_id = text.split("~", 1)
            if not is_clean(job_id):
                return None
            return cls(datetime.fromisoformat(moment), job_id[:64])
        except ValueError:
            return None


@dataclass(frozen=True)
class JobQuery:
    status: Status = Status.UPLOADED
    q: str = ""
    printer: str = ""
    method: str = ""
    discipline: str = ""
    date_from: date | None = None
    date_to: date | None = None
    after: Cursor | None = None
    before: Cursor | None = None
    page_size: int = PAGE_SIZE

    @property
    def oldest_first(self) -> bool:
        """Work queues put the longest-waiting job first; finished lists show the newest first."""
        return self.status in WORK_QUEUES

    @property
    def cursor_args(self) -> dict[str, str]:
        args = {}
        if self.after:
            args["after"] = self.after.encode()
        if self.before:
            args["before"] = self.before.encode()
        return args

    def as_args(self, **changes: Any) -> dict[str, str]:
        """URL query arguments for this query (for links that keep the filters)."""
        values = {
            "status": self.status.value,
            "q": self.q,
            "printer": self.printer,
            "method": self.method,
            "discipline": self.discipline,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def parse_query(args: Mapping[str, str], catalog: Catalog) -> tuple[JobQuery, dict[str, str]]:
    """Read the dashboard's URL arguments; unknown values are dropped with a message, never a crash."""
    errors: dict[str, str] = {}
    try:
        status = Status.parse(args.get("status") or "UPLOADED")
    except ValueError:
        status, errors["status"] = Status.UPLOADED, "Unknown status; showing Uploaded."
    dates: dict[str, date | None] = {}
    for key in ("from", "to"):
        text = (args.get(key) or "").strip()
        try:
            dates[key] = date.fromisoformat(text) if text else None
        except ValueError:
            dates[key], errors[key] = None, "Use a date like 2026-09-01."
        else:
            if dates[key] is not None and not FIRST_DAY <= dates[key] <= LAST_DAY:  # type: ignore[operator]
                dates[key], errors[key] = None, "Use a date between the years 2000 and 2999."
    printer = args.get("printer") or ""
    method = args.get("method") or ""
    discipline = args.get("discipline") or ""
    if printer and catalog.printer(printer) is None:
        printer, errors["printer"] = "", "Unknown printer."
    if method and catalog.method(method) is None:
        method, errors["method"] = "", "Unknown print method."
    if discipline and discipline not in catalog.disciplines:
        discipline, errors["discipline"] = "", "Unknown discipline."
    per_page = (args.get("per_page") or "").strip()
    size = PAGE_SIZE
    if per_page.isascii() and per_page.isdigit():
        size = min(MAX_PAGE_SIZE, max(1, int(per_page[:6])))
    try:
        q = " ".join(clean_text(args.get("q"), "Search").split())[:100]
    except TextError as exc:
        q, errors["q"] = "", str(exc)
    return (
        JobQuery(
            status=status,
            q=q,
            printer=printer,
            method=method,
            discipline=discipline,
            date_from=dates["from"],
            date_to=dates["to"],
            after=Cursor.decode(args["after"]) if args.get("after") else None,
            before=Cursor.decode(args["before"]) if args.get("before") else None,
            page_size=size,
        ),
        errors,
    )


@dataclass(frozen=True)
class JobCard:
    id: str
    simple_id: str
    student_name: str
    file_name: str
    printer: str
    color: str
    method: str
    discipline: str
    created_at: datetime
    age: str
    age_band: str  # fresh (<24 h), aging (<48 h), late (<72 h), overdue
    cost: Decimal | None
    has_notes: bool
    locked_by: str | None
    quote_expired: bool
    is_new: bool
    has_thumbnail: bool
    analysis_state: str | None
    updated_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "simple_id": self.simple_id,
            "student_name": self.student_name,
            "file_name": self.file_name,
            "printer": self.printer,
            "color": self.color,
            "method": self.method,
            "discipline": self.discipline,
            "created_at": self.created_at.isoformat() + "Z",
            "age": self.age,
            "age_band": self.age_band,
            "cost_usd": str(self.cost) if self.cost is not None else None,
            "has_notes": self.has_notes,
            "locked_by": self.locked_by,
            "quote_expired": self.quote_expired,
            "is_new": self.is_new,
            "analysis_state": self.analysis_state,
        }


@dataclass(frozen=True)
class JobPage:
    query: JobQuery
    cards: list[JobCard]
    total: int
    counts: dict[Status, int]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        """Changes whenever anything shown on the page changes (counts, cards, locks, badges)."""
        digest = hashlib.sha256()
        digest.update(repr(sorted((s.value, n) for s, n in self.counts.items())).encode())
        digest.update(str(self.total).encode())
        for card in self.cards:
            digest.update(
                f"{card.id}|{card.updated_at}|{card.locked_by}|{card.is_new}|{card.has_notes}|"
                f"{card.quote_expired}|{card.analysis_state}|{card.age}".encode()
            )
        return digest.hexdigest()[:32]


def status_counts(session: Session) -> dict[Status, int]:
    """Jobs per status, in one grouped query."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = dict.fromkeys(Status, 0)
    for status, number in rows:
        counts[Status(status)] = number
    return counts


def age_band(hours: float) -> str:
    if hours < 24:
        return "fresh"
    if hours < 48:
        return "aging"
    if hours < 72:
        return "late"
    return "overdue"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(query: JobQuery, zone: str) -> list[Any]:
    conditions: list[Any] = [Job.status == query.status.value]
    if query.printer:
        conditions.append(Job.printer == query.printer)
    if query.method:
        conditions.append(Job.material == query.method)
    if query.discipline:
        conditions.append(Job.discipline == query.discipline)
    tz = ZoneInfo(zone)
    if query.date_from:
        start = (
            datetime.combine(query.date_from, time.min, tz).astimezone(ZoneInfo("UTC")).replace(tzinfo=None)
        )
        conditions.append(Job.created_at >= start)
    if query.date_to:
        end = datetime.combine(query.date_to + timedelta(days=1), time.min, tz)
        conditions.append(Job.created_at < end.astimezone(ZoneInfo("UTC")).replace(tzinfo=None))
    if query.q:
        needle = f"%{_escape_like(query.q.lower())}%"
        text_match = [
            func.lower(column).like(needle, escape="\\")
            for column in (
                Job.student_name,
                Job.student_email,
                Job.class_number,
                Job.display_name,
                Job.original_filename,
            )
        ]
        if _HEX.match(query.q.lower()):
            text_match.append(Job.id.like(f"{query.q.lower()}%"))
        conditions.append(or_(*text_match))
    return conditions


def list_jobs(session: Session, query: JobQuery, catalog: Catalog, *, now: datetime | None = None) -> JobPage:
    """One page of cards for the dashboard or the API, with the tab counts and the matching total."""
    now = now or utcnow()
    conditions = _filters(query, catalog.lab.time_zone)
    ascending = query.oldest_first
    backwards = query.before is not None and query.after is None
    cursor = query.before if backwards else query.after
    page_conditions = list(conditions)
    if cursor is not None:
        # A row-value comparison: both databases read it as a range of the (status, created_at, id)
        # index, so a deep page costs what the first does. The equivalent "a < x OR (a = x AND b < y)"
        # was read by walking the index from the first page down to the cursor.
        position = tuple_(Job.created_at, Job.id)
        bound = (cursor.created_at, cursor.job_id)
        page_conditions.append(position > bound if ascending != backwards else position < bound)
    forward_order = (
        (Job.created_at.asc(), Job.id.asc()) if ascending else (Job.created_at.desc(), Job.id.desc())
    )
    reverse_order = (
        (Job.created_at.desc(), Job.id.desc()) if ascending else (Job.created_at.asc(), Job.id.asc())
    )
    rows = session.execute(
        select(Job, JobAnalysis.state, JobAnalysis.thumbnail_png.is_not(None))
        .outerjoin(JobAnalysis, JobAnalysis.job_id == Job.id)
        .where(*page_conditions)
        .order_by(*(reverse_order if backwards else forward_order))
        .limit(query.page_size + 1)
    ).all()
    more = len(rows) > query.page_size
    rows = rows[: query.page_size]
    if backwards:
        rows.reverse()
    cards = [_card(job, state, bool(thumb), now) for job, state, thumb in rows]
    counts = status_counts(session)
    # Unfiltered, the total is the tab's count: counting a 90,000-job tab again costs ~10 ms.
    total = (
        counts[query.status]
        if len(conditions) == 1
        else session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
    )
    first = Cursor(cards[0].created_at, cards[0].id) if cards else None
    last = Cursor(cards[-1].created_at, cards[-1].id) if cards else None
    has_next = more if not backwards else True
    has_prev = (cursor is not None) if not backwards else more
    return JobPage(
        query=query,
        cards=cards,
        total=total,
        counts=counts,
        next_cursor=last if has_next and cards else None,
        prev_cursor=first if has_prev and cards else None,
    )


def _card(job: Job, analysis_state: str | None, has_thumbnail: bool, now: datetime) -> JobCard:
    created = job.created_at or now
    live_lock = job.locked_by if job.locked_until and job.locked_until > now else None
    display = job.display_name or ""
    return JobCard(
        id=job.id,
        simple_id=display.rsplit("_", 1)[-1] if "_" in display else job.id[:6],
        student_name=job.student_name or "",
        file_name=display + extension_of(job.original_filename or ""),
        printer=job.printer or "",
        color=job.color or "",
        method=job.material or "",
        discipline=job.discipline or "",
        created_at=created,
        age=age_text(created, now),
        age_band=age_band((now - created).total_seconds() / 3600),
        cost=job.cost_usd,
        has_notes=bool(job.notes and job.notes.strip()),
        locked_by=live_lock,
        quote_expired=bool(job.is_confirmation_expired) and job.status == Status.PENDING.value,
        is_new=job.staff_viewed_at is None,
        has_thumbnail=has_thumbnail and analysis_state == AnalysisState.DONE,
        analysis_state=analysis_state,
        updated_at=job.updated_at,
    )
