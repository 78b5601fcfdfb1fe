"""The rules behind the lab's reports: periods in the lab's time zone, semesters, percentiles, queue ages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from printlab.clock import lab_day_start
from printlab.domain import periods
from printlab.domain.statuses import Status


class PeriodError(ValueError):
    """A period or filter a person chose that can't be reported on; `field` names the form control."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Semester:
    """A named part of the year, from (month, day) to (month, day), both days included."""

    name: str
    first: tuple[int, int]
    last: tuple[int, int]


#: The catalog has no place for the academic calendar yet, so the semesters are defined here: a
#: US campus's usual split of the year, every day in exactly one semester.
DEFAULT_SEMESTERS: tuple[Semester, ...] = (
    Semester("Spring", (1, 1), (5, 31)),
    Semester("Summer", (6, 1), (8, 14)),
    Semester("Fall", (8, 15), (12, 31)),
)

#: The period choices on the form, in order, with their words.
PERIOD_CHOICES: dict[str, str] = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "this-semester": "This semester",
    "last-semester": "Last semester",
    "custom": "Custom dates",
}
DEFAULT_PERIOD = "30d"
_ROLLING_DAYS = {"7d": 7, "30d": 30, "90d": 90}

#: The earliest day a report may start on, and how far past today one may end.
EARLIEST_DAY = date(2000, 1, 1)
MAX_DAYS_AHEAD = 366
#: The longest custom period (about five years): throughput is shown per week, ~260 rows at most.
MAX_PERIOD_DAYS = 1830


def lab_day(moment: datetime, zone: str) -> date:
    """The lab-local calendar day of a naive-UTC time."""
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date()


@dataclass(frozen=True)
class Period:
    """Lab-local days `first_day`…`last_day` (both included) as the UTC range [start, end)."""

    label: str
    first_day: date
    last_day: date
    zone: str

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @cached_property
    def start(self) -> datetime:
        return lab_day_start(self.first_day, self.zone)

    @cached_property
    def end(self) -> datetime:
        return lab_day_start(self.last_day + timedelta(days=1), self.zone)

    def previous(self) -> Period:
        """The same number of days just before this period, for comparison."""
        last = self.first_day - timedelta(days=1)
        first = last - timedelta(days=self.days - 1)
        return Period(f"{date_words(first)} – {date_words(last)}", first, last, self.zone)

    def weeks(self) -> list[date]:
        """The Monday of every lab-local week (Monday to Sunday) that overlaps the period."""
        monday = week_start(self.first_day)
        weeks = []
        while monday <= self.last_day:
            weeks.append(monday)
            monday += timedelta(days=7)
        return weeks

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def week_start(day: date) -> date:
    """The Monday of the week `day` falls in."""
    return day - timedelta(days=day.weekday())


def date_words(day: date) -> str:
    """'3 Mar 2026' — how a report writes a day."""
    return f"{day.day} {day.strftime('%b %Y')}"


def semester_of(day: date, semesters: Sequence[Semester] = DEFAULT_SEMESTERS) -> tuple[Semester, date, date]:
    """The semester `day` falls in, with its first and last day that year."""
    for semester in semesters:
        first = date(day.year, *semester.first)
        last = date(day.year, *semester.last)
        if first <= day <= last:
            return semester, first, last
    raise ValueError(f"{day} is in no semester; the semesters must cover the whole year")


def _semester_period(day: date, zone: str, semesters: Sequence[Semester], *, back: int = 0) -> Period:
    semester, first, last = semester_of(day, semesters)
    for _ in range(back):
        semester, first, last = semester_of(first - timedelta(days=1), semesters)
    return Period(f"{semester.name} {first.year}", first, last, zone)


def parse_day(value: str, field: str, label: str) -> date:
    """A day typed as YYYY-MM-DD (what a date input sends), within sane bounds (domain/periods.py)."""
    try:
        return periods.parse_day(value or "")
    except ValueError as exc:
        message = str(exc)
        raise PeriodError(field, f"{label}: {message[:1].lower()}{message[1:]}") from None


def choose_period(
    choice: str | None,
    today: date,
    zone: str,
    *,
    from_day: str | None = None,
    to_day: str | None = None,
    semesters: Sequence[Semester] = DEFAULT_SEMESTERS,
) -> Period:
    """The period a person chose on the form (`today` is the lab-local day). Raises PeriodError."""
    key = (choice or DEFAULT_PERIOD).strip()
    if key not in PERIOD_CHOICES:
        raise PeriodError("period", "Choose a period from the list.")
    if key in _ROLLING_DAYS:
        days = _ROLLING_DAYS[key]
        return Period(PERIOD_CHOICES[key], today - timedelta(days=days - 1), today, zone)
    if key == "this-semester":
        return _semester_period(today, zone, semesters)
    if key == "last-semester":
        return _semester_period(today, zone, semesters, back=1)
    if not (from_day or "").strip() or not (to_day or "").strip():
        raise PeriodError("from", "For custom dates, give both a start and an end date.")
    first = parse_day(from_day or "", "from", "Start date")
    last = parse_day(to_day or "", "to", "End date")
    if last < first:
        raise PeriodError("to", "The end date is before the start date.")
    if first < EARLIEST_DAY:
        raise PeriodError("from", f"Start on or after {date_words(EARLIEST_DAY)}.")
    if last > today + timedelta(days=MAX_DAYS_AHEAD):
        raise PeriodError("to", "End within a year from today.")
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        raise PeriodError("to", f"Choose at most {MAX_PERIOD_DAYS:,} days (about five years).")
    return Period(f"{date_words(first)} – {date_words(last)}", first, last, zone)


