"""The reports page's read model: a period's figures beside the previous period's, from indexed queries.

Nothing here changes anything. Each figure is worked out from the rows the workflow writes (jobs,
their event trail, payments, `job_search` for since when a job has been in its status, and
`job_milestone` for when it first reached each stage), with a fixed handful of statements whatever
the period: each covers the period and the one before it, grouped in the database where a count is
all that is needed. docs/performance.md says why the stage times have a table of their own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, case, func, literal, select, union_all
from sqlalchemy.orm import Session

from printlab.clock import lab_day_start, utcnow
from printlab.domain.catalog import Catalog
from printlab.domain.reports import (
    AGE_BUCKETS,
    APPROVAL,
    ARCHIVING_OVERRIDE,
    CANCELLATION,
    COUNTED_ACTIONS,
    REJECTION,
    STAGES,
    Period,
    PeriodError,
    age_bucket,
    change_percent,
    filter_problems,
    nearest_ranks,
)
from printlab.domain.statuses import WORK_QUEUES, Status
from printlab.domain.text import is_clean
from printlab.models import (
    MILESTONE_COLUMNS,
    STAGE_HOURS_COLUMNS,
    CountedAction,
    Event,
    Job,
    JobMilestone,
    JobSearch,
    Payment,
    PaymentKind,
    Staff,
)

#: Unpaid completed jobs listed by name; the count and the amount owed cover all of them.
UNPAID_LISTED = 100
_STAGE_ENDS = [end for _, end, _ in STAGES]
# Each stage starts where the one before it ended, from the upload on: a trail is one time per status.
assert [start for start, _, _ in STAGES] == [Status.UPLOADED, *_STAGE_ENDS[:-1]]
#: The position of Completed in a trail's times.
_COMPLETED = 1 + _STAGE_ENDS.index(Status.COMPLETED)

_FROM = Event.details["from"].as_string()


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


def _in_each(aggregate: Any, column: Any, span: Span) -> list[Any]:
    """`aggregate` over this period's rows and over the previous period's, as two filtered
    aggregates of one statement: no grouping (PostgreSQL sorted every row by its period first)."""
    now = column >= span[1]
    return [aggregate.filter(now), aggregate.filter(~now)]


def _submissions(session: Session, span: Span, filters: Filters) -> Figure:
    query = select(*_in_each(func.count(), Job.created_at, span)).where(
        _in_span(Job.created_at, span), *filters.conditions()
    )
    now, before = session.execute(query).one()
    return Figure(float(now or 0), float(before or 0))


def _events_of(query: Any, filters: Filters) -> Any:
    conditions = filters.conditions()
    return query.join(Job, Job.id == Event.job_id).where(*conditions) if conditions else query


def _actions_per_staff(session: Session, span: Span, filters: Filters) -> dict[str, list[int]]:
    """How many events each staff member wrote in the previous period and in this one.

    Unfiltered, each person's two counts are ranges of the index on (triggered_by, timestamp): a
    dozen short index walks instead of grouping every event of the periods. Filtered, the events
    are joined to their jobs and grouped.
    """
    staff: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if filters.conditions():
        flag = _this_period(Event.timestamp, span)
        per_staff = (
            select(flag, Event.triggered_by, func.count())
            .where(_in_span(Event.timestamp, span), Event.triggered_by.is_not(None))
            .group_by(flag, Event.triggered_by)
        )
        for this, who, n in session.execute(_events_of(per_staff, filters)):
            staff[who][1 if this else 0] += n
        return staff

    def actions(start: datetime, end: datetime) -> Any:
        return (
            select(func.count())
            .where(Event.triggered_by == Staff.name, Event.timestamp >= start, Event.timestamp < end)
            .scalar_subquery()
        )

    query = select(Staff.name, actions(span[0], span[1]), actions(span[1], span[2]))
    for name, before, now in session.execute(query):
        staff[name] = [int(before), int(now)]
    return staff


def _event_counts(
    session: Session, span: Span, filters: Filters
) -> tuple[dict[str, Figure], list[tuple[str, int, int]]]:
    """Approvals, rejections, cancellations and each staff member's actions.

    The staff members' actions are counted first (`_actions_per_staff`), then the approvals,
    rejections, cancellations and archiving overrides per staff member from `counted_action`'s
    index (which of them an event was is kept beside it when it is written: its details are not read).
    """
    c = CountedAction
    flag = _this_period(c.timestamp, span)
    staff = _actions_per_staff(session, span, filters)
    query = (
        select(flag, c.action, c.triggered_by, func.count())
        .where(c.action.in_(COUNTED_ACTIONS), _in_span(c.timestamp, span))
        .group_by(flag, c.action, c.triggered_by)
    )
    conditions = filters.conditions()
    if conditions:
        query = query.join(Job, Job.id == c.job_id).where(*conditions)
    names = {APPROVAL: "approvals", REJECTION: "rejections", CANCELLATION: "cancellations"}
    counts: dict[str, list[int]] = {k: [0, 0] for k in names.values()}
    for this, action, who, n in session.execute(query):
        slot = 1 if this else 0
        if action in names:
            counts[names[action]][slot] += n
        # An approval writes StaffApproved and StatusChanged, an override that archives AdminOverride
        # and JobArchived: one action each for the staff member.
        if who and action in (APPROVAL, ARCHIVING_OVERRIDE):
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


def _milestones_of(query: Any, filters: Filters) -> Any:
    """`query` over job_milestone narrowed by `filters`: the job's printer, method, discipline and
    class are copied into its milestone row, so the job is never joined."""
    m = JobMilestone
    if filters.printer:
        query = query.where(m.printer == filters.printer)
    if filters.method:
        query = query.where(m.material == filters.method)
    if filters.discipline:
        query = query.where(m.discipline == filters.discipline)
    if filters.class_number:
        query = query.where(func.lower(m.class_number) == filters.class_number.lower())
    return query


#: Each stage's end and how long it took (domain.reports.STAGES order).
_STAGE_COLUMNS = [
    (getattr(JobMilestone, MILESTONE_COLUMNS[end.value]), getattr(JobMilestone, hours))
    for (_start, end, _label), hours in zip(STAGES, STAGE_HOURS_COLUMNS, strict=True)
]


#: A stage's figures in one period: how many jobs finished it, the median and the 90th percentile.
Ranked = tuple[int, float | None, float | None]
_PERCENTS = (50, 90)


def _stage_times(session: Session, span: Span, filters: Filters) -> list[StageTimes]:
    """Each stage's median and 90th percentile (hours) for the jobs that finished it in either period.

    How long each stage took is kept in `job_milestone` and read through the index on the stage's
    end, which holds it; a stage a job skipped (an admin override) or took out of order has no
    hours and is left out. PostgreSQL ranks them itself (`percentile_disc` is the nearest rank);
    SQLite has no such aggregate and its window functions took three times as long as sending the
    plain numbers here and sorting them (measured at 100,000 jobs, docs/performance.md).
    """
    rank = _ranked_by_postgresql if session.get_bind().dialect.name == "postgresql" else _ranked_here
    found = rank(session, span, filters)
    empty: Ranked = (0, None, None)
    return [
        StageTimes(label, *found.get((stage, 1), empty), *found.get((stage, 0), empty))
        for stage, (_start, _end, label) in enumerate(STAGES)
    ]


def _ranked_by_postgresql(session: Session, span: Span, filters: Filters) -> dict[tuple[int, int], Ranked]:
    # One row per stage, each period's figures aggregated with a filter: no sort of all the rows
    # by stage and period before each group's own (that sort spilled to disk at 100,000 jobs).
    parts = []
    for stage, (done, hours) in enumerate(_STAGE_COLUMNS):
        aggregates = []
        for slot in (1, 0):
            chosen = done >= span[1] if slot else done < span[1]
            aggregates.append(func.count().filter(chosen))
            aggregates += [
                func.percentile_disc(percent / 100).within_group(hours).filter(chosen)
                for percent in _PERCENTS
            ]
        query = select(literal(stage, Integer), *aggregates).where(_in_span(done, span), hours.is_not(None))
        parts.append(_milestones_of(query, filters))
    found: dict[tuple[int, int], Ranked] = {}
    for stage, *figures in session.execute(union_all(*parts)):
        found[(stage, 1)] = tuple(figures[:3])  # type: ignore[assignment]
        found[(stage, 0)] = tuple(figures[3:])  # type: ignore[assignment]
    return found


def _ranked_here(session: Session, span: Span, filters: Filters) -> dict[tuple[int, int], Ranked]:
    # Per stage and period, one column of hours: far cheaper to send than rows naming their stage.
    connection = session.connection()
    found: dict[tuple[int, int], Ranked] = {}
    for stage, (done, hours) in enumerate(_STAGE_COLUMNS):
        for slot, (start, end) in enumerate(((span[0], span[1]), (span[1], span[2]))):
            query = select(hours).where(done >= start, done < end, hours.is_not(None))
            result = connection.execute(_milestones_of(query, filters))
            # Tens of thousands of plain numbers: read from the driver's cursor, which measured a
            # third of the time of building a result row for each.
            taken = [h for (h,) in result.cursor.fetchall()]
            result.close()
            if taken:
                found[(stage, slot)] = (len(taken), *nearest_ranks(taken, _PERCENTS))  # type: ignore[assignment]
    return found


@dataclass
class Completions:
    """The jobs first completed in the period and the one before: how many, per week, and their use
    of each printer (hours and grams)."""

    completed: Figure
    per_week: list[tuple[date, int]]
    printer_use: list[tuple[str, str, Figure, Figure]]  # printer, method, hours, grams
    method_use: list[tuple[str, Figure, Figure]]


def _completions(session: Session, span: Span, filters: Filters, period: Period) -> Completions:
    """Two statements over `job_milestone.completed_at`: grouped per printer and method in each
    period (what the printer reported for the print, or else the estimates), and counted per
    lab-local week of this period (weeks found by their first moment in UTC, so a week that
    crosses a daylight-saving change is still Monday to Sunday in the lab)."""
    m = JobMilestone
    done = m.completed_at
    flag = _this_period(done, span)
    # What the printer reported for the print, where it did; otherwise the estimate.
    hours_used, grams_used = (
        func.coalesce(m.printed_hours, m.time_hours),
        func.coalesce(m.printed_g, m.weight_g),
    )
    per_printer = select(
        flag, m.printer, m.material, func.count(), func.sum(hours_used), func.sum(grams_used)
    ).where(_in_span(done, span))
    totals = [0, 0]
    printers: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    methods: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    query = _milestones_of(per_printer, filters).group_by(flag, m.printer, m.material)
    for this, printer, method, jobs, hours, grams in session.execute(query):
        totals[int(this)] += jobs
        slot = 0 if this else 2
        for use in (printers[(printer or "", method or "")], methods[method or ""]):
            use[slot] += float(hours or 0)
            use[slot + 1] += float(grams or 0)

    # Each lab-local week's completions counted as a range of the index on completed_at: a dozen
    # short index walks instead of testing every row of the period against every week's start.
    weeks = period.weeks()
    bounds = [max(period.start, lab_day_start(monday, period.zone)) for monday in weeks] + [period.end]
    counts = [
        _milestones_of(select(func.count()).where(done >= start, done < end), filters).scalar_subquery()
        for start, end in pairwise(bounds)
    ]
    per_week = dict(zip(weeks, (int(n or 0) for n in session.execute(select(*counts)).one()), strict=True))

    def figures(use: list[float]) -> tuple[Figure, Figure]:
        h, g, ph, pg = use
        return Figure(round(h, 1), round(ph, 1)), Figure(round(g, 1), round(pg, 1))

    return Completions(
        completed=Figure(totals[1], totals[0]),
        per_week=sorted(per_week.items()),
        printer_use=[
            (printer, method, *figures(use))
            for (printer, method), use in sorted(printers.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ],
        method_use=[(method, *figures(use)) for method, use in sorted(methods.items())],
    )


def _pickups_counted() -> ColumnElement[int]:
    """A pickup counts once; the reversal a revert writes takes it back. Refunds and corrections
    change the revenue (every payment row is summed), not the number of pickups."""
    return case((Payment.kind == PaymentKind.CHARGE, 1), (Payment.kind == PaymentKind.REVERSAL, -1), else_=0)


def _payments(session: Session, span: Span, filters: Filters) -> tuple[Figure, Figure]:
    """Revenue (the sum charged in the period) and the number of pickups paid for."""
    column = Payment.recorded_at
    query = select(
        *_in_each(func.sum(Payment.charged_usd), column, span),
        *_in_each(func.sum(_pickups_counted()), column, span),
    ).where(_in_span(column, span))
    conditions = filters.conditions()
    if conditions:
        query = query.join(Job, Job.id == Payment.job_id).where(*conditions)
    revenue_now, revenue_before, pickups_now, pickups_before = session.execute(query).one()

    def money(total: Any) -> float:
        return float(Decimal(str(total or 0)).quantize(Decimal("0.01")))

    return (
        Figure(money(revenue_now), money(revenue_before)),
        Figure(int(pickups_now or 0), int(pickups_before or 0)),
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
    # Found through job's status index (job_search has none on purpose), each one's time looked up
    # by its job: joined, PostgreSQL hashed all of job_search (100,000 rows) for ~1,000 jobs.
    since = select(JobSearch.status_since).where(JobSearch.job_id == Job.id).scalar_subquery()
    query = select(Job.status, since).where(Job.status.in_([s.value for s in queues]), *filters.conditions())
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
    completions = _completions(session, span, filters, period)
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
        completed=completions.completed,
        rejection_reasons=_rejection_reasons(session, span, filters),
        throughput=completions.per_week,
        stages=_stage_times(session, span, filters),
        queue_ages=_queue_ages(session, filters, now),
        printer_use=completions.printer_use,
        method_use=completions.method_use,
        revenue=revenue,
        pickups=pickups,
        unpaid_count=unpaid_count,
        unpaid_owed=unpaid_owed,
        unpaid=unpaid,
        staff_activity=activity,
    )
    session.rollback()  # a read: end the transaction so the connection goes back to the pool clean
    return report
