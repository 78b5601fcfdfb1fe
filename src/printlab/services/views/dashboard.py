"""The staff dashboard's read model: tab counts, one page of job cards, search, and the poll's version.

Every page costs the same few statements whatever the number of jobs: the dashboard version (one
row), the page (keyset-paged on the (status, created_at, id) index), the tab counts (eight rows of
`job_status_count`), and, when filtered, the matching total. A page that may show Printing cards adds
two: the fleet's fingerprint and the page's open print runs with their printers' polls (progress). A search looks in every status through
the database's own text index (`job_search`: pg_trgm on PostgreSQL, FTS5 on SQLite) and counts its
matches per status. The three side tables are kept by triggers in the job's own transaction
(migration 0008).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, column, exists, func, or_, select, table, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators

from printlab.clock import age_text, lab_day_start, utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.naming import SIMPLE_ID_LENGTH, extension_of, simple_id_in_name
from printlab.domain.periods import parse_day
from printlab.domain.statuses import WORK_QUEUES, Status
from printlab.domain.text import TextError, clean_text, is_clean
from printlab.models import (
    AnalysisState,
    DashboardVersion,
    Job,
    JobAnalysis,
    JobChangeRequest,
    JobSearch,
    JobStatusCount,
)
from printlab.services.views.live_prints import LivePrint, fleet_fingerprint, live_prints

PAGE_SIZE = 24
MAX_PAGE_SIZE = 200
_HEX = re.compile(r"^[0-9a-f]{4,32}$")
#: A job number typed in the search box: its short id (6 or more hex characters), "#" allowed before it.
_JOB_NUMBER = re.compile(rf"^#?([0-9a-f]{{{SIMPLE_ID_LENGTH},32}})$")
#: Cards on these tabs count the time since the job entered its status, with the printer shown first.
AT_THE_PRINTER = frozenset({Status.READYTOPRINT, Status.PRINTING})
#: SQLite's FTS5 trigram index over job_search (migration 0008); a trigram needs three characters.
_FTS = table("job_search_fts", column("rowid"), column("job_search_fts"))  # FTS5's hidden column
_TRIGRAM = 3
#: A whole email address typed in the search box: found by the address index (migration 0009).
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")


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
    #: None only with a search: the matches of every status, newest first.
    status: Status | None = Status.UPLOADED
    q: str = ""
    printer: str = ""
    method: str = ""
    discipline: str = ""
    date_from: date | None = None
    date_to: date | None = None
    after: Cursor | None = None
    before: Cursor | None = None
    page_size: int = PAGE_SIZE
    #: Only the jobs waiting for the student's corrected file ("needs changes"; all are Uploaded).
    waiting: bool = False

    @property
    def oldest_first(self) -> bool:
        """Work queues put the longest-waiting job first; finished lists show the newest first."""
        return self.status in WORK_QUEUES

    @property
    def status_label(self) -> str:
        return self.status.label if self.status else "All"

    @property
    def filtered(self) -> bool:
        return bool(
            self.q
            or self.printer
            or self.method
            or self.discipline
            or self.date_from
            or self.date_to
            or self.waiting
        )

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
            "status": self.status.value if self.status else "ALL",
            "q": self.q,
            "printer": self.printer,
            "method": self.method,
            "discipline": self.discipline,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "waiting": "1" if self.waiting else "",
        }
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def parse_query(args: Mapping[str, str], catalog: Catalog) -> tuple[JobQuery, dict[str, str]]:
    """Read the dashboard's URL arguments; unknown values are dropped with a message, never a crash."""
    errors: dict[str, str] = {}
    try:
        q = " ".join(clean_text(args.get("q"), "Search").split())[:100]
    except TextError as exc:
        q, errors["q"] = "", str(exc)
    # "status" is a tab link's; "tab" is the tab the search form was sent from, kept when filtering.
    asked = (args.get("status") or ("" if q else args.get("tab")) or "").strip().upper()
    status: Status | None
    if q and asked in ("", "ALL"):
        status = None  # a search spans every status until a tab narrows it
    else:
        try:
            status = Status.parse(asked or "UPLOADED")
        except ValueError:
            status = Status.UPLOADED
            if asked != "ALL":
                errors["status"] = "Unknown status; showing Uploaded."
    dates: dict[str, date | None] = {}
    for key in ("from", "to"):
        text = (args.get(key) or "").strip()
        try:
            dates[key] = parse_day(text) if text else None
        except ValueError as exc:
            dates[key], errors[key] = None, str(exc)
    printer = args.get("printer") or ""
    method = args.get("method") or ""
    discipline = args.get("discipline") or ""
    if printer and catalog.printer(printer) is None:
        printer, errors["printer"] = "", "Unknown printer."
    if method and catalog.method(method) is None:
        method, errors["method"] = "", "Unknown print method."
    if discipline and discipline not in catalog.disciplines:
        discipline, errors["discipline"] = "", "Unknown discipline."
    waiting = (args.get("waiting") or "").strip() == "1"
    if waiting and status != Status.UPLOADED:
        waiting = False  # only Uploaded jobs wait for a corrected file
    per_page = (args.get("per_page") or "").strip()
    size = PAGE_SIZE
    if per_page.isascii() and per_page.isdigit():
        size = min(MAX_PAGE_SIZE, max(1, int(per_page[:6])))
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
            waiting=waiting,
        ),
        errors,
    )


