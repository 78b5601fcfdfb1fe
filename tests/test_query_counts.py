"""Guard: the dashboard, its refresh poll, the jobs API and the job page send as many SQL statements with 40 jobs as
with 3; the printer board as many with 20 printers and 200 queued jobs as with one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.catalog import Printer
from printlab.domain.statuses import Status
from printlab.models import Job, LabSetting
from printlab.services.files.storage import Storage
from printlab.services.lab.catalog import encode_setting
from printlab.services.lab.workstations import add_workstation

from .factories import make_job
from .fleet_factories import add_fleet

WORKSTATION = "LAB-PC-9"
PASSWORD = "query-count-password"
PAGES = (
    "/dashboard",
    "/dashboard/cards",
    "/api/v1/jobs",
    "/dashboard?status=PAIDPICKEDUP",
    "/dashboard?status=PRINTING",
    "/dashboard/cards?status=PRINTING",
    "/jobs/{job}",
)
#: The 37 jobs added to the first 3: enough Uploaded ones to fill the first page (24 cards) and more.
MORE = (
    [Status.UPLOADED] * 30
    + [Status.PENDING, Status.READYTOPRINT, Status.PRINTING]
    + [Status.PAIDPICKEDUP] * 2
    + [Status.REJECTED, Status.ARCHIVED]
)


@contextmanager
def counting(app: Flask) -> Iterator[list[str]]:
    """Every statement the app's engine sends inside the block (BEGIN included, on SQLite)."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, _many):  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = app.extensions["printlab"].engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sign_in(app: Flask, client: FlaskClient) -> None:
    with app.extensions["printlab"].sessions() as session:
        add_workstation(session, WORKSTATION, PASSWORD)
    form = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, "the sign-in form has no CSRF token"
    response = client.post(
        "/login", data={"csrf_token": token.group(1), "workstation": WORKSTATION, "password": PASSWORD}
    )
    assert response.status_code == 303


def statements_per_page(app: Flask, client: FlaskClient, job_id: str) -> dict[str, int]:
    counts = {}
    for page in PAGES:
        path = page.format(job=job_id)
        client.get(path)  # the first request of a page warms caches (templates, the catalog)
        with counting(app) as statements:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        counts[page] = len(statements)
    return counts


def add_jobs(session: Session, storage: Storage, statuses: list[Status], start: int) -> list[str]:
    return [
        make_job(
            session,
            storage,
            status,
            student_name=f"Student {chr(65 + n % 26)}{n}",
            student_email=f"student{n}@example.edu",
        ).id
        for n, status in enumerate(statuses, start)
    ]


def test_statements_per_page_do_not_grow_with_the_number_of_jobs(app, client, session, storage):
    sign_in(app, client)
    first = add_jobs(session, storage, [Status.UPLOADED, Status.UPLOADED, Status.PAIDPICKEDUP], 0)
    shown = first[2]  # the job page looked at: it has a full history and a payment
    with_3 = statements_per_page(app, client, shown)
    assert client.get("/api/v1/jobs").get_json()["total"] == 2

    add_jobs(session, storage, MORE, 3)
    with_40 = statements_per_page(app, client, shown)
    api = client.get("/api/v1/jobs").get_json()
    assert api["total"] == 32 and len(api["jobs"]) == 24 and api["next"]  # a full first page, and more

    assert min(with_3.values()) > 0, "the listener saw no statements: the comparison would be vacuous"
    assert with_40 == with_3


def test_the_next_page_costs_what_the_first_does(app, client, session, storage):
    sign_in(app, client)
    add_jobs(session, storage, [Status.UPLOADED] * 27, 0)
    first = client.get("/api/v1/jobs").get_json()
    assert len(first["jobs"]) == 24 and first["next"]
    with counting(app) as on_first:
        client.get("/api/v1/jobs")
    with counting(app) as on_next:
        following = client.get("/api/v1/jobs", query_string={"after": first["next"]}).get_json()
    assert len(following["jobs"]) == 3 and following["previous"]
    assert len(on_next) == len(on_first)


def test_the_printer_board_costs_the_same_for_20_printers_and_200_queued_jobs(app, client, session, storage):
    """The board, its refresh and an unchanged refresh (304): the same statements with one queued job as
    with 20 printers (records, polls, ten printing), 200 queued jobs and half of them placed."""
    sign_in(app, client)
    template = make_job(session, storage, Status.READYTOPRINT)
    printers = tuple(Printer(f"Printer {n:02}", "Filament", (250, 210, 220)) for n in range(1, 21))
    session.merge(LabSetting(key="printers", value=encode_setting("printers", printers), updated_at=utcnow()))
    session.execute(update(Job).where(Job.id == template.id).values(printer="Printer 01"))
    session.commit()

    def statements() -> list[int]:
        counts = []
        etag = client.get("/printers/lanes").headers["ETag"]  # warms caches
        for path, headers, status in (
            ("/printers", {}, 200),
            ("/printers/lanes", {}, 200),
            ("/printers/lanes", {"If-None-Match": etag}, 304),
        ):
            with counting(app) as seen:
                response = client.get(path, headers=headers)
            assert response.status_code == status, (path, response.status_code)
            counts.append(len(seen))
        return counts

    small = statements()
    add_fleet(session, session.get(Job, template.id), printers, 200)
    big = statements()
    page = client.get("/printers").get_data(as_text=True)
    assert page.count('class="queued"') == 191 and page.count("<progress") == 10
    assert min(small) > 0 and big == small
