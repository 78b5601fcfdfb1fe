"""Report indexes: how long each stage took, kept beside its end; each staff member's events by time

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 16:00:00.000000

`job_milestone` gains how long each stage took (hours), filled here from the times it already
holds, and each stage's index becomes (its end, its hours) — for completion also the printer,
method, hours and grams — so a report reads a period's stage times from the indexes alone. Each
staff member's actions in a period are counted from `ix_event_staff_timestamp`, a range per person,
instead of walking every event of the period in `ix_event_timestamp_type_staff`, which nothing else
used (docs/performance.md, Reports).

"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

#: Each stage as (its start, its end, how long it took), in order.
_STAGES = (
    ("uploaded_at", "approved_at", "hours_to_approval"),
    ("approved_at", "confirmed_at", "hours_to_confirmation"),
    ("confirmed_at", "printing_at", "hours_to_printing"),
    ("printing_at", "completed_at", "hours_to_completion"),
    ("completed_at", "picked_up_at", "hours_to_pickup"),
)
#: What each stage's index holds after its end.
_CARRIED = {"completed_at": ["printer", "material", "time_hours", "weight_g"]}


def upgrade() -> None:
    for _start, _end, hours in _STAGES:
        op.add_column("job_milestone", sa.Column(hours, sa.Float(), nullable=True))
    _fill(op.get_bind())
    for _start, end, hours in _STAGES:
        op.drop_index(f"ix_job_milestone_{end}", table_name="job_milestone")
        op.create_index(f"ix_job_milestone_{end}", "job_milestone", [end, hours, *_CARRIED.get(end, [])])
    op.create_index("ix_event_staff_timestamp", "event", ["triggered_by", "timestamp"], unique=False)
    op.drop_index("ix_event_timestamp_type_staff", table_name="event")


def _when(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _fill(bind: sa.Connection) -> None:
    """Each row's stage hours from its times (the rule of domain.reports.stage_hours as it was when
    this migration was written: a stage not finished, skipped or out of order has none)."""
    times = [start for start, _end, _hours in _STAGES] + ["picked_up_at"]
    table = sa.table(
        "job_milestone",
        sa.column("job_id"),
        *(sa.column(c) for c in times),
        *(sa.column(h) for _s, _e, h in _STAGES),
    )
    update = (
        table.update()
        .where(table.c.job_id == sa.bindparam("row_id"))
        .values({h: sa.bindparam(h) for _s, _e, h in _STAGES})
    )
    rows = bind.execute(sa.select(table.c.job_id, *(table.c[c] for c in times))).all()
    batch: list[dict[str, Any]] = []
    for job_id, *values in rows:
        reached = dict(zip(times, (_when(v) for v in values), strict=True))
        row: dict[str, Any] = {"row_id": job_id}
        for start, end, hours in _STAGES:
            began, done = reached[start], reached[end]
            row[hours] = (done - began).total_seconds() / 3600 if began and done and done >= began else None
        batch.append(row)
        if len(batch) >= 5000:
            bind.execute(update, batch)
            batch = []
    if batch:
        bind.execute(update, batch)


def downgrade() -> None:
    op.create_index(
        "ix_event_timestamp_type_staff", "event", ["timestamp", "event_type", "triggered_by"], unique=False
    )
    op.drop_index("ix_event_staff_timestamp", table_name="event")
    for _start, end, hours in _STAGES:
        op.drop_index(f"ix_job_milestone_{end}", table_name="job_milestone")
        op.create_index(f"ix_job_milestone_{end}", "job_milestone", [end], unique=False)
        op.drop_column("job_milestone", hours)
