"""outbox delivery: stable Message-ID, claim and sending marker, CANCELLED status

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite can only change a CHECK constraint by rebuilding the table, which the
    # metadata's naming convention lets Alembic do with the same constraint names.
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("sending_at", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_outbox_message_message_id"), ["message_id"])
        batch_op.drop_constraint(batch_op.f("ck_outbox_message_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_outbox_message_status"), "status IN ('PENDING', 'SENT', 'FAILED', 'CANCELLED')"
        )


def downgrade() -> None:
    # A cancelled message was never sent; before 0003 the nearest state is FAILED (visible, retryable).
    op.execute("UPDATE outbox_message SET status = 'FAILED' WHERE status = 'CANCELLED'")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_outbox_message_status"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_outbox_message_status"), "status IN ('PENDING', 'SENT', 'FAILED')"
        )
        batch_op.drop_constraint(batch_op.f("uq_outbox_message_message_id"), type_="unique")
        batch_op.drop_column("sending_at")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("message_id")
