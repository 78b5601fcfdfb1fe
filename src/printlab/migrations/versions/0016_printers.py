"""printer: the lab's printers as machines — connection, address, sealed API key, in service or not

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 17:00:00.000000

One row per catalog printer the lab uses (issue 14): how PrintLab reaches it (none, OctoPrint,
Moonraker, PrusaLink), its address, its API key encrypted under a key derived from the lab's
secret, and whether it is in service, paused or retired. A retired printer keeps its row; the
unique index on the name counts only the printers not retired.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_NOT_RETIRED = sa.text("state <> 'RETIRED'")


def upgrade() -> None:
    op.create_table(
        "printer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("connection", sa.String(length=20), server_default="NONE", nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("api_key_sealed", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=20), server_default="IN_SERVICE", nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=True),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "connection IN ('NONE', 'OCTOPRINT', 'MOONRAKER', 'PRUSALINK')",
            name=op.f("ck_printer_connection"),
        ),
        sa.CheckConstraint("state IN ('IN_SERVICE', 'PAUSED', 'RETIRED')", name=op.f("ck_printer_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_printer")),
    )
    op.create_index(
        "ix_printer_name_in_use",
        "printer",
        ["name"],
        unique=True,
        sqlite_where=_NOT_RETIRED,
        postgresql_where=_NOT_RETIRED,
    )


def downgrade() -> None:
    op.drop_index("ix_printer_name_in_use", table_name="printer")
    op.drop_table("printer")
