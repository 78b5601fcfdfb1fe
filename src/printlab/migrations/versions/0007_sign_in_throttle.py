"""sign_in_throttle: wrong workstation passwords counted per client address, with the wait they earned

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:20:00.000000

Before, 20 wrong passwords from anywhere locked a workstation out for everyone for 15 minutes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_throttle",
        sa.Column("workstation_id", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(), nullable=False),
        sa.Column("blocked_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workstation_id"],
            ["workstation.id"],
            name=op.f("fk_sign_in_throttle_workstation_id_workstation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workstation_id", "address", name=op.f("pk_sign_in_throttle")),
    )
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_throttle_last_failure_at"), ["last_failure_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sign_in_throttle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_throttle_last_failure_at"))
    op.drop_table("sign_in_throttle")