# -- statistics ---------------------------------------------------------------------------------


def nearest_rank(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `percent` % of values at or
    below it (always one of the values; the median of an even count is the lower middle one)."""
    return nearest_ranks(values, (percent,))[0]


def nearest_ranks(values: Sequence[float], percents: Sequence[float]) -> tuple[float | None, ...]:
    """`nearest_rank` for several percents, sorting the values once."""
    if not values:
        return tuple(None for _ in percents)
    ordered = sorted(values)
    return tuple(ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1] for percent in percents)


def change_percent(now: float, before: float) -> float | None:
    """How much a figure moved against the previous period, in percent (None: nothing to compare)."""
    if not before:
        return None
    return (now - before) / abs(before) * 100


# -- turnaround per stage -----------------------------------------------------------------------

#: The stages of a print, each from reaching one status to reaching the next, with their words.
STAGES: tuple[tuple[Status, Status, str], ...] = (
    (Status.UPLOADED, Status.PENDING, "Upload to approval"),
    (Status.PENDING, Status.READYTOPRINT, "Approval to confirmation"),
    (Status.READYTOPRINT, Status.PRINTING, "Confirmation to printing"),
    (Status.PRINTING, Status.COMPLETED, "Printing to completed"),
    (Status.COMPLETED, Status.PAIDPICKEDUP, "Completed to pickup"),
)


@dataclass(frozen=True)
class Move:
    """One status change from a job's event trail."""

    at: datetime
    source: str | None
    target: str
    revert: bool = False


def milestones(created_at: datetime | None, moves: Sequence[Move]) -> dict[str, datetime]:
    """When a job first reached each status, from its trail in time order.

    A later move into a status the job had already reached keeps the first time (a failed print
    printed again counts from its first start, as the student waited from then). A revert undoes the
    move it reverts: the job never really got there, so the time it reached the status it left is
    forgotten and the next time it gets there counts. `job_milestone` keeps the same times, written
    by each move (services/jobs/milestones.py).
    """
    reached: dict[str, datetime] = {}
    if created_at is not None:
        reached[Status.UPLOADED.value] = created_at
    for move in moves:
        if move.revert:
            reached.pop(move.source or "", None)
        else:
            reached.setdefault(move.target, move.at)
    return reached


def stage_hours(reached: Mapping[str, datetime | None]) -> tuple[float | None, ...]:
    """How long each stage took (STAGES order), in hours, from when the job first reached each status.

    None for a stage the job hasn't finished, skipped (an admin override past it) or whose times are
    not in order (a status reached again after a revert, before the one it follows).
    """
    hours: list[float | None] = []
    for start, end, _label in STAGES:
        began, done = reached.get(start.value), reached.get(end.value)
        ok = began is not None and done is not None and done >= began
        hours.append((done - began).total_seconds() / 3600 if ok else None)  # type: ignore[operator]
    return tuple(hours)


# -- counted actions ---------------------------------------------------------------------------

#: What an event did, for the reports' counts, when its type alone doesn't say: approving an upload
#: (not a new quote), rejecting one (not cancelling a job already approved), cancelling, and an
#: override that archived a job (it also writes JobArchived: one action of the staff member's, not two).
APPROVAL, REJECTION, CANCELLATION, ARCHIVING_OVERRIDE = "approval", "rejection", "cancellation", "archiving"
COUNTED_ACTIONS = (APPROVAL, REJECTION, CANCELLATION, ARCHIVING_OVERRIDE)


def counted_action(event_type: str | None, details: Mapping[str, object] | None) -> str | None:
    """Which of COUNTED_ACTIONS an event is, from its type and the move its details record; None
    for every other event. A student's cancellation or declined quote has a type of its own (a
    student is not staff) and counts as a cancellation."""
    given = details if isinstance(details, Mapping) else {}
    source, target = given.get("from"), given.get("to")
    if event_type == "StaffApproved":
        return APPROVAL if source == Status.UPLOADED.value else None
    if event_type == "StaffRejected":
        return REJECTION if source == Status.UPLOADED.value else CANCELLATION
    if event_type in ("StudentCancelled", "QuoteDeclined"):
        return CANCELLATION
    if event_type == "AdminOverride" and target == Status.ARCHIVED.value:
        return ARCHIVING_OVERRIDE
    return None


# -- queue age ---------------------------------------------------------------------------------

#: Waiting-time buckets for the jobs in each work queue now: (upper bound in hours, words).
AGE_BUCKETS: tuple[tuple[float, str], ...] = (
    (24, "Under 1 day"),
    (72, "1–3 days"),
    (168, "3–7 days"),
    (336, "1–2 weeks"),
    (math.inf, "2 weeks or more"),
)


def age_bucket(age: timedelta) -> int:
    """The index in AGE_BUCKETS of a job that has waited `age`."""
    hours = age / timedelta(hours=1)
    return next(i for i, (bound, _) in enumerate(AGE_BUCKETS) if hours < bound)


def duration_words(hours: float | None) -> str:
    """'45 min', '5.5 h', '3.2 days' — a turnaround as staff read it."""
    if hours is None:
        return "—"
    if hours < 1:
        return f"{round(hours * 60)} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def filter_problems(chosen: Mapping[str, str], known: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Filters whose value is not one the lab knows (an empty value means 'all')."""
    words = {"printer": "printer", "method": "print method", "discipline": "discipline"}
    return {
        key: f"Choose a {words.get(key, key)} from the list."
        for key, value in chosen.items()
        if value and key in known and value not in known[key]
    }
