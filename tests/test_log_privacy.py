"""A database error is logged for the operator without the personal data that was being written."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy.exc import DBAPIError

from printlab.clock import utcnow
from printlab.db import make_engine, session_factory, write_transaction
from printlab.logs import JsonFormatter, redact
from printlab.models import Job
from printlab.web.context import db

PERSONAL = {
    "student_name": "Zelda Quackenbush",
    "student_email": "zelda.quackenbush@example.edu",
    "class_number": "SECRET-CLASS-77",
    "notes": "paid with card ending 4242",
}


def _bad_job(**extra: object) -> Job:
    """A job the database refuses (its status breaks the CHECK constraint), full of personal data."""
    return Job(id="f" * 32, status="NOT-A-STATUS", created_at=utcnow(), **PERSONAL, **extra)  # type: ignore[arg-type]


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """What the server log receives: each record as the JSON formatter writes it."""
    formatter = JsonFormatter()
    return "\n".join(formatter.format(record) for record in caplog.records)


def test_engine_hides_bound_parameters_in_its_errors(database_url):
    engine = make_engine(database_url)
    try:
        with (
            session_factory(engine)() as session,
            pytest.raises(DBAPIError) as caught,
            write_transaction(session),
        ):
            session.add(_bad_job())
    finally:
        engine.dispose()
    # The bound values are hidden; PostgreSQL's own DETAIL line quotes the row, and the log drops it.
    text = redact(str(caught.value))
    assert "parameters hidden" in text
    for value in PERSONAL.values():
        assert value not in text


def test_a_database_error_in_a_request_logs_no_personal_data(app, caplog):
    def insert_bad_job():  # type: ignore[no-untyped-def]
        with write_transaction(db()):
            db().add(_bad_job())
        return "stored"

    app.add_url_rule("/test-only/bad-insert", "bad_insert", insert_bad_job)
    with caplog.at_level(logging.INFO):
        response = app.test_client().get("/test-only/bad-insert")
    assert response.status_code == 500
    logged = _logged(caplog)
    assert "unhandled error on GET /test-only/bad-insert" in logged
    assert "IntegrityError" in logged  # the operator still learns what failed, and where
    for value in PERSONAL.values():
        assert value not in logged


def test_nul_sent_to_the_database_logs_no_personal_data(app, caplog, backend):
    """PostgreSQL refuses NUL in text; the error must not carry the row along into the log."""

    def insert_nul():  # type: ignore[no-untyped-def]
        with write_transaction(db()):
            job = _bad_job()
            job.status = "UPLOADED"
            job.display_name = "bad\x00name"
            db().add(job)
        return "stored"

    app.add_url_rule("/test-only/nul", "nul_insert", insert_nul)
    with caplog.at_level(logging.INFO):
        response = app.test_client().get("/test-only/nul")
    if backend == "sqlite":  # SQLite stores NUL; the app's own input rules keep it out (test_text_input)
        assert response.status_code == 200
        return
    assert response.status_code == 500
    logged = _logged(caplog)
    for value in PERSONAL.values():
        assert value not in logged
