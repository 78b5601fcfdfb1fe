"""job (status, created_at, id) index: each dashboard tab's page is an index range, not a sort of the whole tab

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:10:00.000000

Measured with bench/bench_dashboard.py at 100,000 jobs (docs/performance.md): without it the
Archived tab sorted ~87,000 rows per page on SQLite, and PostgreSQL walked ix_job_created_at past
every newer job to find the Uploaded queue. The seed's single-column indexes stay as they are.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_status_created_at", ["status", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_status_created_at")
