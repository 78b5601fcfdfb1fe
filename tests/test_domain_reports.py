"""The reports' pure rules: periods in the lab's time zone, semesters, percentiles, queue ages, milestones."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from printlab.domain.reports import (
    Move,
    PeriodError,
    age_bucket,
    choose_period,
    counted_action,
    lab_day_start,
    milestones,
    nearest_rank,
    nearest_ranks,
    semester_of,
    stage_hours,
)
from printlab.domain.statuses import Status

CHICAGO = "America/Chicago"


def test_a_period_across_the_spring_change_is_13_days_and_23_hours():
    period = choose_period("custom", date(2026, 3, 20), CHICAGO, from_day="2026-03-02", to_day="2026-03-15")
    assert (period.start, period.end) == (datetime(2026, 3, 2, 6), datetime(2026, 3, 16, 5))
    assert period.end - period.start == timedelta(days=14, hours=-1)
    assert period.weeks() == [date(2026, 3, 2), date(2026, 3, 9)]
    before = period.previous()
    assert (before.first_day, before.last_day, before.end) == (
        date(2026, 2, 16),
        date(2026, 3, 1),
        period.start,
    )


def test_a_period_across_the_autumn_change_gains_an_hour():
    period = choose_period("custom", date(2026, 11, 20), CHICAGO, from_day="2026-11-01", to_day="2026-11-01")
    assert period.end - period.start == timedelta(hours=25)
    assert lab_day_start(date(2026, 11, 2), CHICAGO) == datetime(2026, 11, 2, 6)


def test_rolling_periods_end_today_and_semesters_follow_the_calendar():
    today = date(2026, 12, 3)
    assert choose_period("7d", today, CHICAGO).first_day == date(2026, 11, 27)
    assert choose_period(None, today, CHICAGO).days == 30
    this = choose_period("this-semester", today, CHICAGO)
    assert (this.label, this.first_day, this.last_day) == ("Fall 2026", date(2026, 8, 15), date(2026, 12, 31))
    last = choose_period("last-semester", today, CHICAGO)
    assert (last.label, last.first_day, last.last_day) == ("Summer 2026", date(2026, 6, 1), date(2026, 8, 14))
    january = choose_period("last-semester", date(2027, 1, 10), CHICAGO)
    assert january.label == "Fall 2026"
    assert semester_of(date(2026, 8, 14))[0].name == "Summer"


@pytest.mark.parametrize(
    ("choice", "start", "end", "field"),
    [
        ("custom", "2026-03-15", "2026-03-01", "to"),
        ("custom", "2026-3-1", "2026-03-02", "from"),
        ("custom", "", "2026-03-02", "from"),
        ("custom", "1999-12-31", "2026-03-02", "from"),
        ("custom", "2026-01-01", "2028-01-01", "to"),
        ("custom", "2020-01-01", "2026-01-01", "to"),  # more than about five years
        ("quarter", None, None, "period"),
    ],
)
def test_bad_periods_name_the_field_at_fault(choice, start, end, field):
    with pytest.raises(PeriodError) as refused:
        choose_period(choice, date(2026, 12, 3), CHICAGO, from_day=start, to_day=end)
    assert refused.value.field == field and refused.value.message.endswith(".")


def test_nearest_rank_percentiles_are_real_values():
    assert nearest_rank([], 50) is None
    assert nearest_rank([5.0], 90) == 5.0
    assert nearest_rank([4.0, 1.0, 3.0, 2.0], 50) == 2.0  # the lower middle of an even count
    assert nearest_rank(list(range(1, 11)), 90) == 9
    assert nearest_rank(list(range(1, 12)), 90) == 10


def test_queue_age_buckets():
    hours = [0, 23.9, 24, 71.9, 72, 167.9, 168, 335.9, 336, 10_000]
    assert [age_bucket(timedelta(hours=h)) for h in hours] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_milestones_keep_the_first_time_and_forget_a_reverted_move():
    t = [datetime(2026, 3, 1, h) for h in range(10)]
    trail = [
        Move(t[1], "UPLOADED", "PENDING"),
        Move(t[2], "PENDING", "READYTOPRINT"),
        Move(t[3], "READYTOPRINT", "PRINTING"),
        Move(t[4], "PRINTING", "READYTOPRINT"),  # a failed print
        Move(t[5], "READYTOPRINT", "PRINTING"),
        Move(t[6], "PRINTING", "COMPLETED"),
        Move(t[7], "COMPLETED", "PRINTING", revert=True),
        Move(t[8], "PRINTING", "COMPLETED"),
    ]
    assert milestones(t[0], trail) == {
        "UPLOADED": t[0],
        "PENDING": t[1],
        "READYTOPRINT": t[2],
        "PRINTING": t[3],
        "COMPLETED": t[8],
    }


def test_nearest_ranks_sorts_once_for_several_percents():
    assert nearest_ranks([], (50, 90)) == (None, None)
    assert nearest_ranks(list(range(10, 0, -1)), (50, 90)) == (5, 9)


def test_stage_hours_leave_out_stages_not_finished_skipped_or_out_of_order():
    day = datetime(2026, 3, 2, 9)
    reached = {
        Status.UPLOADED.value: day,
        Status.PENDING.value: day + timedelta(hours=1, minutes=30),
        # no confirmation: an admin moved the job on to Printing
        Status.PRINTING.value: day + timedelta(days=1),
        Status.COMPLETED.value: day + timedelta(hours=20),  # before it started printing
    }
    assert stage_hours(reached) == (1.5, None, None, None, None)
    reached[Status.COMPLETED.value] = day + timedelta(days=1, hours=2, minutes=15)
    reached[Status.PAIDPICKEDUP.value] = day + timedelta(days=3)
    assert stage_hours(reached) == (1.5, None, None, 2.25, 45.75)


@pytest.mark.parametrize(
    ("event_type", "details", "action"),
    [
        ("StaffApproved", {"from": "UPLOADED", "to": "PENDING"}, "approval"),
        ("StaffApproved", {"from": "PENDING", "to": "PENDING", "edited": True}, None),  # a new quote
        ("StaffApproved", {"from": "READYTOPRINT", "to": "PENDING"}, None),
        ("StaffRejected", {"from": "UPLOADED", "to": "REJECTED"}, "rejection"),
        ("StaffRejected", {"from": "PENDING", "to": "REJECTED", "cancelled": True}, "cancellation"),
        ("StaffRejected", None, "cancellation"),
        ("StudentCancelled", {"from": "UPLOADED", "to": "REJECTED"}, "cancellation"),
        ("QuoteDeclined", {"from": "PENDING", "to": "REJECTED"}, "cancellation"),
        ("AdminOverride", {"from": "REJECTED", "to": "ARCHIVED"}, "archiving"),
        ("AdminOverride", {"from": "PENDING", "to": "PRINTING"}, None),
        ("AdminOverride", {"override": "lock_cleared"}, None),
        ("StatusChanged", {"from": "UPLOADED", "to": "PENDING"}, None),  # an approval's second event
        ("JobArchived", {"from": "REJECTED", "to": "ARCHIVED"}, None),
        (None, None, None),
    ],
)
def test_which_events_the_reports_count(event_type, details, action):
    assert counted_action(event_type, details) == action
