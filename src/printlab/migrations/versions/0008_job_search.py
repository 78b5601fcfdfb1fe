"""job_search: search text, tab counts and a dashboard version, kept by triggers in the job's own transaction

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:40:00.000000

Three tables beside `job` (whose columns stay as the customer's schema has them):

- `job_search`: one row per job with its status, created_at, the time it entered its status, and
  the text staff search in (name, email, class, stored and original file names). PostgreSQL
  searches it through a `pg_trgm` GIN index, SQLite through an FTS5 trigram table over it.
- `job_status_count`: jobs per status, so tab counts are eight rows, not a scan of every job.
- `dashboard_version`: one row whose number grows with every committed job or analysis change,
  so an unchanged dashboard poll is answered from one row.

Why triggers, not the service layer: every statement that writes `job` keeps them right, in its
own transaction — the workflow, admin overrides, sweeps, integrity repair, a restore, and a
technician's raw SQL fix alike. A service-layer hook would be one forgotten call away from a
count that is wrong forever.

PostgreSQL and hot rows: the count and version rows are changed by *deferred* constraint
triggers, which run at COMMIT, after every job row lock the transaction takes. Each one first
bumps the single version row, so concurrent committers queue on that row for the moment their
commit takes (microseconds, not the length of their transaction) and then touch the count rows
one at a time: no two transactions can hold count rows in opposite orders, so there is no
deadlock. A sequence was rejected because `nextval` is visible before the commit: a poll could
read the new number, then the old jobs, and keep showing them. `max(updated_at)` misses deletions
and changes to a job's analysis.

SQLite: plain AFTER triggers (SQLite has one writer at a time). Alembic's batch mode recreates a
table on SQLite and drops its triggers: a later migration that batch-alters `job`, `job_search`
or `job_analysis` must create these triggers again (`create_triggers` below).
"""

# SQL below is built from this file's constants only, never from input.
# ruff: noqa: S608

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUSES = (
    "UPLOADED",
    "PENDING",
    "READYTOPRINT",
    "PRINTING",
    "COMPLETED",
    "PAIDPICKEDUP",
    "REJECTED",
    "ARCHIVED",
)


def _text(row: str, dialect: str) -> str:
    """The searchable text of a job row (`NEW`, `OLD` or a table alias), lower-cased, one field a line."""
    fields = ("student_name", "student_email", "class_number", "display_name", "original_filename")
    if dialect == "postgresql":
        return "lower(concat_ws(E'\\n', " + ", ".join(f"{row}.{f}" for f in fields) + "))"
    return "lower(" + " || char(10) || ".join(f"coalesce({row}.{f}, '')" for f in fields) + ")"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "job_search",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("status_since", sa.DateTime(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_search")),
        sa.UniqueConstraint("job_id", name=op.f("uq_job_search_job_id")),
    )
    op.create_table(
        "job_status_count",
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("status", name=op.f("pk_job_status_count")),
    )
    op.create_table(
        "dashboard_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_version")),
    )
    fill()
    if dialect == "postgresql":
        op.execute(
            "CREATE INDEX ix_job_search_search_text_trgm ON job_search USING gin (search_text gin_trgm_ops)"
        )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE job_search_fts USING fts5("
            "search_text, content='job_search', content_rowid='id', tokenize='trigram')"
        )
        op.execute("INSERT INTO job_search_fts (job_search_fts) VALUES ('rebuild')")
    create_triggers(dialect)


def fill() -> None:
    """Search rows and counts for the jobs already there; the time each entered its status is read
    from the audit trail (the last event that moved it there), else its last change."""
    dialect = op.get_bind().dialect.name
    to = "e.details ->> 'to'" if dialect == "postgresql" else "json_extract(e.details, '$.to')"
    op.execute(
        f"""
        INSERT INTO job_search (job_id, status, created_at, status_since, search_text)
        SELECT j.id, j.status, j.created_at,
               coalesce((SELECT max(e.timestamp) FROM event e WHERE e.job_id = j.id AND {to} = j.status),
                        j.updated_at, j.created_at),
               {_text("j", dialect)}
        FROM job j
        """
    )
    values = ", ".join(f"('{status}')" for status in STATUSES)
    op.execute(
        f"""
        INSERT INTO job_status_count (status, jobs)
        SELECT s.status, (SELECT count(*) FROM job j WHERE j.status = s.status)
        FROM (VALUES {values}) AS s (status)
        """
        if dialect == "postgresql"
        else f"""
        WITH s (status) AS (VALUES {values})
        INSERT INTO job_status_count (status, jobs)
        SELECT s.status, (SELECT count(*) FROM job j WHERE j.status = s.status) FROM s
        """
    )
    op.execute("INSERT INTO dashboard_version (id, version) VALUES (1, 1)")


