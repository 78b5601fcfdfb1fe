"""The audit trail is append-only in the database itself, and events carry no student personal data."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from printlab.domain.statuses import Status
from printlab.models import Event

from .factories import make_job

JOB_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def event_id(engine) -> int:  # type: ignore[no-untyped-def]
    """One job and one event, written with raw SQL (no ORM) and committed."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job (id, status, is_confirmation_expired) VALUES (:id, 'UPLOADED', :f)"),
            {"id": JOB_ID, "f": False},
        )
        connection.execute(
            text(
                "INSERT INTO event (job_id, event_type, triggered_by, workstation_id) "
                "VALUES (:id, 'JobCreated', 'Alex Rivera', 'LAB-PC-1')"
            ),
            {"id": JOB_ID},
        )
        return connection.execute(
            text("SELECT id FROM event WHERE job_id = :id"), {"id": JOB_ID}
        ).scalar_one()


def _event_rows(engine) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, job_id, event_type, triggered_by FROM event ORDER BY id"))
        return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE event SET event_type = 'StaffApproved' WHERE id = :id",
        "UPDATE event SET triggered_by = 'Someone Else'",
        "DELETE FROM event WHERE id = :id",
        "DELETE FROM event",
    ],
)
def test_update_and_delete_of_events_are_refused(engine, event_id, statement):
    before = _event_rows(engine)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement), {"id": event_id})
    assert _event_rows(engine) == before == [(event_id, JOB_ID, "JobCreated", "Alex Rivera")]


def test_truncate_of_events_is_refused(engine, event_id, backend):
    # SQLite has no TRUNCATE: its equivalent is an unqualified DELETE (the "truncate optimisation").
    statement = "TRUNCATE TABLE event" if backend == "postgresql" else "DELETE FROM event"
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert [row[0] for row in _event_rows(engine)] == [event_id]


def test_insert_of_events_works(engine, event_id):
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO event (job_id, event_type, details) VALUES (:id, 'NotesUpdated', :details)"),
            {"id": JOB_ID, "details": json.dumps({"from": "UPLOADED", "to": "UPLOADED"})},
        )
    assert [row[2] for row in _event_rows(engine)] == ["JobCreated", "NotesUpdated"]


def test_job_rows_remain_updatable_and_deletable(engine, event_id):
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE job SET status = 'PENDING', notes = 'ok' WHERE id = :id"), {"id": JOB_ID}
        )
        connection.execute(
            text("INSERT INTO job (id, status, is_confirmation_expired) VALUES ('spare', 'UPLOADED', :f)"),
            {"f": False},
        )
        connection.execute(text("DELETE FROM job WHERE id = 'spare'"))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, status, notes FROM job")).all()
    assert [tuple(row) for row in rows] == [(JOB_ID, "PENDING", "ok")]


def _personal_fragments(name: str, email: str) -> set[str]:
    """The ways a student's identity could leak into an event: name, its parts, the file-name form, email."""
    parts = name.split()
    return {name, "".join(parts), *parts, email, email.split("@")[0]}


@pytest.mark.parametrize("status", [Status.PAIDPICKEDUP, Status.ARCHIVED])
def test_events_hold_no_student_personal_data(session, storage, status):
    student = {"student_name": "Imogen Quatermass", "student_email": "iq.student@example.edu"}
    job = make_job(session, storage, status, **student)
    assert (job.student_name, job.student_email) == (student["student_name"], student["student_email"])
    events = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id)).all()
    assert len(events) >= 2
    fragments = _personal_fragments(job.student_name, job.student_email)
    for event in events:
        serialised = json.dumps(event.details, ensure_ascii=False).lower()
        leaked = sorted(f for f in fragments if f.lower() in serialised)
        assert leaked == [], f"{event.event_type} details carry {leaked}: {serialised}"
        assert event.triggered_by != job.student_name
