"""The migrated staff, job and event tables match the customer's seed schema, transcribed here by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Float, Integer, Numeric, String, Text, inspect, text
from sqlalchemy.exc import IntegrityError

from printlab.clock import utcnow
from printlab.models import Event, Job, Staff

# The contract, copied from the customer's data-model document (database-schema.md) — NOT derived from models.py, so a
# drift in the models or the migration fails here. Each column: (kind, nullable), where kind is
# ("string", length), ("integer",), ("float",), ("numeric", precision, scale), ("boolean",),
# ("datetime",), ("json",) or ("text",). Seed columns without nullable= are nullable unless they
# are the primary key.
S = "string"
CONTRACT: dict[str, dict[str, tuple[tuple[object, ...], bool]]] = {
    "staff": {
        "name": ((S, 100), False),
        "is_active": (("boolean",), True),
        "added_at": (("datetime",), True),
        "deactivated_at": (("datetime",), True),
    },
    "job": {
        "id": ((S, None), False),
        "student_name": ((S, 100), True),
        "student_email": ((S, 100), True),
        "discipline": ((S, 50), True),
        "class_number": ((S, 50), True),
        "original_filename": ((S, 256), True),
        "display_name": ((S, 256), True),
        "file_path": ((S, 512), True),
        "metadata_path": ((S, 512), True),
        "status": ((S, 50), True),
        "printer": ((S, 64), True),
        "color": ((S, 32), True),
        "material": ((S, 32), True),
        "weight_g": (("float",), True),
        "time_hours": (("float",), True),
        "cost_usd": (("numeric", 6, 2), True),
        "acknowledged_minimum_charge": (("boolean",), True),
        "student_confirmed": (("boolean",), True),
        "student_confirmed_at": (("datetime",), True),
        "confirm_token": ((S, 128), True),
        "confirm_token_expires": (("datetime",), True),
        "is_confirmation_expired": (("boolean",), False),
        "confirmation_last_sent_at": (("datetime",), True),
        "reject_reasons": (("json",), True),
        "staff_viewed_at": (("datetime",), True),
        "last_updated_by": ((S, 100), True),
        "notes": (("text",), True),
        "locked_by": ((S, 100), True),
        "locked_until": (("datetime",), True),
        "file_hash": ((S, 64), True),
        "created_at": (("datetime",), True),
        "updated_at": (("datetime",), True),
    },
    "event": {
        "id": (("integer",), False),
        "job_id": ((S, None), False),
        "timestamp": (("datetime",), True),
        "event_type": ((S, 50), True),
        "details": (("json",), True),
        "triggered_by": ((S, 100), True),
        "workstation_id": ((S, 100), True),
    },
}
PRIMARY_KEYS = {"staff": ["name"], "job": ["id"], "event": ["id"]}
#: "Indexes and Performance Considerations" in the seed: (table, column).
INDEXED = {
    ("job", "status"),
    ("job", "file_hash"),
    ("job", "created_at"),
    ("event", "job_id"),
    ("event", "timestamp"),
    ("event", "triggered_by"),
}
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


def kind(column_type: object) -> tuple[object, ...]:
    """The contract's name for a reflected type; subclasses first (Text is a String, Float a Numeric)."""
    if isinstance(column_type, JSON):
        return ("json",)
    if isinstance(column_type, Text):
        return ("text",)
    if isinstance(column_type, String):
        return (S, column_type.length)
    if isinstance(column_type, Boolean):
        return ("boolean",)
    if isinstance(column_type, DateTime):
        return ("datetime",)
    if isinstance(column_type, Float):
        return ("float",)
    if isinstance(column_type, Numeric):
        return ("numeric", column_type.precision, column_type.scale)
    if isinstance(column_type, Integer):
        return ("integer",)
    return ("unknown", repr(column_type))


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_columns_types_and_nullability_match_the_seed(engine, table):
    reflected = {c["name"]: (kind(c["type"]), c["nullable"]) for c in inspect(engine).get_columns(table)}
    assert reflected == CONTRACT[table]


@pytest.mark.parametrize("table", sorted(PRIMARY_KEYS))
def test_primary_keys_match_the_seed(engine, table):
    assert inspect(engine).get_pk_constraint(table)["constrained_columns"] == PRIMARY_KEYS[table]