def create_triggers(dialect: str) -> None:
    if dialect == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    op.execute(
        f"""
        CREATE FUNCTION printlab_job_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            words text;
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM job_search WHERE job_id = OLD.id;
                RETURN NULL;
            END IF;
            words := {_text("NEW", "postgresql")};
            IF TG_OP = 'INSERT' THEN
                INSERT INTO job_search (job_id, status, created_at, status_since, search_text)
                VALUES (NEW.id, NEW.status, NEW.created_at, coalesce(NEW.updated_at, NEW.created_at), words);
            ELSIF NEW.id IS DISTINCT FROM OLD.id OR NEW.status IS DISTINCT FROM OLD.status
                  OR NEW.created_at IS DISTINCT FROM OLD.created_at
                  OR words IS DISTINCT FROM {_text("OLD", "postgresql")} THEN
                UPDATE job_search
                SET job_id = NEW.id, status = NEW.status, created_at = NEW.created_at, search_text = words,
                    status_since = CASE
                        WHEN NEW.status IS NOT DISTINCT FROM OLD.status THEN status_since
                        WHEN NEW.updated_at IS DISTINCT FROM OLD.updated_at THEN NEW.updated_at
                        ELSE (now() AT TIME ZONE 'UTC') END
                WHERE job_id = OLD.id;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER job_search_sync AFTER INSERT OR UPDATE OR DELETE ON job "
        "FOR EACH ROW EXECUTE FUNCTION printlab_job_search_sync()"
    )
    # Deferred to COMMIT: the version row is taken first, so count rows are never taken in two orders.
    op.execute(
        """
        CREATE FUNCTION printlab_dashboard_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE dashboard_version SET version = version + 1 WHERE id = 1;
            IF TG_TABLE_NAME = 'job' THEN
                IF TG_OP = 'INSERT' THEN
                    UPDATE job_status_count SET jobs = jobs + 1 WHERE status = NEW.status;
                ELSIF TG_OP = 'DELETE' THEN
                    UPDATE job_status_count SET jobs = jobs - 1 WHERE status = OLD.status;
                ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
                    UPDATE job_status_count SET jobs = jobs + CASE WHEN status = NEW.status THEN 1 ELSE -1 END
                    WHERE status IN (OLD.status, NEW.status);
                END IF;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    for table in ("job", "job_analysis"):
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {table}_dashboard_changed AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION printlab_dashboard_changed()"
        )


def _sqlite_triggers() -> None:
    new, old = _text("NEW", "sqlite"), _text("OLD", "sqlite")
    bump = "UPDATE dashboard_version SET version = version + 1 WHERE id = 1;"
    op.execute(
        f"""
        CREATE TRIGGER job_search_insert AFTER INSERT ON job BEGIN
            INSERT INTO job_search (job_id, status, created_at, status_since, search_text)
            VALUES (NEW.id, NEW.status, NEW.created_at, coalesce(NEW.updated_at, NEW.created_at), {new});
            UPDATE job_status_count SET jobs = jobs + 1 WHERE status = NEW.status;
            {bump}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER job_search_update AFTER UPDATE ON job BEGIN
            UPDATE job_search
            SET job_id = NEW.id, status = NEW.status, created_at = NEW.created_at, search_text = {new},
                status_since = CASE
                    WHEN NEW.status IS OLD.status THEN status_since
                    WHEN NEW.updated_at IS NOT OLD.updated_at THEN NEW.updated_at
                    ELSE CURRENT_TIMESTAMP END
            WHERE job_id = OLD.id
              AND (NEW.id IS NOT OLD.id OR NEW.status IS NOT OLD.status
                   OR NEW.created_at IS NOT OLD.created_at OR {new} IS NOT {old});
            UPDATE job_status_count SET jobs = jobs + CASE WHEN status = NEW.status THEN 1 ELSE -1 END
            WHERE NEW.status IS NOT OLD.status AND status IN (OLD.status, NEW.status);
            {bump}
        END
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER job_search_delete AFTER DELETE ON job BEGIN
            DELETE FROM job_search WHERE job_id = OLD.id;
            UPDATE job_status_count SET jobs = jobs - 1 WHERE status = OLD.status;
            {bump}
        END
        """
    )
    for operation in ("INSERT", "UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER job_analysis_{operation.lower()}_dashboard AFTER {operation} ON job_analysis "
            f"BEGIN {bump} END"
        )
    op.execute(
        """
        CREATE TRIGGER job_search_fts_insert AFTER INSERT ON job_search BEGIN
            INSERT INTO job_search_fts (rowid, search_text) VALUES (NEW.id, NEW.search_text);
        END
        """
    )
    op.execute(
        """
        CREATE TRIGGER job_search_fts_delete AFTER DELETE ON job_search BEGIN
            INSERT INTO job_search_fts (job_search_fts, rowid, search_text) VALUES ('delete', OLD.id, OLD.search_text);
        END
        """
    )
    op.execute(
        """
        CREATE TRIGGER job_search_fts_update AFTER UPDATE OF search_text ON job_search BEGIN
            INSERT INTO job_search_fts (job_search_fts, rowid, search_text) VALUES ('delete', OLD.id, OLD.search_text);
            INSERT INTO job_search_fts (rowid, search_text) VALUES (NEW.id, NEW.search_text);
        END
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("job", "job_analysis"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_dashboard_changed ON {table}")
        op.execute("DROP TRIGGER IF EXISTS job_search_sync ON job")
        op.execute("DROP FUNCTION IF EXISTS printlab_dashboard_changed()")
        op.execute("DROP FUNCTION IF EXISTS printlab_job_search_sync()")
    else:
        for trigger in (
            "job_search_insert",
            "job_search_update",
            "job_search_delete",
            "job_analysis_insert_dashboard",
            "job_analysis_update_dashboard",
            "job_analysis_delete_dashboard",
            "job_search_fts_insert",
            "job_search_fts_delete",
            "job_search_fts_update",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS job_search_fts")
    op.drop_table("dashboard_version")
    op.drop_table("job_status_count")
    op.drop_table("job_search")
