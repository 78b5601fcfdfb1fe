"""job: an index on the lower-cased student email, so a search for an address is one index lookup

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:40:00.000000

A whole email address typed in the dashboard's search box is matched exactly (ignoring case)
instead of through the trigram index: an address is made of trigrams nearly every job shares
(`edu`, `.ed`, `@un`), which both text indexes intersect before the rare ones narrow the matches.
An expression index, so the stored address keeps the case the student typed; both databases
use it for `lower(student_email) = :address`. Like 0008's triggers, a later SQLite batch-alter of
`job` (which recreates the table) must create this index again.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_job_student_email_lower ON job (lower(student_email))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_job_student_email_lower")
