"""Reports without reading event details or joining jobs: counted_action, job_milestone's discipline and class

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 20:00:00.000000

`counted_action` keeps, beside its event (by its id: a foreign key would answer a TRUNCATE of
`event` before the table's own append-only refusal does), whether the event was an approval of an upload, a
rejection of one, a cancellation or an override that archived a job (domain.reports.counted_action),
so a report counts a period's of each per staff member from an index instead of reading ~30,000
events' `details`; it is filled here from the existing events with the same rule. `job_milestone`
gains copies of the job's discipline and class, filled from the jobs, so a report narrowed to them
reads the milestones alone; its completion index also carries what the printer reported (0017),
which the reports prefer to the estimates. Revenue is read from a covering index on `payment`.
(docs/performance.md, Reports.)

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_COMPLETED_INDEX = ["completed_at", "hours_to_completion", "printer", "material", "time_hours", "weight_g"]
_PRINTED = ["printed_hours", "printed_g"]
_PAYMENT_INDEX = ["recorded_at", "kind", "charged_usd", "job_id"]
#: The event types that may be a counted action.
_TYPES = ["StaffApproved", "StaffRejected", "StudentCancelled", "QuoteDeclined", "AdminOverride"]


def upgrade() -> None:
    op.create_table(
        "counted_action",
        sa.Column("event_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("triggered_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_counted_action_job_id_job")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_counted_action")),
    )
    _fill_counted_actions(op.get_bind())
    op.create_index(
        "ix_counted_action_action_timestamp", "counted_action", ["action", "timestamp", "triggered_by"]
    )

    op.add_column("job_milestone", sa.Column("discipline", sa.String(length=50), nullable=True))
    op.add_column("job_milestone", sa.Column("class_number", sa.String(length=50), nullable=True))
    op.execute(
        "UPDATE job_milestone SET"
        " discipline = (SELECT job.discipline FROM job WHERE job.id = job_milestone.job_id),"
        " class_number = (SELECT job.class_number FROM job WHERE job.id = job_milestone.job_id)"
    )
    op.drop_index("ix_job_milestone_completed_at", table_name="job_milestone")
    op.create_index("ix_job_milestone_completed_at", "job_milestone", [*_COMPLETED_INDEX, *_PRINTED])

    op.drop_index("ix_payment_recorded_at", table_name="payment")
    op.create_index("ix_payment_recorded_at_kind_charged", "payment", _PAYMENT_INDEX)


def _fill_counted_actions(bind: sa.Connection) -> None:
    """Each existing event's counted action, by the rule of domain.reports.counted_action as it was
    when this migration was written, in one statement."""
    event = sa.table(
        "event",
        sa.column("id"),
        sa.column("job_id"),
        sa.column("timestamp"),
        sa.column("event_type"),
        sa.column("details", sa.JSON),
        sa.column("triggered_by"),
    )
    kind, source = event.c.event_type, event.c.details["from"].as_string()
    action = sa.case(
        (sa.and_(kind == "StaffApproved", source == "UPLOADED"), "approval"),
        (sa.and_(kind == "StaffRejected", source == "UPLOADED"), "rejection"),
        (kind.in_(["StaffRejected", "StudentCancelled", "QuoteDeclined"]), "cancellation"),
        (sa.and_(kind == "AdminOverride", event.c.details["to"].as_string() == "ARCHIVED"), "archiving"),
    ).label("action")
    counted = (
        sa.select(event.c.id, event.c.job_id, event.c.timestamp, action, event.c.triggered_by)
        .where(kind.in_(_TYPES), event.c.timestamp.is_not(None))
        .subquery()
    )
    columns = ["event_id", "job_id", "timestamp", "action", "triggered_by"]
    table = sa.table("counted_action", *(sa.column(c) for c in columns))
    bind.execute(
        table.insert().from_select(columns, sa.select(*counted.c).where(counted.c.action.is_not(None)))
    )


def downgrade() -> None:
    op.drop_index("ix_payment_recorded_at_kind_charged", table_name="payment")
    op.create_index("ix_payment_recorded_at", "payment", ["recorded_at"])
    op.drop_index("ix_job_milestone_completed_at", table_name="job_milestone")
    op.create_index("ix_job_milestone_completed_at", "job_milestone", _COMPLETED_INDEX)
    with op.batch_alter_table("job_milestone") as batch:
        batch.drop_column("class_number")
        batch.drop_column("discipline")
    op.drop_index("ix_counted_action_action_timestamp", table_name="counted_action")
    op.drop_table("counted_action")
