"""The reports page's read model: a period's figures beside the previous period's, from indexed queries.

Nothing here changes anything. Each figure is worked out from the rows the workflow writes (jobs,
their event trail, payments, `job_search` for since when a job has been in its status, and
`job_milestone` for when it first reached each stage), with a fixed handful of statements whatever
the period: each covers the period and the one before it, grouped in the database where a count is
all that is needed. docs/performance.md says why the stage times have a table of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.reports import (
    AGE_BUCKETS,
    STAGES,
    Period,
    PeriodError,
    age_bucket,
    change_percent,
    filter_problems,
    lab_day,
    nearest_rank,
    week_start,
)
from printlab.domain.statuses import WORK_QUEUES, Status
from printlab.domain.text import is_clean
from printlab.models import MILESTONE_COLUMNS, Event, Job, JobMilestone, JobSearch, Payment, PaymentKind

#: Unpaid completed jobs listed by name; the count and the amount owed cover all of them.
UNPAID_LISTED = 100
_STAGE_ENDS = [end for _, end, _ in STAGES]
# Each stage starts where the one before it ended, from the upload on: a trail is one time per status.
assert [start for start, _, _ in STAGES] == [Status.UPLOADED, *_STAGE_ENDS[:-1]]
#: The position of Completed in a trail's times.
_COMPLETED = 1 + _STAGE_ENDS.index(Status.COMPLETED)

_FROM = Event.details["from"].as_string()
_TO = Event.details["to"].as_string()


@dataclass(frozen=True)
class Filters:
    """What the report is narrowed to; an empty value means every one."""

    printer: str = ""
    method: str = ""
    discipline: str = ""
    class_number: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "printer": self.printer,
            "method": self.method,
            "discipline": self.discipline,
            "class": self.class_number,
        }

    def conditions(self) -> list[ColumnElement[bool]]:
        chosen: list[ColumnElement[bool]] = []
        if self.printer:
            chosen.append(Job.printer == self.printer)
        if self.method:
            chosen.append(Job.material == self.method)
        if self.discipline:
            chosen.append(Job.discipline == self.discipline)
        if self.class_number:
            chosen.append(func.lower(Job.class_number) == self.class_number.lower())
        return chosen


def checked_filters(values: Mapping[str, str | None], catalog: Catalog) -> Filters:
    """The filters from a form or query string, checked against the catalog. Raises PeriodError."""
    chosen = {key: " ".join((values.get(key) or "").split()) for key in ("printer", "method", "discipline")}
    known = {
        "printer": [p.name for p in catalog.printers],
        "method": [m.name for m in catalog.methods],
        "discipline": list(catalog.disciplines),
    }
    problems = filter_problems(chosen, known)
    for key, message in problems.items():
        raise PeriodError(key, message)
    class_number = " ".join((values.get("class") or "").split())
    # Class numbers are typed by students (no list to choose from): any plain text that fits the column.
    if len(class_number) > 50 or not is_clean(class_number):
        raise PeriodError("class", "Type a class number as students write it, like ME 2110.")
    return Filters(chosen["printer"], chosen["method"], chosen["discipline"], class_number)


@dataclass
class Figure:
    """A number in the period and in the previous one."""

    value: float
    previous: float

    @property
    def change(self) -> float | None:
        return change_percent(self.value, self.previous)

    def as_json(self) -> dict[str, Any]:
        change = self.change
        return {
            "value": _plain(self.value),
            "previous": _plain(self.previous),
            "change_percent": None if change is None else round(change, 1),
        }


def _plain(value: float | Decimal) -> float | int | str:
    if isinstance(value, Decimal):
        return str(value)
    return int(value) if float(value).is_integer() else round(value, 2)


@dataclass
class StageTimes:
    label: str
    jobs: int
    median_hours: float | None
    p90_hours: float | None
    previous_jobs: int
    previous_median_hours: float | None
    previous_p90_hours: float | None


@dataclass
class Unpaid:
    job_id: str
    student_name: str
    printer: str
    completed_at: datetime | None
    owed: Decimal


@dataclass
class Report:
    period: Period
    previous: Period
    filters: Filters
    generated_at: datetime
    submissions: Figure
    approvals: Figure
    rejections: Figure
    cancellations: Figure
    completed: Figure
    rejection_reasons: list[tuple[str, int, int]]
    throughput: list[tuple[date, int]]
    stages: list[StageTimes]
    queue_ages: list[tuple[Status, list[int]]]
    printer_use: list[tuple[str, str, Figure, Figure]]  # printer, method, hours, grams
    method_use: list[tuple[str, Figure, Figure]]
    revenue: Figure
    pickups: Figure
    unpaid_count: int
    unpaid_owed: Decimal
    unpaid: list[Unpaid]
    staff_activity: list[tuple[str, int, int]]
    notes: list[str] = field(default_factory=list)

    @property
    def average_ticket(self) -> Figure:
        def mean(total: float, count: float) -> float:
            return round(total / count, 2) if count else 0.0

        return Figure(
            mean(self.revenue.value, self.pickups.value), mean(self.revenue.previous, self.pickups.previous)
        )

    def as_json(self, *, money: bool) -> dict[str, Any]:
        """Every figure for /reports.json; without `money`, revenue and amounts owed are left out."""
        zone = self.period.zone

        def period(p: Period) -> dict[str, Any]:
            return {
                "label": p.label,
                "first_day": p.first_day.isoformat(),
                "last_day": p.last_day.isoformat(),
                "time_zone": zone,
                "start_utc": p.start.isoformat() + "Z",
                "end_utc": p.end.isoformat() + "Z",
            }

        data: dict[str, Any] = {
            "period": period(self.period),
            "previous_period": period(self.previous),
            "filters": self.filters.as_dict(),
            "generated_at": self.generated_at.isoformat() + "Z",
            "submissions": self.submissions.as_json(),
            "approvals": self.approvals.as_json(),
            "rejections": self.rejections.as_json(),
            "cancellations": self.cancellations.as_json(),
            "completed": self.completed.as_json(),
            "rejections_by_reason": [
                {"reason": r, "jobs": n, "previous": p} for r, n, p in self.rejection_reasons
            ],
            "throughput_per_week": [
                {"week_starting": w.isoformat(), "completed": n} for w, n in self.throughput
            ],
            "turnaround": [
                {
                    "stage": s.label,
                    "jobs": s.jobs,
                    "median_hours": _hours(s.median_hours),
                    "p90_hours": _hours(s.p90_hours),
                    "previous": {
                        "jobs": s.previous_jobs,
                        "median_hours": _hours(s.previous_median_hours),
                        "p90_hours": _hours(s.previous_p90_hours),
                    },
                }
                for s in self.stages
            ],
            "percentile_method": "nearest-rank",
            "queue_age": [
                {
                    "status": status.label,
                    "buckets": {label: n for (_, label), n in zip(AGE_BUCKETS, counts, strict=True)},
                }
                for status, counts in self.queue_ages
            ],
            "printer_use": [
                {"printer": p, "method": m, "hours": h.as_json(), "grams": g.as_json()}
                for p, m, h, g in self.printer_use
            ],
            "method_use": [
                {"method": m, "hours": h.as_json(), "grams": g.as_json()} for m, h, g in self.method_use
            ],
            "pickups": self.pickups.as_json(),
            "unpaid_completed": {
                "jobs": self.unpaid_count,
                "list": [
                    {
                        "student_name": u.student_name,
                        "printer": u.printer,
                        "completed_at": u.completed_at.isoformat() + "Z" if u.completed_at else None,
                        "age_days": round((self.generated_at - u.completed_at).total_seconds() / 86400, 1)
                        if u.completed_at
                        else None,
                        **({"owed_usd": str(u.owed)} if money else {}),
                    }
                    for u in self.unpaid
                ],
            },
            "staff_activity": [
                {"staff": name, "actions": n, "previous": p} for name, n, p in self.staff_activity
            ],
        }
        if money:
            data["revenue_usd"] = _money_json(self.revenue)
            data["average_ticket_usd"] = _money_json(self.average_ticket)
            data["unpaid_completed"]["owed_usd"] = str(self.unpaid_owed)
        return data


def _hours(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _money_json(figure: Figure) -> dict[str, Any]:
    change = figure.change
    return {
        "value": f"{Decimal(str(figure.value)):.2f}",
        "previous": f"{Decimal(str(figure.previous)):.2f}",
        "change_percent": None if change is None else round(change, 1),
    }


# -- the queries --------------------------------------------------------------------------------


Span = tuple[datetime, datetime, datetime]  # previous period's start, this period's start, its end


def _in_span(column: Any, span: Span) -> ColumnElement[bool]:
    return and_(column >= span[0], column < span[2])


def _this_period(column: Any, span: Span) -> ColumnElement[int]:
    """1 for a time in the period, 0 for one in the previous period (each query covers both)."""
    return case((column >= span[1], 1), else_=0)


def _split(rows: Sequence[Any]) -> Figure:
    found = {int(flag): float(n or 0) for flag, n in rows}
    return Figure(found.get(1, 0), found.get(0, 0))


def _submissions(session: Session, span: Span, filters: Filters) -> Figure:
    flag = _this_period(Job.created_at, span)
    return _split(
        session.execute(
            select(flag, func.count())
            .where(_in_span(Job.created_at, span), *filters.conditions())
            .group_by(flag)
        ).all()
    )


def _events_of(query: Any, filters: Filters) -> Any:
    conditions = filters.conditions()
    return query.join(Job, Job.id == Event.job_id).where(*conditions) if conditions else query


#: The events whose details the counts need: approvals, rejections and cancellations, and overrides
#: (an override that archives a job also writes JobArchived). A student's cancellation or declined
#: quote has an event type of its own (a student is not staff) and counts as a cancellation.
_COUNTED_TYPES = ("StaffApproved", "StaffRejected", "AdminOverride", "StudentCancelled", "QuoteDeclined")


def _event_counts(
    session: Session, span: Span, filters: Filters
) -> tuple[dict[str, Figure], list[tuple[str, int, int]]]:
    """Approvals, rejections, cancellations and each staff member's actions.

    Two grouped statements: every event in the periods per type and staff member (read from the
    index on (timestamp, event_type, triggered_by) alone when nothing is filtered), and the few
    types whose details say what they were.
    """
    flag = _this_period(Event.timestamp, span)
    per_staff = (
        select(flag, Event.triggered_by, func.count())
        .where(_in_span(Event.timestamp, span), Event.triggered_by.is_not(None))
        .group_by(flag, Event.triggered_by)
    )
    staff: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for this, who, n in session.execute(_events_of(per_staff, filters)):
        staff[who][1 if this else 0] += n
    detailed = (
        select(flag, Event.event_type, _FROM, _TO, Event.triggered_by, func.count())
        .where(_in_span(Event.timestamp, span), Event.event_type.in_(_COUNTED_TYPES))
        .group_by(flag, Event.event_type, _FROM, _TO, Event.triggered_by)
    )
    counts: dict[str, list[int]] = {k: [0, 0] for k in ("approvals", "rejections", "cancellations")}
    for this, kind, source, target, who, n in session.execute(_events_of(detailed, filters)):
        slot = 1 if this else 0
        if kind == "StaffApproved" and source == Status.UPLOADED:
            counts["approvals"][slot] += n
        elif kind == "StaffRejected" and source == Status.UPLOADED:
            counts["rejections"][slot] += n
        elif kind in ("StaffRejected", "StudentCancelled", "QuoteDeclined"):
            counts["cancellations"][slot] += n
        # An approval writes StaffApproved and StatusChanged, an override that archives AdminOverride
        # and JobArchived: one action each for the staff member.
        twin = (kind == "StaffApproved" and source == Status.UPLOADED) or (
            kind == "AdminOverride" and target == Status.ARCHIVED
        )
        if who and twin:
            staff[who][slot] -= n
    figures = {k: Figure(now, before) for k, (before, now) in counts.items()}
    activity = sorted(
        ((name, now, before) for name, (before, now) in staff.items() if now or before),
        key=lambda r: (-r[1], r[0]),
    )
    return figures, activity


#: Words for a rejection written in the staff member's own words rather than chosen from the list.
OWN_WORDS = "Another reason, in the staff member's words"


def _rejection_reasons(session: Session, span: Span, filters: Filters) -> list[tuple[str, int, int]]:
    """How often each reason was given for rejecting an upload (a job may have several)."""
    query = select(Event.timestamp, Event.details).where(
        _in_span(Event.timestamp, span), Event.event_type == "StaffRejected", Status.UPLOADED.value == _FROM
    )
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for when, details in session.execute(_events_of(query, filters)):
        slot = 1 if when >= span[1] else 0
        given = details if isinstance(details, dict) else {}
        for reason in given.get("reasons") or []:
            tally[str(reason)][slot] += 1
        if given.get("other"):
            tally[OWN_WORDS][slot] += 1
    return sorted(((r, now, before) for r, (before, now) in tally.items()), key=lambda r: (-r[1], r[0]))


@dataclass
class JobTrail:
    """A job that reached a stage in either period, with the figures its use of a printer needs."""

    printer: str
    method: str
    hours: float
    grams: float
    #: When it was uploaded, then when it first reached the end of each stage (STAGES order).
    times: tuple[datetime | None, ...]


def _milestones(session: Session, span: Span, filters: Filters) -> list[JobTrail]:
    """Every job that reached a stage in the two periods, with when it first reached each status.

    Read from `job_milestone` (one row per job, written by each move; see domain.milestones for the
    rule), through its indexes on each stage's time.
    """
    times = [getattr(JobMilestone, MILESTONE_COLUMNS[s.value]) for s in _STAGE_ENDS]
    # The times are read as the database sends them and parsed here: SQLite stores text, and
    # datetime.fromisoformat reads it many times faster than the generic DateTime conversion, which
    # was most of a semester's report (tens of thousands of rows, six times each).
    raw = [type_coerce(column, String) for column in (JobMilestone.uploaded_at, *times)]
    m = JobMilestone
    query = select(m.printer, m.material, m.time_hours, m.weight_g, *raw).where(
        or_(*(_in_span(column, span) for column in times))
    )
    # The printer and method are copied into the milestone row; discipline and class need the job.
    if filters.printer:
        query = query.where(m.printer == filters.printer)
    if filters.method:
        query = query.where(m.material == filters.method)
    if filters.discipline or filters.class_number:
        query = query.join(Job, Job.id == m.job_id).where(
            *Filters("", "", filters.discipline, filters.class_number).conditions()
        )
    rows = session.connection().execute(query).all()
    return [
        JobTrail(
            printer or "",
            method or "",
            hours or 0.0,
            grams or 0.0,
            tuple(None if when is None else _moment(when) for when in times),
        )
        for printer, method, hours, grams, *times in rows
    ]


def _moment(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _stage_times(
    trails: Sequence[JobTrail], period: Period, previous: Period
) -> tuple[list[StageTimes], list[tuple[JobTrail, datetime]]]:
    """Each stage's median and 90th percentile (hours) for jobs that finished it in either period,
    and the jobs completed (first reaching Completed) in either period."""
    this_start, this_end, before_start = period.start, period.end, previous.start
    now: list[list[float]] = [[] for _ in STAGES]
    before: list[list[float]] = [[] for _ in STAGES]
    completed: list[tuple[JobTrail, datetime]] = []
    for trail in trails:
        times = trail.times
        for stage in range(len(STAGES)):  # stage i runs from times[i] to times[i + 1]
            began, done = times[stage], times[stage + 1]
            if began is None or done is None or done < began:
                continue  # the stage was skipped (an admin override) or its order is not forward
            if this_start <= done < this_end:
                now[stage].append((done - began).total_seconds() / 3600)
            elif before_start <= done < this_start:
                before[stage].append((done - began).total_seconds() / 3600)
        if times[_COMPLETED] is not None:
            completed.append((trail, times[_COMPLETED]))  # type: ignore[arg-type]
    stages = [
        StageTimes(
            label,
            len(now[i]),
            nearest_rank(now[i], 50),
            nearest_rank(now[i], 90),
            len(before[i]),
            nearest_rank(before[i], 50),
            nearest_rank(before[i], 90),
        )
        for i, (_start, _end, label) in enumerate(STAGES)
    ]
    return stages, completed


def _printer_use(
    now: Sequence[JobTrail], before: Sequence[JobTrail]
) -> list[tuple[str, str, Figure, Figure]]:
    """Print hours and grams of the jobs completed, per printer (with its method)."""
    use: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for slot, trails in ((0, now), (2, before)):
        for t in trails:
            use[(t.printer, t.method)][slot] += t.hours
            use[(t.printer, t.method)][slot + 1] += t.grams
    return [
        (printer, method, Figure(round(h, 1), round(ph, 1)), Figure(round(g, 1), round(pg, 1)))
        for (printer, method), (h, g, ph, pg) in sorted(use.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]


def _method_use(now: Sequence[JobTrail], before: Sequence[JobTrail]) -> list[tuple[str, Figure, Figure]]:
    use: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for slot, trails in ((0, now), (2, before)):
        for t in trails:
            use[t.method][slot] += t.hours
            use[t.method][slot + 1] += t.grams
    return [
        (method, Figure(round(h, 1), round(ph, 1)), Figure(round(g, 1), round(pg, 1)))
        for method, (h, g, ph, pg) in sorted(use.items())
    ]


def _pickups_counted() -> ColumnElement[int]:
    """A pickup counts once; the reversal a revert writes takes it back. Refunds and corrections
    change the revenue (every payment row is summed), not the number of pickups."""
    return case((Payment.kind == PaymentKind.CHARGE, 1), (Payment.kind == PaymentKind.REVERSAL, -1), else_=0)


def _payments(session: Session, span: Span, filters: Filters) -> tuple[Figure, Figure]:
    """Revenue (the sum charged in the period) and the number of pickups paid for."""
    flag = _this_period(Payment.recorded_at, span)
    query = (
        select(flag, func.sum(Payment.charged_usd), func.sum(_pickups_counted()))
        .where(_in_span(Payment.recorded_at, span))
        .group_by(flag)
    )
    conditions = filters.conditions()
    if conditions:
        query = query.join(Job, Job.id == Payment.job_id).where(*conditions)
    revenue: dict[int, Decimal] = {}
    pickups: dict[int, int] = {}
    for this, total, n in session.execute(query):
        revenue[int(this)] = Decimal(str(total or 0)).quantize(Decimal("0.01"))
        pickups[int(this)] = int(n or 0)
    return (
        Figure(float(revenue.get(1, 0)), float(revenue.get(0, 0))),
        Figure(pickups.get(1, 0), pickups.get(0, 0)),
    )


def _unpaid(session: Session, filters: Filters) -> tuple[int, Decimal, list[Unpaid]]:
    """Completed jobs waiting to be paid for and collected, oldest first."""
    where = [Job.status == Status.COMPLETED.value, *filters.conditions()]
    count, owed = session.execute(select(func.count(), func.sum(Job.cost_usd)).where(*where)).one()
    rows = session.execute(
        select(Job.id, Job.student_name, Job.printer, JobSearch.status_since, Job.cost_usd)
        .join(JobSearch, JobSearch.job_id == Job.id)
        .where(*where)
        .order_by(JobSearch.status_since, Job.id)
        .limit(UNPAID_LISTED)
    ).all()
    listed = [
        Unpaid(job_id, name or "", printer or "", since, Decimal(str(cost or 0)))
        for job_id, name, printer, since, cost in rows
    ]
    return int(count), Decimal(str(owed or 0)).quantize(Decimal("0.01")), listed


def _queue_ages(session: Session, filters: Filters, now: datetime) -> list[tuple[Status, list[int]]]:
    """Jobs waiting in each work queue now, by how long they have been in it."""
    queues = [s for s in Status if s in WORK_QUEUES]
    # Found through job's status index (job_search has none on purpose), joined for the time.
    query = (
        select(Job.status, JobSearch.status_since)
        .join(JobSearch, JobSearch.job_id == Job.id)
        .where(Job.status.in_([s.value for s in queues]), *filters.conditions())
    )
    buckets = {s.value: [0] * len(AGE_BUCKETS) for s in queues}
    for status, since in session.execute(query):
        buckets[status][age_bucket(now - (since or now))] += 1
    return [(s, buckets[s.value]) for s in queues]


def build_report(
    session: Session, period: Period, filters: Filters, *, now: datetime | None = None
) -> Report:
    """Every figure of the reports page for `period` and the period before it, narrowed by `filters`."""
    now = now or utcnow()
    previous = period.previous()
    span: Span = (previous.start, period.start, period.end)
    counts, activity = _event_counts(session, span, filters)
    trails = _milestones(session, span, filters)
    stages, completed = _stage_times(trails, period, previous)
    this = [t for t, when in completed if period.contains(when)]
    before = [t for t, when in completed if previous.contains(when)]
    per_week: dict[date, int] = dict.fromkeys(period.weeks(), 0)
    for _trail, when in completed:
        if period.contains(when):
            per_week[week_start(lab_day(when, period.zone))] += 1
    revenue, pickups = _payments(session, span, filters)
    unpaid_count, unpaid_owed, unpaid = _unpaid(session, filters)
    report = Report(
        period=period,
        previous=previous,
        filters=filters,
        generated_at=now,
        submissions=_submissions(session, span, filters),
        approvals=counts["approvals"],
        rejections=counts["rejections"],
        cancellations=counts["cancellations"],
        completed=Figure(len(this), len(before)),
        rejection_reasons=_rejection_reasons(session, span, filters),
        throughput=sorted(per_week.items()),
        stages=stages,
        queue_ages=_queue_ages(session, filters, now),
        printer_use=_printer_use(this, before),
        method_use=_method_use(this, before),
        revenue=revenue,
        pickups=pickups,
        unpaid_count=unpaid_count,
        unpaid_owed=unpaid_owed,
        unpaid=unpaid,
        staff_activity=activity,
    )
    session.rollback()  # a read: end the transaction so the connection goes back to the pool clean
    return report
