"""Append-only admin log for actions that concern no single job.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

MESSAGE = "admin_log rows are append-only"


def upgrade() -> None:
    op.create_table(
        "admin_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("triggered_by", sa.String(length=100), nullable=True),
        sa.Column("workstation_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_log")),
    )
    with op.batch_alter_table("admin_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_log_timestamp"), ["timestamp"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION printlab_refuse_admin_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '%: % on % refused', '{MESSAGE}', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'restrict_violation';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER admin_log_append_only BEFORE UPDATE OR DELETE ON admin_log "
            "FOR EACH ROW EXECUTE FUNCTION printlab_refuse_admin_log_change()"
        )
        op.execute(
            "CREATE TRIGGER admin_log_no_truncate BEFORE TRUNCATE ON admin_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION printlab_refuse_admin_log_change()"
        )
    else:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER admin_log_no_{operation.lower()} BEFORE {operation} ON admin_log "
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}: {operation} on admin_log refused'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS admin_log_no_truncate ON admin_log")
        op.execute("DROP TRIGGER IF EXISTS admin_log_append_only ON admin_log")
    op.drop_table("admin_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS printlab_refuse_admin_log_change()")