def test_confirm_token_is_unique(engine):
    inspector = inspect(engine)
    unique = [u["column_names"] for u in inspector.get_unique_constraints("job")]
    assert unique == [["confirm_token"]]
    # And it really is enforced.
    with engine.begin() as connection:
        insert = text(
            "INSERT INTO job (id, status, is_confirmation_expired, confirm_token) VALUES (:id, 'PENDING', :f, 'tok')"
        )
        connection.execute(insert, {"id": "a" * 32, "f": False})
        with pytest.raises(IntegrityError), connection.begin_nested():
            connection.execute(insert, {"id": "b" * 32, "f": False})


def test_event_job_id_references_job_id(engine):
    foreign_keys = inspect(engine).get_foreign_keys("event")
    assert [
        (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"]) for fk in foreign_keys
    ] == [(["job_id"], "job", ["id"])]
    assert inspect(engine).get_foreign_keys("job") == []
    assert inspect(engine).get_foreign_keys("staff") == []


def test_the_six_seed_indexes_exist(engine):
    inspector = inspect(engine)
    found = {
        (table, index["column_names"][0])
        for table in ("staff", "job", "event")
        for index in inspector.get_indexes(table)
        if len(index["column_names"]) == 1 and not index["unique"]
    }
    # The seed asks for these six; it doesn't forbid more, so further indexes are allowed.
    assert sorted(INDEXED - found) == []


def _insert_job(connection, job_id: str, status: str) -> None:
    connection.execute(
        text("INSERT INTO job (id, status, is_confirmation_expired) VALUES (:id, :status, :f)"),
        {"id": job_id, "status": status, "f": False},
    )


def test_status_check_constraint_refuses_unknown_status(engine):
    with engine.begin() as connection:
        for index, status in enumerate(STATUSES):
            _insert_job(connection, f"{index:032x}", status)
        with pytest.raises(IntegrityError), connection.begin_nested():
            _insert_job(connection, "f" * 32, "LOST")
        with pytest.raises(IntegrityError), connection.begin_nested():
            _insert_job(connection, "e" * 32, "pending")  # codes are UPPERCASE
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM job")).scalar_one() == len(STATUSES)


def test_status_check_constraint_refuses_an_unknown_status_on_update(engine):
    with engine.begin() as connection:
        _insert_job(connection, "a" * 32, "UPLOADED")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE job SET status = 'DONE' WHERE id = :id"), {"id": "a" * 32})
    with engine.connect() as connection:
        assert connection.execute(text("SELECT status FROM job")).scalar_one() == "UPLOADED"


def test_is_confirmation_expired_is_not_null(engine):
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO job (id, status) VALUES ('x', 'UPLOADED')"))


def test_event_job_id_is_required_and_must_exist(engine):
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("INSERT INTO event (event_type) VALUES ('JobCreated')"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text("INSERT INTO event (job_id, event_type) VALUES ('no-such-job', 'JobCreated')")
        )


def test_python_side_defaults_of_the_seed(session):
    before = utcnow()
    staff = Staff(name="Alex Rivera")
    job = Job(id="0" * 32, status="UPLOADED")
    session.add_all([staff, job])
    session.commit()
    session.add(Event(job_id=job.id, event_type="JobCreated"))
    session.commit()
    session.expire_all()

    staff = session.get(Staff, "Alex Rivera")
    assert staff.is_active is True
    assert staff.deactivated_at is None
    assert before <= staff.added_at <= utcnow()

    job = session.get(Job, "0" * 32)
    assert job.student_confirmed is False
    assert job.acknowledged_minimum_charge is False
    assert job.is_confirmation_expired is False
    assert before <= job.created_at <= utcnow()
    assert before <= job.updated_at <= utcnow()

    event = job.events[0]
    assert event.id is not None  # auto-incrementing
    assert before <= event.timestamp <= utcnow()


def test_updated_at_moves_on_update(session):
    long_ago = datetime(2020, 1, 1)
    job = Job(id="1" * 32, status="UPLOADED", created_at=long_ago, updated_at=long_ago)
    session.add(job)
    session.commit()
    job.notes = "Check the wall thickness"
    session.commit()
    session.expire_all()
    job = session.get(Job, "1" * 32)
    assert job.created_at == long_ago
    assert utcnow() - job.updated_at < timedelta(minutes=1)
