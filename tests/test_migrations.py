"""Alembic migrations: one head, the migrated schema equals the models, and a full downgrade/upgrade cycle."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, String, inspect, text
from sqlalchemy.exc import DBAPIError

from printlab.db import alembic_config, make_engine, schema_is_current, upgrade
from printlab.models import Base, modelled


def _differences(engine, metadata: MetaData = Base.metadata) -> list:  # type: ignore[no-untyped-def,type-arg]
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": modelled}
        )
        return compare_metadata(context, metadata)


def _append_only_refuses_update(engine) -> bool:  # type: ignore[no-untyped-def]
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job (id, status, is_confirmation_expired) VALUES ('j1', 'UPLOADED', :f)"),
            {"f": False},
        )
        connection.execute(text("INSERT INTO event (job_id, event_type) VALUES ('j1', 'JobCreated')"))
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE event SET event_type = 'Edited'"))
    except DBAPIError as exc:
        return "append-only" in str(exc)
    return False


def test_there_is_a_single_head():
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1


def test_migrated_database_matches_the_models(engine):
    assert _differences(engine) == []


def test_the_comparison_would_notice_a_drift(engine):
    # Guards the test above against passing vacuously: a changed length and an extra column are seen.
    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["staff"].c.name.type = String(120)
    drifted.tables["event"].append_column(Column("extra", Integer))
    kinds = {diff[0] if isinstance(diff, tuple) else diff[0][0] for diff in _differences(engine, drifted)}
    assert kinds == {"add_column", "modify_type"}


def test_schema_is_current_only_after_upgrade(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        assert schema_is_current(engine) is False
        upgrade(empty_database_url)
        assert schema_is_current(engine) is True
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_then_upgrade_to_head(database_url, engine):
    command.downgrade(alembic_config(database_url), "base")
    engine.dispose()
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert schema_is_current(engine) is False
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            leftover = connection.execute(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'printlab_refuse_change'")
            ).scalar_one()
        assert leftover == 0

    upgrade(database_url)
    engine.dispose()
    assert schema_is_current(engine) is True
    assert _differences(engine) == []
    assert _append_only_refuses_update(engine)


def test_0006_gives_existing_workstations_session_epoch_zero(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0005")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO workstation (id, password_hash, is_admin, is_active, added_at) "
                    "VALUES ('LAB-PC-1', 'hash', :no, :yes, CURRENT_TIMESTAMP)"
                ),
                {"no": False, "yes": True},
            )
        engine.dispose()
        command.upgrade(config, "head")
        engine.dispose()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT session_epoch FROM workstation")).scalar_one() == 0
        assert _differences(engine) == []
        command.downgrade(config, "0005")
        engine.dispose()
        assert "session_epoch" not in {c["name"] for c in inspect(engine).get_columns("workstation")}
    finally:
        engine.dispose()


def test_0010_turns_voided_payments_into_reversal_rows(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0009")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO job (id, status, is_confirmation_expired) VALUES ('j1', 'COMPLETED', :f)"),
                {"f": False},
            )
            connection.execute(
                text(
                    "INSERT INTO payment (job_id, charged_usd, kept_quote, recorded_by, recorded_at, voided_at, "
                    "void_reason) VALUES ('j1', 4.20, :f, 'Alex Rivera', '2026-11-02 10:00:00', "
                    "'2026-11-02 11:00:00', 'Wrong job scanned'), "
                    "('j1', 3.10, :f, 'Sam Lee', '2026-11-03 10:00:00', NULL, NULL)"
                ),
                {"f": False},
            )
        engine.dispose()
        command.upgrade(config, "head")
        engine.dispose()
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, charged_usd, kind, reason, refund_of, recorded_at FROM payment ORDER BY id")
            ).all()
        assert [(Decimal(str(r[1])), r[2], r[3], r[4]) for r in rows] == [
            (Decimal("4.20"), "CHARGE", None, None),
            (Decimal("3.10"), "CHARGE", None, None),
            (Decimal("-4.20"), "REVERSAL", "Wrong job scanned", rows[0][0]),
        ]
        assert str(rows[2][5]).startswith("2026-11-02 11:00")
        assert _differences(engine) == []
    finally:
        engine.dispose()


def test_payments_are_append_only_except_clearing_the_collector(engine):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job (id, status, is_confirmation_expired) VALUES ('j1', 'PAIDPICKEDUP', :f)"),
            {"f": False},
        )
        connection.execute(
            text(
                "INSERT INTO payment (job_id, charged_usd, kept_quote, picked_up_by, recorded_by, recorded_at) "
                "VALUES ('j1', 4.20, :f, 'Jane Doe', 'Alex Rivera', CURRENT_TIMESTAMP)"
            ),
            {"f": False},
        )
    for statement in (
        "UPDATE payment SET charged_usd = 0",
        "UPDATE payment SET kind = 'REFUND'",
        "UPDATE payment SET picked_up_by = 'Someone Else'",
        "DELETE FROM payment",
    ):
        try:
            with engine.begin() as connection:
                connection.execute(text(statement))
        except DBAPIError as exc:
            assert "append-only" in str(exc), statement
        else:
            raise AssertionError(f"{statement} was allowed")
    with engine.begin() as connection:  # the personal-data prune may clear who collected it
        connection.execute(text("UPDATE payment SET picked_up_by = NULL"))
        charged, collector = connection.execute(text("SELECT charged_usd, picked_up_by FROM payment")).one()
        assert (Decimal(str(charged)), collector) == (Decimal("4.20"), None)
