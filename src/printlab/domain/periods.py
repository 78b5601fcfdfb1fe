"""Periods of lab days: a typed date, a from–to range, a month, read with a message a person can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

#: The dates a form may name; beyond them a day's start or end in the lab's zone can't be computed.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """Dates that can't make a period; `errors` maps the field ("from", "to", "month") to its message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__(" ".join(errors.values()))


def parse_day(text: str) -> date:
    """A date typed as 2026-09-01 (the form's date input sends that); ValueError says what to type."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("Use a date like 2026-09-01.") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError("Use a date between the years 2000 and 2999.")
    return day


@dataclass(frozen=True)
class Period:
    """Lab days `first` to `last`, both included (in the lab's time zone)."""

    first: date
    last: date

    @property
    def words(self) -> str:
        return f"{self.first:%-d %B %Y} to {self.last:%-d %B %Y}"

    @property
    def after_last(self) -> date:
        """The day after the period: its end is that day's midnight."""
        return self.last + timedelta(days=1)


def parse_period(start: str | None, end: str | None) -> Period:
    """The period from two typed dates; PeriodError names each field that is missing or wrong."""
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for key, text, what in (("from", start, "first"), ("to", end, "last")):
        if not (text or "").strip():
            errors[key] = f"Give the {what} day of the period (like 2026-09-01)."
            continue
        try:
            days[key] = parse_day(text or "")
        except ValueError as exc:
            errors[key] = str(exc)
    if not errors and days["to"] < days["from"]:
        errors["to"] = "The period ends before it starts: the last day must be on or after the first."
    if errors:
        raise PeriodError(errors)
    return Period(days["from"], days["to"])


def parse_month(text: str | None) -> Period:
    """A month typed as 2026-11 (a month input sends that), as the period of its days."""
    found = _MONTH.match((text or "").strip())
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise PeriodError({"month": "Choose a month like 2026-11."})
    first = date(int(found.group(1)), int(found.group(2)), 1)
    if not FIRST_DAY <= first <= LAST_DAY:
        raise PeriodError({"month": "Choose a month between the years 2000 and 2999."})
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return Period(first, following - timedelta(days=1))
