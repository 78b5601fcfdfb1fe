"""job_change_request and job_resubmission: "needs changes" requests and resubmissions (issue 13)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 10:00:00.000000

`job_change_request` holds staff's requests for a corrected file (the job stays Uploaded; an open
row is "waiting for the student"), with the reply link's token hash and when it runs out.
`job_resubmission` links a job to the rejected job it corrects. Neither touches the seed's tables.

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_change_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('REPLACED', 'NO_ANSWER', 'MOVED_ON')", name=op.f("ck_job_change_request_outcome")
        ),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_change_request_job_id_job")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_change_request")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_job_change_request_token_hash")),
    )
    op.create_index(op.f("ix_job_change_request_job_id"), "job_change_request", ["job_id"])
    op.create_index(
        "ix_job_change_request_closed_at_expires_at", "job_change_request", ["closed_at", "expires_at"]
    )
    op.create_table(
        "job_resubmission",
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("earlier_job_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_job_resubmission_job_id_job")),
        sa.ForeignKeyConstraint(
            ["earlier_job_id"], ["job.id"], name=op.f("fk_job_resubmission_earlier_job_id_job")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_resubmission")),
    )
    op.create_index(op.f("ix_job_resubmission_earlier_job_id"), "job_resubmission", ["earlier_job_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_job_resubmission_earlier_job_id"), table_name="job_resubmission")
    op.drop_table("job_resubmission")
    op.drop_index("ix_job_change_request_closed_at_expires_at", table_name="job_change_request")
    op.drop_index(op.f("ix_job_change_request_job_id"), table_name="job_change_request")
    op.drop_table("job_change_request")
