"""printer_poll, print_run, queue_place: what connected printers report, prints sent to them, the queue order

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 19:00:00.000000

Issue 14's live side of the fleet: the worker's last poll of each connected printer (`printer_poll`),
each job sent to a printer from PrintLab and how it ended (`print_run`, at most one open run per job
and one busy run per printer, enforced by partial unique indexes), the board's order of each
printer's queue (`queue_place`), and the printed time and filament the printer reported, kept on
`job_milestone` for the reports.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_OPEN_RUN = sa.text("state IN ('SENDING', 'PRINTING', 'STOPPED')")
_BUSY_RUN = sa.text("state IN ('SENDING', 'PRINTING')")


def upgrade() -> None:
    op.create_table(
        "printer_poll",
        sa.Column("printer_id", sa.Integer(), nullable=False),
        sa.Column("activity", sa.String(length=20), nullable=False),
        sa.Column("software", sa.String(length=100), nullable=True),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("file", sa.String(length=256), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("seconds_left", sa.Integer(), nullable=True),
        sa.Column("seconds_printed", sa.Integer(), nullable=True),
        sa.Column("temperatures", sa.JSON(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("polled_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_poll_at", sa.DateTime(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["printer_id"], ["printer.id"], name=op.f("fk_printer_poll_printer_id_printer")
        ),
        sa.PrimaryKeyConstraint("printer_id", name=op.f("pk_printer_poll")),
    )
    op.create_index("ix_printer_poll_next_poll_at", "printer_poll", ["next_poll_at"])
    op.create_table(
        "print_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("printer_id", sa.Integer(), nullable=False),
        sa.Column("printer_name", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("source_file", sa.String(length=256), nullable=False),
        sa.Column("printer_file", sa.String(length=256), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("workstation_id", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("seconds_printed", sa.Integer(), nullable=True),
        sa.Column("filament_mm", sa.Float(), nullable=True),
        sa.Column("filament_g", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "state IN ('SENDING', 'NOT_STARTED', 'PRINTING', 'STOPPED', 'FINISHED', 'FAILED', 'ENDED')",
            name=op.f("ck_print_run_state"),
        ),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_print_run_job_id_job")),
        sa.ForeignKeyConstraint(["printer_id"], ["printer.id"], name=op.f("fk_print_run_printer_id_printer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_run")),
    )
    op.create_index(
        "ix_print_run_job_open", "print_run", ["job_id"], unique=True,
        sqlite_where=_OPEN_RUN, postgresql_where=_OPEN_RUN,
    )  # fmt: skip
    op.create_index(
        "ix_print_run_printer_busy", "print_run", ["printer_id"], unique=True,
        sqlite_where=_BUSY_RUN, postgresql_where=_BUSY_RUN,
    )  # fmt: skip
    op.create_index("ix_print_run_job_id", "print_run", ["job_id"])
    op.create_index("ix_print_run_state", "print_run", ["state"])
    op.create_table(
        "queue_place",
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_queue_place_job_id_job")),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_queue_place")),
    )
    op.add_column("job_milestone", sa.Column("printed_hours", sa.Float(), nullable=True))
    op.add_column("job_milestone", sa.Column("printed_g", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_milestone") as batch:
        batch.drop_column("printed_g")
        batch.drop_column("printed_hours")
    op.drop_table("queue_place")
    for name in (
        "ix_print_run_state",
        "ix_print_run_job_id",
        "ix_print_run_printer_busy",
        "ix_print_run_job_open",
    ):
        op.drop_index(name, table_name="print_run")
    op.drop_table("print_run")
    op.drop_index("ix_printer_poll_next_poll_at", table_name="printer_poll")
    op.drop_table("printer_poll")
