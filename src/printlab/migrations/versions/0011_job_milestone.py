"""job_milestone: when each job first reached each stage; an index counting events per type and staff

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:00:00.000000

One row per job that has moved past Uploaded, written by every status change in its transaction;
the reports read it instead of each job's event trail (docs/performance.md, Reports). Existing
jobs are filled from their events with the rule the workflow keeps (domain.reports.milestones).
`ix_event_timestamp_type_staff` lets a report count a period's events per type and staff member
from the index alone; `ix_event_type_timestamp` finds a period's approvals, rejections and overrides.

"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = {
    "PENDING": "approved_at",
    "READYTOPRINT": "confirmed_at",
    "PRINTING": "printing_at",
    "COMPLETED": "completed_at",
    "PAIDPICKEDUP": "picked_up_at",
}
_MOVES = (
    "StaffApproved",
    "StudentConfirmed",
    "AdminOverride",
    "StatusChanged",
    "PrintFailed",
    "StaffRejected",
    "JobArchived",
)


def upgrade() -> None:
    op.create_table(
        "job_milestone",
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(), nullable=True),
        sa.Column("printer", sa.String(length=64), nullable=True),
        sa.Column("material", sa.String(length=32), nullable=True),
        sa.Column("time_hours", sa.Float(), nullable=True),
        sa.Column("weight_g", sa.Float(), nullable=True),
        *(sa.Column(column, sa.DateTime(), nullable=True) for column in _COLUMNS.values()),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_milestone_job_id_job")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_milestone")),
    )
    for column in _COLUMNS.values():
        op.create_index(op.f(f"ix_job_milestone_{column}"), "job_milestone", [column], unique=False)
    op.create_index(
        "ix_event_timestamp_type_staff", "event", ["timestamp", "event_type", "triggered_by"], unique=False
    )
    op.create_index("ix_event_type_timestamp", "event", ["event_type", "timestamp"], unique=False)
    _fill(op.get_bind())


def _reached(moves: list[tuple[datetime, str | None, str, bool]]) -> dict[str, datetime]:
    """When the job first reached each status (the rule of domain.reports.milestones, kept here as
    it was when this migration was written): a revert forgets the status it undoes."""
    reached: dict[str, datetime] = {}
    for when, source, target, revert in moves:
        if revert:
            reached.pop(source or "", None)
        else:
            reached.setdefault(target, when)
    return reached


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _trails(bind: sa.Connection) -> Iterator[tuple[str, list[tuple[datetime, str | None, str, bool]]]]:
    """Each job's status moves in order, streamed job by job."""
    rows = bind.execute(
        sa.text(
            "SELECT job_id, timestamp, details FROM event WHERE event_type IN :types "
            "ORDER BY job_id, timestamp, id"
        ).bindparams(sa.bindparam("types", expanding=True)),
        {"types": list(_MOVES)},
    )
    current: str | None = None
    moves: list[tuple[datetime, str | None, str, bool]] = []
    for job_id, when, details in rows:
        if job_id != current:
            if current is not None:
                yield current, moves
            current, moves = job_id, []
        data = json.loads(details) if isinstance(details, str) else (details or {})
        if isinstance(data, dict) and data.get("to"):
            moves.append((_when(when), data.get("from"), data["to"], bool(data.get("revert"))))
    if current is not None:
        yield current, moves


def _fill(bind: sa.Connection) -> None:
    table = sa.table("job_milestone", sa.column("job_id"), *(sa.column(c) for c in _COLUMNS.values()))
    batch: list[dict[str, Any]] = []
    for job_id, moves in _trails(bind):
        reached = _reached(moves)
        row = {column: reached.get(status) for status, column in _COLUMNS.items()}
        if any(row.values()):
            batch.append({"job_id": job_id, **row})
        if len(batch) >= 5000:
            bind.execute(table.insert(), batch)
            batch = []
    if batch:
        bind.execute(table.insert(), batch)
    bind.execute(
        sa.text(
            "UPDATE job_milestone SET"
            " uploaded_at = (SELECT job.created_at FROM job WHERE job.id = job_milestone.job_id),"
            " printer = (SELECT job.printer FROM job WHERE job.id = job_milestone.job_id),"
            " material = (SELECT job.material FROM job WHERE job.id = job_milestone.job_id),"
            " time_hours = (SELECT job.time_hours FROM job WHERE job.id = job_milestone.job_id),"
            " weight_g = (SELECT job.weight_g FROM job WHERE job.id = job_milestone.job_id)"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_event_type_timestamp", table_name="event")
    op.drop_index("ix_event_timestamp_type_staff", table_name="event")
    for column in _COLUMNS.values():
        op.drop_index(op.f(f"ix_job_milestone_{column}"), table_name="job_milestone")
    op.drop_table("job_milestone")