@dataclass(frozen=True)
class JobCard:
    id: str
    simple_id: str
    student_name: str
    #: The student's own name for the file (as uploaded), not the storage name.
    file_name: str
    printer: str
    color: str
    method: str
    discipline: str
    status: Status
    created_at: datetime
    #: When the job entered its current status (its creation when that is unknown).
    status_since: datetime
    age: str
    age_band: str  # fresh (<24 h), aging (<48 h), late (<72 h), overdue; "" where age doesn't matter
    cost: Decimal | None
    has_notes: bool
    locked_by: str | None
    quote_expired: bool
    #: Staff asked for a corrected file and the student hasn't sent it yet.
    waiting_for_student: bool
    is_new: bool
    has_thumbnail: bool
    analysis_state: str | None
    updated_at: datetime | None
    #: A Printing job sent to a connected printer: its run and what the printer last said.
    live: LivePrint | None = None

    @property
    def at_the_printer(self) -> bool:
        return self.status in AT_THE_PRINTER

    @property
    def age_words(self) -> str:
        """The age colour said in words (the text equivalent of the card's coloured edge)."""
        return AGE_WORDS.get(self.age_band, "")

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
            "status": self.status.value,
            "status_label": self.status.label,
            "created_at": self.created_at.isoformat() + "Z",
            "status_since": self.status_since.isoformat() + "Z",
            "age": self.age,
            "age_band": self.age_band,
            "cost_usd": str(self.cost) if self.cost is not None else None,
            "has_notes": self.has_notes,
            "locked_by": self.locked_by,
            "quote_expired": self.quote_expired,
            "waiting_for_student": self.waiting_for_student,
            "is_new": self.is_new,
            "analysis_state": self.analysis_state,
            "print": {
                "state": self.live.run_state,
                "progress": self.live.progress,
                "seconds_left": self.live.seconds_left,
                "stopped_reason": self.live.message if self.live.stopped else None,
            }
            if self.live
            else None,
        }


#: The age colours in words, for the card and the legend.
AGE_WORDS = {"fresh": "under a day", "aging": "over a day", "late": "over 2 days", "overdue": "over 3 days"}


@dataclass(frozen=True)
class JobPage:
    query: JobQuery
    cards: list[JobCard]
    total: int
    #: Jobs per status tab; with a search, the matches per status.
    counts: dict[Status, int]
    next_cursor: Cursor | None
    prev_cursor: Cursor | None
    #: The dashboard version read before anything else on the page.
    version: int = 0
    #: Jobs waiting for the student's corrected file, beside the tab counts.
    waiting_count: int = 0
    now: datetime = field(default_factory=utcnow)
    errors: dict[str, str] = field(default_factory=dict)
    #: The fleet's fingerprint when the page shows Printing cards (their progress), else "".
    fleet: str = ""

    @property
    def etag(self) -> str:
        """The tag a refresh poll sends back: see `poll_etag`."""
        return poll_etag(self.query, self.version, self.now, self.fleet)

    @property
    def all_matches(self) -> int:
        return sum(self.counts.values())


def poll_etag(query: JobQuery, version: int, now: datetime, fleet: str = "") -> str:
    """Changes whenever anything the page shows may have changed: a committed change to any job or
    analysis (the version), the page asked for, the minute (ages and lock expiries tick with it), and
    on a page with Printing cards what the printers report (`fleet`, see `shows_printing`)."""
    digest = hashlib.sha256()
    digest.update(repr(sorted({**query.as_args(), **query.cursor_args}.items())).encode())
    digest.update(f"|{query.page_size}|{version}|{now:%Y-%m-%dT%H:%M}|{fleet}".encode())
    return digest.hexdigest()[:32]


def shows_printing(query: JobQuery) -> bool:
    """The page may show Printing cards, whose progress comes from the printers (the Printing tab, or
    a search's matches in every status)."""
    return query.status in (Status.PRINTING, None)


