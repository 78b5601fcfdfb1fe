"""Time in one place: naive UTC for the database (as the seed's utcnow columns), the lab's zone for people."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Naive UTC, the form every DateTime column of the seed stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_lab_time(moment: datetime, zone: str) -> datetime:
    """A naive-UTC database time (or a time that knows its zone) shown in the lab's time zone."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(ZoneInfo(zone))


def lab_day_start(day: date, zone: str) -> datetime:
    """The naive-UTC moment a lab-local calendar day begins: its midnight in the lab's zone.

    A period of lab days [first, last] is `lab_day_start(first) <= t < lab_day_start(last + 1 day)`,
    which stays right across a daylight-saving change (that day is 23 or 25 hours long).
    """
    return datetime.combine(day, time.min, ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


def age_text(since: datetime, now: datetime) -> str:
    """Compact age for cards: '45m', '5h 3m', '2d 4h'."""
    seconds = max(0, int((now - since).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def hours_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier) / timedelta(hours=1)
