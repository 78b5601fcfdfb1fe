"""Dashboard search over every status, tab counts and the poll's version, kept in step by the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import alembic_config, make_engine
from printlab.domain.statuses import InvalidTransition, Status
from printlab.models import Job, JobAnalysis
from printlab.services.jobs import locks, workflow
from printlab.services.lab import workstations
from printlab.services.lab.actors import Actor
from printlab.services.lab.catalog import load_catalog
from printlab.services.upkeep import sweeps
from printlab.services.views.dashboard import (
    JobQuery,
    dashboard_version,
    job_for_number,
    list_jobs,
    parse_query,
    status_counts,
)

from .conftest import BACKENDS
from .factories import STAFF, actor, make_job, make_staff


def counted(session) -> dict[Status, int]:  # type: ignore[no-untyped-def]
    """The truth the kept counts must equal: a GROUP BY over every job."""
    truth = dict.fromkeys(Status, 0)
    for status, number in session.execute(select(Job.status, func.count()).group_by(Job.status)):
        truth[Status(status)] = number
    return truth


def search(session, q: str, status: Status | None = None):  # type: ignore[no-untyped-def]
    return list_jobs(session, JobQuery(status=status, q=q), load_catalog(session))


def test_search_spans_every_status_and_counts_its_matches_per_tab(session, storage):
    make_job(session, storage, student_name="Maria Lopez", student_email="ml@example.edu")
    paid = make_job(
        session, storage, Status.PAIDPICKEDUP, student_name="Maria Lopez", student_email="ml2@example.edu"
    )
    make_job(session, storage, Status.REJECTED, student_name="Tom Lopez-Ruiz", student_email="t@example.edu")
    make_job(session, storage, student_name="Grace Hopper", student_email="grace@example.edu")

    everywhere = search(session, "lopez")

    assert sorted(card.status for card in everywhere.cards) == sorted(
        [Status.UPLOADED, Status.PAIDPICKEDUP, Status.REJECTED]
    )
    assert everywhere.total == 3
    assert everywhere.counts == {
        **dict.fromkeys(Status, 0),
        Status.UPLOADED: 1,
        Status.PAIDPICKEDUP: 1,
        Status.REJECTED: 1,
    }
    narrowed = search(session, "maria lopez", Status.PAIDPICKEDUP)
    assert [card.id for card in narrowed.cards] == [paid.id]
    assert narrowed.counts[Status.UPLOADED] == 1 and narrowed.total == 1
    # Two letters are below a trigram: still found, by a plain scan.
    assert search(session, "ho").counts[Status.UPLOADED] == 1
    assert search(session, "100%").total == 0  # LIKE wildcards are plain text
    assert search(session, 'say "hi"').total == 0  # FTS5 syntax is plain text too


def test_a_whole_email_address_finds_that_student_through_the_address_index(session, storage, engine):
    ada = make_job(session, storage, student_name="Ada Lovelace", student_email="ada.l@example.edu")
    later = make_job(
        session,
        storage,
        Status.COMPLETED,
        model="box.obj",
        student_name="Ada L",
        student_email="ada.l@example.edu",
    )
    make_job(session, storage, student_name="Nada Byron", student_email="nada.l@example.edu")  # contains it
    with engine.begin() as connection:  # an address typed in capitals by an earlier system's import
        connection.execute(
            text("UPDATE job SET student_email = 'Ada.L@Example.EDU' WHERE id = :id"), {"id": ada.id}
        )
    session.rollback()

    found = search(session, "ADA.L@example.EDU")

    assert sorted(card.id for card in found.cards) == sorted([ada.id, later.id])
    assert found.counts[Status.UPLOADED] == 1 and found.counts[Status.COMPLETED] == 1
    assert search(session, "a.l@example").total == 3  # part of an address is still a text search
    # The address is found through its own index, not by reading every job.
    lookup = "SELECT id FROM job WHERE lower(student_email) = 'ada.l@example.edu'"
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET enable_seqscan = off"))
        plan = " ".join(str(row) for row in connection.execute(text(explain + lookup)))
    assert "ix_job_student_email_lower" in plan


def test_the_search_form_spans_every_status_and_tab_links_narrow_it(signed_in_client, session, storage):
    make_job(
        session, storage, Status.PAIDPICKEDUP, student_name="Maria Lopez", student_email="ml@example.edu"
    )

    page = signed_in_client.get("/dashboard", query_string={"q": "Lopez", "tab": "UPLOADED"}).get_data(
        as_text=True
    )

    assert "Maria Lopez" in page
    assert '<span class="status-badge">Paid &amp; Picked Up</span>' in page  # badged with its status
    assert 'All matches <span class="count">1</span>' in page
    assert 'Paid &amp; Picked Up <span class="count">1</span>' in page
    assert 'Uploaded <span class="count">0</span>' in page
    uploaded = signed_in_client.get("/dashboard", query_string={"q": "Lopez", "status": "UPLOADED"})
    assert "No Uploaded jobs match" in uploaded.get_data(as_text=True)
    filtered = parse_query({"tab": "PRINTING", "printer": "Prusa XL"}, load_catalog(session))[0]
    assert filtered.status == Status.PRINTING  # a filter keeps the tab it was set on


def test_search_follows_every_edit_of_a_job_even_raw_sql(session, storage, engine):
    job = make_job(session, storage, student_name="Ada Lovelace", student_email="ada@example.edu")
    job.student_name = "Ada King"
    job.original_filename = "difference_engine.stl"
    session.commit()
    assert [c.id for c in search(session, "king").cards] == [job.id]
    assert search(session, "stl_binary").total == 0  # the old file name no longer matches
    assert [c.id for c in search(session, "difference").cards] == [job.id]

    with engine.begin() as connection:  # a technician's fix in psql or sqlite3
        connection.execute(text("UPDATE job SET class_number = 'ARCH 4010' WHERE id = :id"), {"id": job.id})
    session.rollback()
    assert [c.id for c in search(session, "arch 4010").cards] == [job.id]


def test_a_job_number_names_exactly_one_job(session, storage):
    job = make_job(session, storage)
    assert job_for_number(session, job.id[:6]) == job.id
    assert job_for_number(session, f"#{job.id[:8].upper()}") == job.id
    assert job_for_number(session, job.id) == job.id
    assert job_for_number(session, job.id[:5]) is None  # shorter than a job number
    assert job_for_number(session, "ffffff" if not job.id.startswith("ffffff") else "000000") is None
    assert job_for_number(session, "Jane") is None


def test_counts_stay_in_step_through_transitions_reverts_overrides_and_archival(session, storage):
    who = actor()
    assert status_counts(session) == counted(session) == dict.fromkeys(Status, 0)
    uploaded = make_job(session, storage, student_email="u@example.edu")
    printing = make_job(session, storage, Status.PRINTING, student_email="p@example.edu")
    done = make_job(session, storage, Status.COMPLETED, student_email="c@example.edu")
    rejected = make_job(session, storage, Status.REJECTED, student_email="r@example.edu")
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.PRINTING] == 1

    workflow.print_failed(session, storage, printing.id, actor=who, reason="Spaghetti")
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.READYTOPRINT] == 1
    workflow.revert(session, storage, done.id, actor=who, reason="Not finished yet")
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.COMPLETED] == 0
    workflow.approve(session, storage, uploaded.id, actor=who, weight_g=10, time_hours=1)
    assert status_counts(session) == counted(session)
    workflow.archive(session, storage, rejected.id, actor=Actor.system())
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.ARCHIVED] == 1

    with pytest.raises(InvalidTransition):  # a refused move changes nothing
        workflow.complete(session, storage, uploaded.id, actor=who)
    session.rollback()
    assert status_counts(session) == counted(session)


@pytest.fixture
def admin_actor(session):  # type: ignore[no-untyped-def]
    make_staff(session)
    workstations.add_workstation(session, "ADMIN-PC", "admin-password-1", is_admin=True)
    return Actor(STAFF, "ADMIN-PC")


def test_counts_follow_an_admin_override_and_the_archive_sweep(session, storage, admin_actor):
    done = make_job(session, storage, Status.COMPLETED, student_email="c@example.edu")
    workflow.override_status(
        session, storage, done.id, actor=admin_actor, target=Status.PENDING, reason="Re-quote"
    )
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.PENDING] == 1

    old = make_job(session, storage, Status.REJECTED, student_email="old@example.edu")
    later = utcnow() + timedelta(days=365)
    assert sweeps.archive_due(session, storage, now=later) >= 1
    session.expire_all()
    assert session.get(Job, old.id).status == Status.ARCHIVED  # type: ignore[union-attr]
    assert status_counts(session) == counted(session)


def test_the_version_changes_exactly_when_something_changed(session, storage, engine):
    job = make_job(session, storage)
    before = dashboard_version(session)
    session.rollback()

    list_jobs(session, JobQuery(), load_catalog(session))  # reading changes nothing
    search(session, "jane")
    session.rollback()
    assert dashboard_version(session) == before
    session.rollback()

    with pytest.raises(InvalidTransition):  # nor does a refused move
        workflow.complete(session, storage, job.id, actor=actor())
    session.rollback()
    assert dashboard_version(session) == before
    session.rollback()

    locks.take(session, job.id, actor=actor())  # a lock shows on the card
    after_lock = dashboard_version(session)
    session.rollback()
    assert after_lock > before

    analysis = session.get(JobAnalysis, job.id)
    if analysis is None:
        session.add(JobAnalysis(job_id=job.id, state="PENDING"))
    else:
        analysis.state = "FAILED"  # "analysis failed" shows on the card
    session.commit()
    after_analysis = dashboard_version(session)
    session.rollback()
    assert after_analysis > after_lock

    with engine.connect() as connection:  # a rolled-back change leaves the version alone
        transaction = connection.begin()
        connection.execute(text("UPDATE job SET notes = 'x' WHERE id = :id"), {"id": job.id})
        transaction.rollback()
    assert dashboard_version(session) == after_analysis


def test_cards_at_the_printer_count_time_in_status_and_show_the_students_file_name(
    signed_in_client, session, storage
):
    long_ago = utcnow() - timedelta(days=2)
    make_job(session, storage, Status.PRINTING, student_name="Pat Printing", now=long_ago)

    card = search(session, "pat printing").cards[0]
    assert card.status == Status.PRINTING
    assert card.age == "0m" and card.age_band == "fresh"  # entered Printing just now, submitted 2 days ago
    assert card.file_name == "stl_binary_20mm_xyz_cube.stl"

    page = signed_in_client.get("/dashboard?status=PRINTING").get_data(as_text=True)
    assert '<span class="card-printer">Prusa MK4S</span>' in page
    assert "Printing for 0m" in page
    assert "stl_binary_20mm_xyz_cube.stl" in page
    assert "(under a day)" in page  # the age colour in words
    assert 'class="age-legend"' in page and "over 3 days" in page  # and its legend

    uploaded = make_job(
        session,
        storage,
        student_name="Olive Old",
        student_email="o@example.edu",
        now=utcnow() - timedelta(hours=30),
    )
    assert uploaded is not None
    page = signed_in_client.get("/dashboard?status=UPLOADED").get_data(as_text=True)
    assert "(over a day)" in page and 'class="card age-aging"' in page


def test_migration_fills_search_counts_and_status_times_for_existing_jobs(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0007")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            for job_id, status, name in (
                ("a1b2c3d4", "PRINTING", "Ana Existing"),
                ("b1b2c3d4", "ARCHIVED", "Bo Existing"),
            ):
                connection.execute(
                    text(
                        "INSERT INTO job (id, status, student_name, student_email, is_confirmation_expired, "
                        "created_at, updated_at) VALUES (:id, :status, :name, 'x@example.edu', :no, "
                        "'2026-01-01 09:00:00', '2026-01-05 09:00:00')"
                    ),
                    {"id": job_id, "status": status, "name": name, "no": False},
                )
            connection.execute(
                text(
                    "INSERT INTO event (job_id, timestamp, event_type, details) VALUES "
                    "('a1b2c3d4', '2026-01-03 10:00:00', 'StaffStartedPrinting', :details)"
                ),
                {"details": '{"from": "READYTOPRINT", "to": "PRINTING"}'},
            )
        engine.dispose()
        command.upgrade(config, "head")
        engine.dispose()
        with engine.connect() as connection:
            since = dict(connection.execute(text("SELECT job_id, status_since FROM job_search")).all())
            counts = dict(connection.execute(text("SELECT status, jobs FROM job_status_count")).all())
        assert str(since["a1b2c3d4"]).startswith("2026-01-03 10:00")  # from the audit trail
        assert str(since["b1b2c3d4"]).startswith("2026-01-05 09:00")  # else its last change
        assert counts["PRINTING"] == 1 and counts["ARCHIVED"] == 1 and counts["UPLOADED"] == 0
        with Session(engine) as session:
            assert [c.id for c in search(session, "existing").cards] == ["b1b2c3d4", "a1b2c3d4"]
    finally:
        engine.dispose()


# SQLite has one writer at a time: the question is PostgreSQL's alone.
@pytest.mark.parametrize(
    "backend", [pytest.param(b, marks=pytest.mark.postgres_only) for b in BACKENDS if b == "postgresql"]
)
def test_postgresql_holds_the_count_rows_only_while_committing(backend, session, storage, engine):
    """A job change waits for no other open transaction's counts: they are written at COMMIT."""
    first = make_job(session, storage, Status.PENDING, student_email="one@example.edu")
    second = make_job(session, storage, Status.READYTOPRINT, student_email="two@example.edu")
    session.rollback()
    with engine.connect() as slow, engine.connect() as quick:
        slow.begin()
        slow.execute(text("UPDATE job SET status = 'READYTOPRINT' WHERE id = :id"), {"id": first.id})
        quick.begin()
        quick.execute(text("SET LOCAL lock_timeout = '3s'"))  # fails instead of hanging if it waited
        quick.execute(text("UPDATE job SET status = 'PENDING' WHERE id = :id"), {"id": second.id})
        quick.commit()  # the opposite move commits while the first transaction is still open
        slow.commit()
    assert status_counts(session) == counted(session)
    assert status_counts(session)[Status.PENDING] == 1 and status_counts(session)[Status.READYTOPRINT] == 1
