"""api_token: personal API tokens made by admins, kept only as hashes

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04 19:00:00.000000

Issue 15's API: each token is named, belongs to one staff member (whose name its actions carry), is
scoped read or write, has its own rate limit, an expiry, the time it was last used and, once revoked,
when and by whom. Only the SHA-256 of the token is stored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("staff_name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("rate_per_minute", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write')", name=op.f("ck_api_token_scope")),
        sa.CheckConstraint("rate_per_minute BETWEEN 1 AND 6000", name=op.f("ck_api_token_rate_per_minute")),
        sa.ForeignKeyConstraint(["staff_name"], ["staff.name"], name=op.f("fk_api_token_staff_name_staff")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("name", name=op.f("uq_api_token_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    op.create_index("ix_api_token_staff_name", "api_token", ["staff_name"])


def downgrade() -> None:
    op.drop_index("ix_api_token_staff_name", table_name="api_token")
    op.drop_table("api_token")
