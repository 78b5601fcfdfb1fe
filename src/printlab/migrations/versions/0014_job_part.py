"""job_part: the model files of a job sent in several parts, with their copies and analysis

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 16:00:00.000000

A job keeps its one row in `job` (the customer's table, unchanged): `job.file_path` and
`job.file_hash` stay on its main file, and each of its model files is a row here. Jobs sent before
this migration have no rows; their own file is their one part.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_part",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("original_filename", sa.String(length=256), nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("copies", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("results", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("thumbnail_png", sa.LargeBinary(), nullable=True),
        sa.Column("analysed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("number BETWEEN 1 AND 10", name=op.f("ck_job_part_number")),
        sa.CheckConstraint("copies BETWEEN 1 AND 20", name=op.f("ck_job_part_copies")),
        sa.CheckConstraint("state IN ('PENDING', 'DONE', 'FAILED')", name=op.f("ck_job_part_state")),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_part_job_id_job")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_part")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_job_part_job_id_number")),
    )
    op.create_index(op.f("ix_job_part_file_hash"), "job_part", ["file_hash"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_job_part_file_hash"), table_name="job_part")
    op.drop_table("job_part")
