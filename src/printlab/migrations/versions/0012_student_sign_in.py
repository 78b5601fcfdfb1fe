"""student_sign_in_link and student_session: "See my requests" by an emailed sign-in link

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 16:00:00.000000

A student asks for a sign-in link (single use, 15 minutes; only its SHA-256 is stored); opening it
signs that browser in as the email address for 30 days through a server-side session whose cookie
id is stored hashed too, so "Sign out" and "Sign out everywhere" end sessions at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "student_sign_in_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_sign_in_link")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_student_sign_in_link_token_hash")),
    )
    op.create_index(op.f("ix_student_sign_in_link_email"), "student_sign_in_link", ["email"], unique=False)
    op.create_index(
        op.f("ix_student_sign_in_link_created_at"), "student_sign_in_link", ["created_at"], unique=False
    )
    op.create_table(
        "student_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_student_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_student_session_token_hash")),
    )
    op.create_index(op.f("ix_student_session_email"), "student_session", ["email"], unique=False)
    op.create_index(op.f("ix_student_session_expires_at"), "student_session", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_student_session_expires_at"), table_name="student_session")
    op.drop_index(op.f("ix_student_session_email"), table_name="student_session")
    op.drop_table("student_session")
    op.drop_index(op.f("ix_student_sign_in_link_created_at"), table_name="student_sign_in_link")
    op.drop_index(op.f("ix_student_sign_in_link_email"), table_name="student_sign_in_link")
    op.drop_table("student_sign_in_link")