def dashboard_version(session: Session) -> int:
    """The one-row number every committed job or analysis change increases (migration 0008)."""
    return session.scalar(select(DashboardVersion.version).where(DashboardVersion.id == 1)) or 0


def status_counts(session: Session) -> dict[Status, int]:
    """Jobs per status, read from the eight rows the database keeps in step with the jobs."""
    counts = dict.fromkeys(Status, 0)
    for status, number in session.execute(select(JobStatusCount.status, JobStatusCount.jobs)).all():
        if status in counts:
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


def _text_match(session: Session, q: str) -> list[ColumnElement[bool]]:
    """Conditions for jobs whose search text contains `q`, through the database's own text index.

    A whole email address is matched as the student's address (any case), not as a substring.
    """
    needle = q.lower()
    if _EMAIL.match(needle):
        # The address's own index: its trigrams (`edu`, `@un`) are in nearly every job's text.
        return [JobSearch.job_id.in_(select(Job.id).where(func.lower(Job.student_email) == needle))]
    hex_id = bool(_HEX.match(needle))
    if session.get_bind().dialect.name == "sqlite" and len(needle) >= _TRIGRAM:
        phrase = '"' + needle.replace('"', '""') + '"'  # one FTS5 phrase: a substring, no operators
        matched = _FTS.c.job_search_fts.match(phrase)
        if not hex_id:
            # Joined, not "id IN (…)": SQLite counts a joined match list several times faster.
            return [JobSearch.id == _FTS.c.rowid, matched]
        text_match: ColumnElement[bool] = JobSearch.id.in_(select(_FTS.c.rowid).where(matched))
    else:
        # PostgreSQL answers LIKE '%…%' from the pg_trgm GIN index (three characters or more).
        text_match = JobSearch.search_text.like(f"%{_escape_like(needle)}%", escape="\\")
    if hex_id:  # the start of a job id, as on a card or in an email
        text_match = or_(text_match, JobSearch.job_id.between(needle, needle + "g"))
    return [text_match]


#: The job waits for the student's corrected file: an open "needs changes" request.
_WAITING = exists().where(JobChangeRequest.job_id == Job.id, JobChangeRequest.closed_at.is_(None))


def _filters(query: JobQuery, zone: str) -> list[Any]:
    """Conditions on the job row besides its status and the search text."""
    conditions: list[Any] = []
    if query.waiting:
        conditions.append(_WAITING)
    if query.printer:
        conditions.append(Job.printer == query.printer)
    if query.method:
        conditions.append(Job.material == query.method)
    if query.discipline:
        conditions.append(Job.discipline == query.discipline)
    if query.date_from:
        conditions.append(Job.created_at >= lab_day_start(query.date_from, zone))
    if query.date_to:
        conditions.append(Job.created_at < lab_day_start(query.date_to + timedelta(days=1), zone))
    return conditions


def job_for_number(session: Session, q: str) -> str | None:
    """The id of the one job whose short id (or whole id) was typed in the search box, else None."""
    found = _JOB_NUMBER.match(q.strip().lower())
    if not found:
        return None
    prefix = found.group(1)
    # A range on the primary key, not LIKE 'prefix%': an index lookup on both databases.
    ids = session.scalars(select(Job.id).where(Job.id >= prefix, Job.id < prefix + "g").limit(2)).all()
    return ids[0] if len(ids) == 1 else None


def search_counts(session: Session, query: JobQuery, zone: str) -> dict[Status, int]:
    """Matches of the search (and filters) per status, in one grouped query over the text index."""
    statement = select(JobSearch.status, func.count()).where(*_text_match(session, query.q))
    filters = _filters(query, zone)
    if filters:
        statement = statement.join(Job, Job.id == JobSearch.job_id).where(*filters)
    counts = dict.fromkeys(Status, 0)
    for status, number in session.execute(statement.group_by(JobSearch.status)).all():
        if status in counts:
            counts[Status(status)] = number
    return counts


