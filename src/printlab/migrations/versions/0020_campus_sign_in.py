"""campus_person, campus_group_role, staff_pin: campus sign-in for staff, groups' roles, personal PINs

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 19:30:00.000000

Campus sign-in (OpenID Connect, issue 15): each person the lab's identity provider vouched for, keyed
by the provider and its subject id, with the staff name their actions are recorded under and the role
(staff, admin) their groups or an admin gave them; the groups an admin mapped to roles; and each staff
member's personal PIN (argon2) for switching in at a shared workstation.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campus_person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("groups", sa.JSON(), nullable=True),
        sa.Column("staff_name", sa.String(length=100), nullable=True),
        sa.Column("role", sa.String(length=10), server_default="NONE", nullable=False),
        sa.Column("approval", sa.String(length=10), server_default="PENDING", nullable=False),
        sa.Column("role_set_by_admin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("role IN ('NONE', 'STAFF', 'ADMIN')", name=op.f("ck_campus_person_role")),
        sa.CheckConstraint(
            "approval IN ('PENDING', 'APPROVED', 'REFUSED')", name=op.f("ck_campus_person_approval")
        ),
        sa.ForeignKeyConstraint(
            ["staff_name"], ["staff.name"], name=op.f("fk_campus_person_staff_name_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campus_person")),
        sa.UniqueConstraint("issuer", "subject", name="uq_campus_person_issuer_subject"),
    )
    op.create_table(
        "campus_group_role",
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint("role IN ('STAFF', 'ADMIN')", name=op.f("ck_campus_group_role_role")),
        sa.PrimaryKeyConstraint("group", name=op.f("pk_campus_group_role")),
    )

    op.create_table(
        "staff_pin",
        sa.Column("staff_name", sa.String(length=100), nullable=False),
        sa.Column("pin_hash", sa.String(length=255), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.String(length=100), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("epoch", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["staff_name"], ["staff.name"], name=op.f("fk_staff_pin_staff_name_staff")),
        sa.PrimaryKeyConstraint("staff_name", name=op.f("pk_staff_pin")),
    )


def downgrade() -> None:
    op.drop_table("staff_pin")
    op.drop_table("campus_group_role")
    op.drop_table("campus_person")
