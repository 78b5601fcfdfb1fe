"""Alembic environment: runs PrintLab's migrations against the URL the caller configured."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import pool

from printlab.db import make_engine
from printlab.models import Base, modelled

config = context.config
target_metadata = Base.metadata

# A batch migration on SQLite reflects `job` (a foreign key's target) and SQLAlchemy can't describe
# migration 0009's index on lower(student_email); the index is kept, the warning is noise.
warnings.filterwarnings(
    "ignore", "Skipped unsupported reflection of expression-based index ix_job_student_email_lower"
)


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: SQLite can't ALTER most things; batch mode copies the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_name=modelled,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