def list_jobs(session: Session, query: JobQuery, catalog: Catalog, *, now: datetime | None = None) -> JobPage:
    """One page of cards for the dashboard or the API, with the tab counts and the matching total."""
    now = now or utcnow()
    # First: a change committed while the page is read shows on this page or makes the next poll new.
    version = dashboard_version(session)
    fleet = fleet_fingerprint(session) if shows_printing(query) else ""
    filters = _filters(query, catalog.lab.time_zone)
    ascending = query.oldest_first
    backwards = query.before is not None and query.after is None
    cursor = query.before if backwards else query.after
    # A search pages through job_search (status and created_at are copied there), starting from
    # the text index's matches; a tab pages through job's (status, created_at, id) index.
    source = JobSearch if query.q else Job
    created, key = (JobSearch.created_at, JobSearch.job_id) if query.q else (Job.created_at, Job.id)
    conditions = list(filters)
    if query.status is not None:
        conditions.append(source.status == query.status.value)
    if query.q:
        conditions += _text_match(session, query.q)
    page_conditions = list(conditions)
    if cursor is not None:
        # A row-value comparison: both databases read it as a range of the (status, created_at, id)
        # index, so a deep page costs what the first does. The equivalent "a < x OR (a = x AND b < y)"
        # was read by walking the index from the first page down to the cursor.
        position = tuple_(created, key)
        bound = (cursor.created_at, cursor.job_id)
        page_conditions.append(position > bound if ascending != backwards else position < bound)
    forward_order = (created.asc(), key.asc()) if ascending else (created.desc(), key.desc())
    reverse_order = (created.desc(), key.desc()) if ascending else (created.asc(), key.asc())
    order = reverse_order if backwards else forward_order
    page = select(key.label("job_id")).where(*page_conditions).order_by(*order).limit(query.page_size + 1)
    if query.q and filters:
        page = page.join(Job, Job.id == JobSearch.job_id)
    # The page's ids first, then their rows: only the shown jobs are read in full.
    ids = page.subquery()
    rows = session.execute(
        select(
            Job,
            JobAnalysis.state,
            JobAnalysis.thumbnail_png.is_not(None),
            JobSearch.status_since,
            _WAITING.label("waiting"),
        )
        .join(ids, ids.c.job_id == Job.id)
        .join(JobSearch, JobSearch.job_id == Job.id)
        .outerjoin(JobAnalysis, JobAnalysis.job_id == Job.id)
        .order_by(*_same_order(order, Job.created_at, Job.id))
    ).all()
    more = len(rows) > query.page_size
    rows = rows[: query.page_size]
    if backwards:
        rows.reverse()
    printing = [job.id for job, *_ in rows if job.status == Status.PRINTING.value]
    live = live_prints(session, printing) if shows_printing(query) else {}
    cards = [
        _card(job, state, bool(thumb), since, now, waiting=bool(waits), live=live.get(job.id))
        for job, state, thumb, since, waits in rows
    ]
    if query.q:
        counts = search_counts(session, query, catalog.lab.time_zone)
        total = counts[query.status] if query.status is not None else sum(counts.values())
    else:
        counts = status_counts(session)
        # Unfiltered, the total is the tab's count; a filter counts its matches in the tab.
        total = (
            session.scalar(select(func.count()).select_from(Job).where(*conditions)) or 0
            if filters
            else counts[query.status]  # type: ignore[index]
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
        version=version,
        now=now,
        waiting_count=waiting_count(session),
        fleet=fleet,
    )


def waiting_count(session: Session) -> int:
    """Jobs waiting for a corrected file (an open request each; the index on closed_at answers it)."""
    return session.scalar(select(func.count()).where(JobChangeRequest.closed_at.is_(None))) or 0


def _same_order(order: tuple[Any, Any], created: Any, key: Any) -> tuple[Any, Any]:
    """The page's order on other columns (job's own, for the rows read by id)."""
    ascending = order[0].modifier is operators.asc_op
    return (created.asc(), key.asc()) if ascending else (created.desc(), key.desc())


def _card(
    job: Job,
    analysis_state: str | None,
    has_thumbnail: bool,
    status_since: datetime | None,
    now: datetime,
    *,
    waiting: bool = False,
    live: LivePrint | None = None,
) -> JobCard:
    created = job.created_at or now
    since = status_since or created
    status = Status(job.status)
    live_lock = job.locked_by if job.locked_until and job.locked_until > now else None
    display = job.display_name or ""
    return JobCard(
        id=job.id,
        simple_id=simple_id_in_name(display, job.id),
        student_name=job.student_name or "",
        file_name=job.original_filename or display + extension_of(job.original_filename or ""),
        printer=job.printer or "",
        color=job.color or "",
        method=job.material or "",
        discipline=job.discipline or "",
        status=status,
        created_at=created,
        status_since=since,
        age=age_text(since, now),
        # Only a job waiting on the lab grows late; a finished one simply is.
        age_band=age_band((now - since).total_seconds() / 3600) if status in WORK_QUEUES else "",
        cost=job.cost_usd,
        has_notes=bool(job.notes and job.notes.strip()),
        locked_by=live_lock,
        quote_expired=bool(job.is_confirmation_expired) and job.status == Status.PENDING.value,
        waiting_for_student=waiting,
        is_new=job.staff_viewed_at is None,
        has_thumbnail=has_thumbnail and analysis_state == AnalysisState.DONE,
        analysis_state=analysis_state,
        updated_at=job.updated_at,
        live=live,
    )
