"""workstation.session_epoch: sign-out, a password reset and deactivation end every session of a workstation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 08:30:00.000000

A session cookie is signed, not stored, so it can't be deleted on the server; each one carries the
epoch it was issued in, and a request whose epoch is no longer the workstation's is signed out.
Existing workstations start at 0; sessions issued before this revision carry none and end once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workstation", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("workstation", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
