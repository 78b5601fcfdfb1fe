"""Staff pages through the Flask test client: dashboard, jobs API, job page, files, notes, locks and every action."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Event, Job, OutboxMessage, Payment
from printlab.services import mail
from printlab.services.jobs import locks, quote_links, workflow
from printlab.services.lab import staff as staff_service
from printlab.services.lab import workstations
from printlab.web.jobs.actions import ACTIONS

from .factories import STAFF, actor, make_job, make_staff, quote_token

WORKSTATION, PASSWORD = "LAB-PC-1", "a-long-password-1"
OTHER = "Sam Chen"


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def staffed(session):  # type: ignore[no-untyped-def]
    """Two active staff members and a lab workstation to sign in with."""
    make_staff(session)
    make_staff(session, OTHER)
    workstations.add_workstation(session, WORKSTATION, PASSWORD)
    return session


@pytest.fixture
def staff_client(app, staffed):  # type: ignore[no-untyped-def]
    """A test client signed in as LAB-PC-1 through the real sign-in form (CSRF on)."""
    client = app.test_client()
    response = client.post(
        "/login",
        data={"csrf_token": token(client, "/login"), "workstation": WORKSTATION, "password": PASSWORD},
    )
    assert response.status_code == 303
    return client


def token(client, url: str = "/dashboard") -> str:  # type: ignore[no-untyped-def]
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, f"no CSRF token on {url}"
    return found.group(1)


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.get_data(as_text=True))


def fresh(session) -> None:  # type: ignore[no-untyped-def]
    """Read what the app's requests committed."""
    session.rollback()
    session.expire_all()


def card_titles(page: str) -> list[str]:
    """Student names on the dashboard's cards, in order."""
    return [t.strip() for t in re.findall(r'<span class="card-title">\s*([^<\n]+)', page)]


def tab_counts(page: str) -> dict[str, int]:
    return {
        label.strip(): int(n)
        for label, n in re.findall(
            r'<a href="/dashboard[^"]*"[^>]*>\s*([^<]+?)\s*<span class="count">(\d+)</span>', page
        )
    }


def hidden_fields(page: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in found}


def notes_version(client, job_id: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The job's status and version as its page's notes form sends them back."""
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    form = page[page.index('id="notes-form"') :]
    return dict(re.findall(r'<input type="hidden" name="(expected_\w+)" value="([^"]*)"', form)[:2])


def act(client, job_id: str, action: str, **fields: Any):  # type: ignore[no-untyped-def]
    """Open the action's dialog and send it as the page would: its hidden fields plus `fields`."""
    page = client.get(f"/jobs/{job_id}/act/{action}").get_data(as_text=True)
    data: dict[str, Any] = {**hidden_fields(page), **fields}
    return client.post(f"/jobs/{job_id}/act/{action}", data={k: v for k, v in data.items() if v is not None})


def field_errors(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(re.findall(r'<p class="field-error" id="(\w+)-error">([^<]*)</p>', text(response)))


def simple_id(job: Job) -> str:
    return (job.display_name or "").rsplit("_", 1)[-1]


# -- sign-in -----------------------------------------------------------------------------------


def test_staff_pages_need_a_signed_in_workstation(app, session, storage):
    job = make_job(session, storage)
    client = app.test_client()
    for url in (
        "/dashboard",
        "/dashboard/cards",
        f"/jobs/{job.id}",
        f"/jobs/{job.id}/act/approve",
        f"/jobs/{job.id}/model",
        f"/jobs/{job.id}/files/{job.file_path.rsplit('/', 1)[-1]}",
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/login?next=")
    response = client.get("/dashboard?status=PENDING")
    assert response.headers["Location"] == "/login?next=/dashboard?status%3DPENDING"


def test_jobs_api_answers_401_json_when_signed_out(client, session, storage):
    make_job(session, storage)
    response = client.get("/api/v1/jobs")
    assert response.status_code == 401
    assert response.is_json
    assert response.mimetype == "application/problem+json"
    assert "sign in on a lab workstation" in response.get_json()["detail"]
    assert client.get("/api/v1/price?weight_g=10&method=Filament").status_code == 401


def test_sign_in_shows_the_workstation_and_sign_out_ends_it(staff_client):
    page = text(staff_client.get("/dashboard"))
    assert f"<strong>{WORKSTATION}</strong>" in page
    assert "Sign out" in page
    response = staff_client.post("/logout", data={"csrf_token": token(staff_client)})
    assert response.status_code == 303
    assert staff_client.get("/dashboard").status_code == 302


def test_wrong_password_is_refused_with_a_message(app, staffed):
    client = app.test_client()
    response = client.post(
        "/login", data={"csrf_token": token(client, "/login"), "workstation": WORKSTATION, "password": "nope"}
    )
    assert response.status_code == 401
    assert "That workstation name and password don't match." in text(response)
    assert client.get("/dashboard").status_code == 302


# -- dashboard ---------------------------------------------------------------------------------


def test_tabs_show_the_count_of_every_status(staff_client, session, storage):
    make_job(session, storage, student_name="Ada One", student_email="a1@example.edu")
    make_job(session, storage, student_name="Ada Two", student_email="a2@example.edu")
    make_job(session, storage, Status.PENDING, student_name="Bo Pending", student_email="b@example.edu")
    make_job(session, storage, Status.REJECTED, student_name="Cy Rejected", student_email="c@example.edu")

    page = text(staff_client.get("/dashboard"))

    assert tab_counts(page) == {
        "Uploaded": 2,
        "Pending": 1,
        "Ready to Print": 0,
        "Printing": 0,
        "Completed": 0,
        "Paid & Picked Up": 0,
        "Rejected": 1,
        "Archived": 0,
        "Waiting for the student": 0,  # the "needs changes" filter's count, beside the tabs
    }
    assert 'aria-current="page" class="active">\n      Uploaded' in page
    assert sorted(card_titles(page)) == ["Ada One", "Ada Two"]
    pending = text(staff_client.get("/dashboard?status=PENDING"))
    assert card_titles(pending) == ["Bo Pending"]
    assert "$4.20" in pending  # the quoted cost is on the card


def test_work_queue_lists_oldest_first_with_age_and_new_badge(staff_client, session, storage):
    now = utcnow()
    make_job(session, storage, student_name="Newest Student", student_email="n@example.edu", now=now)
    make_job(
        session,
        storage,
        student_name="Oldest Student",
        student_email="o@example.edu",
        now=now - timedelta(hours=80),
    )
    make_job(
        session,
        storage,
        student_name="Middle Student",
        student_email="m@example.edu",
        now=now - timedelta(hours=30),
    )
    page = text(staff_client.get("/dashboard"))
    assert card_titles(page) == ["Oldest Student", "Middle Student", "Newest Student"]
    assert "oldest first" in page
    assert 'class="card age-overdue"' in page and 'class="card age-aging"' in page
    assert 'class="card age-fresh"' in page
    assert page.count('<span class="badge new">NEW</span>') == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("ada", ["Ada Lovelace"], id="name, any case"),
        pytest.param("grace@navy", ["Grace Hopper"], id="email"),
        pytest.param("ARCH 4010", ["Grace Hopper"], id="class"),
        pytest.param("lovelace_filament", ["Ada Lovelace"], id="stored file name"),
        pytest.param("bridge", ["Grace Hopper"], id="original file name"),
        pytest.param("nobody", [], id="no match"),
        pytest.param("100%", [], id="LIKE wildcards are plain text"),
    ],
)
def test_search_by_name_email_class_and_file_name(staff_client, session, storage, query, expected):
    make_job(
        session, storage, student_name="Ada Lovelace", student_email="ada@example.edu", class_number="ME 2110"
    )
    grace = make_job(
        session,
        storage,
        student_name="Grace Hopper",
        student_email="grace@navy.example.edu",
        class_number="ARCH 4010",
    )
    workflow_rename = session.get(Job, grace.id)
    assert workflow_rename is not None
    workflow_rename.original_filename = "bridge_v3.stl"
    session.commit()

    page = text(staff_client.get("/dashboard", query_string={"q": query}))

    assert card_titles(page) == expected
    assert f'value="{query}"' in page  # the search stays in the box


def test_a_job_number_in_the_search_box_opens_that_job(staff_client, session, storage):
    first = make_job(session, storage, student_name="Ada Lovelace", student_email="ada@example.edu")
    make_job(session, storage, student_name="Grace Hopper", student_email="grace@example.edu")
    for typed in (simple_id(first), f"#{simple_id(first).upper()}", first.id):
        opened = staff_client.get("/dashboard", query_string={"q": typed})  # a job number opens the job
        assert opened.status_code == 303, typed
        assert opened.headers["Location"] == f"/jobs/{first.id}"
    page = text(staff_client.get("/dashboard", query_string={"q": first.id[:4]}))  # too short for a number
    assert "Ada Lovelace" in card_titles(page)


def test_filters_by_printer_method_discipline_and_dates(staff_client, session, storage):
    now = utcnow()
    make_job(
        session, storage, student_name="Fil Mk4", student_email="f1@example.edu", now=now - timedelta(days=10)
    )
    make_job(
        session,
        storage,
        student_name="Fil Xl",
        student_email="f2@example.edu",
        printer="Prusa XL",
        discipline="Art",
        now=now - timedelta(days=3),
    )
    make_job(
        session,
        storage,
        student_name="Res Form",
        student_email="r@example.edu",
        print_method="Resin",
        color="Black",
        printer="Formlabs Form 3",
        now=now,
    )

    def names(**args: str) -> list[str]:
        return sorted(card_titles(text(staff_client.get("/dashboard", query_string=args))))

    assert names(printer="Prusa XL") == ["Fil Xl"]
    assert names(method="Resin") == ["Res Form"]
    assert names(method="Filament") == ["Fil Mk4", "Fil Xl"]
    assert names(discipline="Art") == ["Fil Xl"]
    week_ago = (now - timedelta(days=7)).date().isoformat()
    assert names(**{"from": week_ago}) == ["Fil Xl", "Res Form"]
    assert names(to=(now - timedelta(days=5)).date().isoformat()) == ["Fil Mk4"]
    assert names(method="Filament", **{"from": week_ago}) == ["Fil Xl"]

    unknown = text(staff_client.get("/dashboard", query_string={"printer": "MakerBot", "from": "yesterday"}))
    assert "Unknown printer." in unknown
    assert "Use a date like 2026-09-01." in unknown
    assert len(card_titles(unknown)) == 3  # a bad filter is dropped, not a crash


def test_paging_next_and_previous(staff_client, session, storage, monkeypatch):
    monkeypatch.setattr("printlab.services.views.dashboard.PAGE_SIZE", 2)
    now = utcnow()
    for number in range(5):
        make_job(
            session,
            storage,
            student_name=f"Student {'ABCDE'[number]}",
            student_email=f"s{number}@example.edu",
            now=now - timedelta(hours=10 - number),
        )

    def follow(page: str, label: str) -> str:
        found = re.search(rf'<a href="([^"]+)">{label}</a>', page)
        assert found, f"no {label} link"
        return text(staff_client.get(html.unescape(found.group(1))))

    first = text(staff_client.get("/dashboard"))
    assert card_titles(first) == ["Student A", "Student B"]
    assert "← Previous" not in first
    second = follow(first, "Next →")
    assert card_titles(second) == ["Student C", "Student D"]
    third = follow(second, "Next →")
    assert card_titles(third) == ["Student E"]
    assert "Next →" not in third
    back = follow(third, "← Previous")
    assert card_titles(back) == ["Student C", "Student D"]
    start = follow(back, "← Previous")
    assert card_titles(start) == ["Student A", "Student B"]
    assert "5 Uploaded jobs" in start


def test_card_refresh_answers_304_until_something_changes(staff_client, session, storage):
    job = make_job(session, storage)
    first = staff_client.get("/dashboard/cards")
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert first.headers["X-Uploaded-Count"] == "1"
    assert "Jane Doe" in text(first)

    unchanged = staff_client.get("/dashboard/cards", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.get_data() == b""

    locks.take(session, job.id, actor=actor(OTHER))  # a lock shows on the card
    locked = staff_client.get("/dashboard/cards", headers={"If-None-Match": etag})
    assert locked.status_code == 200
    assert f"locked by {OTHER}" in text(locked)
    assert locked.headers["ETag"] != etag

    make_job(session, storage, student_name="Late Arrival", student_email="late@example.edu")
    arrived = staff_client.get("/dashboard/cards", headers={"If-None-Match": locked.headers["ETag"]})
    assert arrived.status_code == 200
    assert arrived.headers["X-Uploaded-Count"] == "2"
    assert "Late Arrival" in text(arrived)


def test_jobs_api_returns_the_list_as_json(staff_client, session, storage):
    make_job(session, storage, student_name="Ada Lovelace", student_email="ada@example.edu")
    pending = make_job(
        session, storage, Status.PENDING, student_name="Grace Hopper", student_email="g@example.edu"
    )

    body = staff_client.get("/api/v1/jobs", query_string={"status": "PENDING"}).get_json()

    assert set(body) == {"status", "total", "counts", "filters", "jobs", "next", "previous", "errors"}
    assert body["status"] == "PENDING"
    assert body["total"] == 1
    assert body["counts"]["UPLOADED"] == 1 and body["counts"]["PENDING"] == 1
    assert body["filters"] == {"status": "PENDING"}
    assert body["next"] is None and body["previous"] is None
    assert body["errors"] == {}
    (card,) = body["jobs"]
    assert card["id"] == pending.id
    assert card["simple_id"] == simple_id(pending)
    assert card["student_name"] == "Grace Hopper"
    assert card["cost_usd"] == "4.20"
    assert card["created_at"].endswith("Z")
    assert set(card) >= {
        "file_name",
        "printer",
        "color",
        "method",
        "discipline",
        "age",
        "age_band",
        "has_notes",
        "locked_by",
        "quote_expired",
        "is_new",
        "analysis_state",
    }
    filtered = staff_client.get("/api/v1/jobs", query_string={"q": "ada", "method": "Laser"}).get_json()
    assert [j["student_name"] for j in filtered["jobs"]] == ["Ada Lovelace"]
    assert filtered["errors"] == {"method": "Unknown print method."}


def test_jobs_api_pages_with_next_cursor(staff_client, session, storage):
    now = utcnow()
    for number in range(3):
        make_job(
            session, storage, student_email=f"s{number}@example.edu", now=now - timedelta(minutes=10 - number)
        )
    first = staff_client.get("/api/v1/jobs", query_string={"per_page": 2}).get_json()
    assert len(first["jobs"]) == 2 and first["total"] == 3
    second = staff_client.get("/api/v1/jobs", query_string={"per_page": 2, "after": first["next"]}).get_json()
    assert len(second["jobs"]) == 1
    assert second["next"] is None
    assert {j["id"] for j in first["jobs"]}.isdisjoint({j["id"] for j in second["jobs"]})


def test_live_price_uses_the_lab_rules(staff_client):
    def price(weight: str, method: str = "Filament"):  # type: ignore[no-untyped-def]
        return staff_client.get("/api/v1/price", query_string={"weight_g": weight, "method": method})

    assert price("42").get_json() == {"cost_usd": "4.20", "display": "$4.20", "minimum_applied": False}
    assert price("42", "Resin").get_json()["display"] == "$8.40"
    assert price("5").get_json() == {"cost_usd": "3.00", "display": "$3.00", "minimum_applied": True}
    bad = price("lots")
    assert bad.status_code == 422 and bad.get_json()["detail"]


def test_student_markup_is_escaped_on_staff_pages(staff_client, session, storage):
    job = make_job(session, storage, student_name="<script>alert(1)</script> Eve", class_number="<b>x</b>")
    for url in ("/dashboard", f"/jobs/{job.id}", f"/jobs/{job.id}/act/approve"):
        page = staff_client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Eve" in page, url
    assert "<b>x</b>" not in staff_client.get(f"/jobs/{job.id}").get_data(as_text=True)


# -- job page ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(Status))
def test_job_page_renders_every_status_with_only_its_actions(staff_client, session, storage, status):
    job = make_job(session, storage, status)
    response = staff_client.get(f"/jobs/{job.id}")
    page = text(response)

    assert response.status_code == 200
    assert f'<span class="status-pill status-{status.value.lower()}">{status.label}</span>' in page
    assert simple_id(job) in page
    allowed = {spec.label for spec in ACTIONS.values() if status in spec.statuses}
    shown = set(re.findall(r'<a [^>]*data-action-dialog href="/jobs/[^"]+/act/\w+">([^<]+)</a>', page))
    assert shown == allowed
    # Undoing a step waits behind "More": a paid job's page is not one red button.
    more = (
        page.split('<details class="more-actions">', 1)[1].split("</details>", 1)[0]
        if "more-actions" in page
        else ""
    )
    assert ("Revert (mistake)" in more) == (status in (Status.COMPLETED, Status.PAIDPICKEDUP))
    assert "Submitted by the student" in page and "JobCreated" not in page  # the History
    if status == Status.PAIDPICKEDUP:
        assert "collected by Jane Doe" in page
    if status == Status.REJECTED:
        assert "Rejected because" in page and "Walls too thin" in page


def test_unknown_job_and_unknown_action_are_404(staff_client, session, storage):
    job = make_job(session, storage)
    assert staff_client.get("/jobs/0123456789abcdef0123456789abcdef").status_code == 404
    assert staff_client.get(f"/jobs/{job.id}/act/teleport").status_code == 404


def test_job_page_shows_the_timeline_with_staff_and_workstation(staff_client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    page = text(staff_client.get(f"/jobs/{job.id}"))
    history = page.split('class="timeline"')[1].split("</ol>")[0]
    for sentence in (
        "Submitted by the student",
        f"Approved by {STAFF} — quote $4.20 emailed",
        "Confirmed by the student",
        f"Moved from Ready to Print to Printing by {STAFF} — on the Prusa MK4S",
    ):
        assert sentence in history
    assert history.count("Approved by") == 1 and "Moved from Uploaded to Pending" not in history  # one line
    assert "at LAB-PC-1" in history
    for code in ("JobCreated", "StaffApproved", "StudentConfirmed", "StatusChanged", "PENDING", "→"):
        assert code not in history
    assert re.search(r"\d{2} \w{3} \d{4} \d{2}:\d{2} C[SD]T</time>", history)  # the lab's time zone
    files = page.split('<table class="files">', 1)[1].split("</table>", 1)[0]
    assert re.search(
        r"<td data-label=\"Changed\">\d{2} \w{3} \d{4} \d{2}:\d{2} C[SD]T</td>", files
    )  # "Changed", the lab's zone too


def test_downloads_only_the_jobs_own_files(staff_client, session, storage):
    job = make_job(session, storage)
    other = make_job(session, storage, student_name="Other Student", student_email="o@example.edu")
    own = job.file_path.rsplit("/", 1)[-1]
    theirs = other.file_path.rsplit("/", 1)[-1]

    response = staff_client.get(f"/jobs/{job.id}/files/{own}")
    assert response.status_code == 200
    assert response.get_data() == storage.resolve(job.file_path).read_bytes()
    assert "attachment" in response.headers["Content-Disposition"]
    response.close()  # send_file's open file

    for name in (theirs, "..%2F..%2Fetc%2Fpasswd", "..", "...", f"..%2FUploaded%2F{theirs}", "nothing.stl"):
        assert staff_client.get(f"/jobs/{job.id}/files/{name}").status_code == 404, name
    assert staff_client.get(f"/jobs/{other.id}/files/{own}").status_code == 404


def test_notes_autosave_is_attributed_and_keeps_the_version(staff_client, session, storage):
    job = make_job(session, storage)
    version = job.updated_at

    response = staff_client.post(
        f"/jobs/{job.id}/notes",
        data={
            "csrf_token": token(staff_client),
            **notes_version(staff_client, job.id),
            "acting_as": STAFF,
            "notes": "Needs supports on the arch.",
        },
        headers={"Accept": "application/json"},
    )

    assert response.status_code == 200
    assert response.get_json() == {"ok": True, "message": "Notes saved."}
    fresh(session)
    saved = session.get(Job, job.id)
    assert saved is not None
    assert saved.notes == "Needs supports on the arch."
    assert saved.updated_at == version  # an open dialog elsewhere doesn't go stale
    event = session.scalars(select(Event).where(Event.job_id == job.id).order_by(Event.id.desc())).first()
    assert event is not None
    assert (event.event_type, event.triggered_by, event.workstation_id) == (
        "NotesUpdated",
        STAFF,
        WORKSTATION,
    )
    assert "notes" in text(staff_client.get("/dashboard"))  # the card's notes indicator


def test_notes_need_a_name(staff_client, session, storage):
    job = make_job(session, storage)
    response = staff_client.post(
        f"/jobs/{job.id}/notes",
        data={"csrf_token": token(staff_client), **notes_version(staff_client, job.id), "notes": "x"},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422
    assert response.get_json() == {"ok": False, "message": "Choose who is acting."}
    fresh(session)
    assert session.get(Job, job.id).notes is None  # type: ignore[union-attr]


def test_notes_post_without_csrf_is_refused(staff_client, session, storage):
    job = make_job(session, storage)
    response = staff_client.post(f"/jobs/{job.id}/notes", data={"acting_as": STAFF, "notes": "x"})
    assert response.status_code == 400
    fresh(session)
    assert session.get(Job, job.id).notes is None  # type: ignore[union-attr]


def test_mark_reviewed_clears_new_and_mark_new_brings_it_back(staff_client, session, storage):
    job = make_job(session, storage)
    assert '<span class="badge new">NEW</span>' in text(staff_client.get("/dashboard"))

    response = staff_client.post(
        f"/jobs/{job.id}/reviewed",
        data={"csrf_token": token(staff_client), "acting_as": STAFF, "reviewed": "1"},
    )
    assert response.status_code == 303
    page = text(staff_client.get(f"/jobs/{job.id}"))
    assert "Marked as reviewed." in page
    assert '<span class="badge new">NEW</span>' not in page
    assert "Mark as new" in page
    assert '<span class="badge new">NEW</span>' not in text(staff_client.get("/dashboard"))
    fresh(session)
    assert session.get(Job, job.id).staff_viewed_at is not None  # type: ignore[union-attr]

    staff_client.post(
        f"/jobs/{job.id}/reviewed",
        data={"csrf_token": token(staff_client), "acting_as": STAFF, "reviewed": "0"},
    )
    assert '<span class="badge new">NEW</span>' in text(staff_client.get("/dashboard"))


def test_opening_a_job_clears_new(staff_client, session, storage):
    # SPEC §9: "a NEW badge until some staff member opens or marks it reviewed (staff_viewed_at)".
    job = make_job(session, storage)
    assert staff_client.get(f"/jobs/{job.id}").status_code == 200
    assert '<span class="badge new">NEW</span>' not in text(staff_client.get("/dashboard"))
    fresh(session)
    assert session.get(Job, job.id).staff_viewed_at is not None  # type: ignore[union-attr]


# -- locks -------------------------------------------------------------------------------------


def test_lock_endpoints_answer_409_with_the_holders_name(staff_client, session, storage):
    job = make_job(session, storage)
    version = job.updated_at
    csrf = token(staff_client)

    taken = staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf, "acting_as": STAFF})
    assert taken.status_code == 200
    assert taken.get_json()["ok"] is True
    until = datetime.fromisoformat(taken.get_json()["until"].removesuffix("Z"))
    assert timedelta(minutes=4) < until - utcnow() <= timedelta(minutes=5)

    refused = staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf, "acting_as": OTHER})
    assert refused.status_code == 409
    assert refused.get_json() == {
        "ok": False,
        "message": f"This job is being edited by {STAFF}. Try again when they are done.",
    }
    assert f"Being edited by {STAFF}" in text(staff_client.get(f"/jobs/{job.id}"))
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/approve"))
    assert f"Being edited by {STAFF}." in dialog
    assert re.search(r'id="action-submit"[^>]* disabled', dialog)
    assert f"locked by {STAFF}" in text(staff_client.get("/dashboard"))

    # Someone else's unlock leaves it; the holder's releases it.
    assert (
        staff_client.post(f"/jobs/{job.id}/unlock", data={"csrf_token": csrf, "acting_as": OTHER}).status_code
        == 200
    )
    assert (
        staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf, "acting_as": OTHER}).status_code
        == 409
    )
    assert (
        staff_client.post(f"/jobs/{job.id}/unlock", data={"csrf_token": csrf, "acting_as": STAFF}).status_code
        == 200
    )
    again = staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf, "acting_as": OTHER})
    assert again.status_code == 200

    fresh(session)
    assert session.get(Job, job.id).updated_at == version  # type: ignore[union-attr]


def test_lock_needs_an_active_staff_name(staff_client, session, storage):
    job = make_job(session, storage)
    csrf = token(staff_client)
    nameless = staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf})
    assert nameless.status_code == 422
    assert nameless.get_json()["message"] == "Choose who is acting."
    staff_service.set_active(session, OTHER, False)
    inactive = staff_client.post(f"/jobs/{job.id}/lock", data={"csrf_token": csrf, "acting_as": OTHER})
    assert inactive.status_code == 422
    assert inactive.get_json()["message"] == f"{OTHER} is not on the active staff list."
    assert (
        staff_client.post("/jobs/nope/lock", data={"csrf_token": csrf, "acting_as": STAFF}).status_code == 404
    )


def test_my_own_lock_is_not_shown_as_someone_elses(staff_client, session, storage):
    job = make_job(session, storage)
    locks.take(session, job.id, actor=actor(STAFF))  # the dialog took it for me
    response = act(staff_client, job.id, "approve", acting_as=STAFF, weight_g="lots", time_hours="1")
    assert response.status_code == 422
    page = text(response)
    assert "Being edited by" not in page
    assert not re.search(r'id="action-submit"[^>]* disabled', page)
    assert f"Being edited by {STAFF}." in text(staff_client.get(f"/jobs/{job.id}/act/approve"))  # to others


def test_an_expired_lock_is_taken_over(staff_client, session, storage):
    job = make_job(session, storage)
    locks.take(session, job.id, actor=actor(OTHER), now=utcnow() - timedelta(minutes=6))
    assert f"Being edited by {OTHER}" not in text(staff_client.get(f"/jobs/{job.id}"))
    response = staff_client.post(
        f"/jobs/{job.id}/lock", data={"csrf_token": token(staff_client), "acting_as": STAFF}
    )
    assert response.status_code == 200
    fresh(session)
    assert session.get(Job, job.id).locked_by == STAFF  # type: ignore[union-attr]


# -- actions: happy paths ----------------------------------------------------------------------


def _status(session, job_id: str) -> str:  # type: ignore[no-untyped-def]
    fresh(session)
    return session.get(Job, job_id).status  # type: ignore[union-attr]


def _flash(client, response) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, field_errors(response) or text(response)[:2000]
    return text(client.get(response.headers["Location"]))


def test_approve_prices_the_job_and_queues_the_quote_email(staff_client, session, storage):
    job = make_job(session, storage)
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/approve"))
    assert "Acting as" in dialog
    assert "An email goes to jane.doe@example.edu with the quote and a link to confirm it." in dialog

    response = act(staff_client, job.id, "approve", acting_as=STAFF, weight_g="42", time_hours="2.2")

    page = _flash(staff_client, response)
    assert f"Approve and send quote: done for job {simple_id(job)}." in page
    fresh(session)
    approved = session.get(Job, job.id)
    assert approved is not None
    assert approved.status == Status.PENDING.value
    assert approved.cost_usd == Decimal("4.20")
    assert approved.time_hours == 2.5
    assert approved.last_updated_by == STAFF
    assert approved.file_path.startswith("Pending/")
    assert storage.resolve(approved.file_path).exists()
    assert quote_token(session, job.id)
    approved_event = session.scalars(
        select(Event).where(Event.job_id == job.id, Event.event_type == "StaffApproved")
    ).one()
    assert (approved_event.triggered_by, approved_event.workstation_id) == (STAFF, WORKSTATION)


def test_reject_with_catalog_reasons_and_free_text(staff_client, session, storage):
    job = make_job(session, storage)
    form_page = staff_client.get(f"/jobs/{job.id}/act/reject").get_data(as_text=True)
    data = {
        **hidden_fields(form_page),
        "acting_as": STAFF,
        "reasons": ["Walls too thin", "Not scaled correctly"],
        "other_reason": "The handle is 0.2 mm thick.",
    }
    response = staff_client.post(f"/jobs/{job.id}/act/reject", data=data)

    page = _flash(staff_client, response)
    assert "Reject: done for job" in page
    assert "Walls too thin; Not scaled correctly; The handle is 0.2 mm thick." in page
    fresh(session)
    rejected = session.get(Job, job.id)
    assert rejected.status == Status.REJECTED.value  # type: ignore[union-attr]
    assert session.scalars(
        select(OutboxMessage).where(OutboxMessage.job_id == job.id, OutboxMessage.template == "rejected")
    ).one()


def test_start_printing_on_another_printer_of_the_method(staff_client, session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    response = act(staff_client, job.id, "start_printing", acting_as=STAFF, printer="Prusa XL")
    _flash(staff_client, response)
    fresh(session)
    printing = session.get(Job, job.id)
    assert (printing.status, printing.printer) == (Status.PRINTING.value, "Prusa XL")  # type: ignore[union-attr]
    assert printing.file_path.startswith("Printing/")  # type: ignore[union-attr]


def test_complete_and_print_failed(staff_client, session, storage):
    done = make_job(session, storage, Status.PRINTING)
    _flash(staff_client, act(staff_client, done.id, "complete", acting_as=STAFF))
    assert _status(session, done.id) == Status.COMPLETED.value

    failed = make_job(session, storage, Status.PRINTING, student_email="f@example.edu")
    _flash(staff_client, act(staff_client, failed.id, "print_failed", acting_as=STAFF, reason="Nozzle clog"))
    assert _status(session, failed.id) == Status.READYTOPRINT.value
    page = text(staff_client.get(f"/jobs/{failed.id}"))
    assert f"Print failed; moved back to Ready to Print by {STAFF} — Nozzle clog" in page
    fresh(session)
    assert session.get(Job, failed.id).cost_usd == Decimal("4.20")  # type: ignore[union-attr]  # no new quote


@pytest.mark.parametrize(
    ("fields", "charged", "kept"),
    [
        pytest.param({"weighed_g": "50"}, Decimal("5.00"), False, id="from the weight"),
        pytest.param({"weighed_g": "50", "keep_quote": "on"}, Decimal("4.20"), True, id="quote kept"),
        pytest.param({"weighed_g": "10"}, Decimal("3.00"), False, id="minimum charge"),
    ],
)
def test_record_pickup_charges_the_weight_or_the_quote(staff_client, session, storage, fields, charged, kept):
    job = make_job(session, storage, Status.COMPLETED)
    dialog = text(staff_client.get(f"/jobs/{job.id}/act/record_pickup"))
    assert "Quoted: <strong>$4.20</strong> for 42.0 g." in dialog
    assert 'value="Jane Doe"' in dialog  # picked up by: the student, unless changed

    response = act(
        staff_client,
        job.id,
        "record_pickup",
        acting_as=STAFF,
        method="CARD",
        payment_reference="CARD-77",
        **fields,
    )

    _flash(staff_client, response)
    fresh(session)
    payment = session.scalars(select(Payment).where(Payment.job_id == job.id)).one()
    assert (payment.charged_usd, payment.kept_quote) == (charged, kept)
    assert (payment.payment_reference, payment.picked_up_by, payment.recorded_by) == (
        "CARD-77",
        "Jane Doe",
        STAFF,
    )
    assert _status(session, job.id) == Status.PAIDPICKEDUP.value


def test_revert_a_pickup_reverses_the_payment(staff_client, session, storage):
    job = make_job(session, storage, Status.PAIDPICKEDUP)
    _flash(staff_client, act(staff_client, job.id, "revert", acting_as=STAFF, reason="Wrong job picked up"))
    fresh(session)
    assert session.get(Job, job.id).status == Status.COMPLETED.value  # type: ignore[union-attr]
    reversal = session.scalars(select(Payment).where(Payment.job_id == job.id).order_by(Payment.id)).all()[-1]
    assert reversal.kind == "REVERSAL" and reversal.reason == "Wrong job picked up"
    assert "Reversed (pickup reverted)" in text(staff_client.get(f"/jobs/{job.id}"))


def test_resend_quote_issues_a_fresh_link(staff_client, session, storage):
    job = make_job(session, storage, Status.PENDING)
    old = quote_token(session, job.id)
    _flash(staff_client, act(staff_client, job.id, "resend_quote", acting_as=STAFF))
    fresh(session)
    new = quote_token(session, job.id)
    assert new != old
    assert quote_links.find_by_token(session, old) is None
    assert quote_links.find_by_token(session, new).id == job.id  # type: ignore[union-attr]


# -- actions: refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "fields", "errors"),
    [
        pytest.param(
            Status.UPLOADED,
            "approve",
            {"weight_g": "42", "time_hours": "2"},
            {"acting_as": "Choose who is acting."},
            id="approve without a name",
        ),
        pytest.param(
            Status.UPLOADED,
            "approve",
            {"acting_as": STAFF, "weight_g": "lots", "time_hours": ""},
            {"weight_g": None, "time_hours": None},
            id="approve with bad weight and no time",
        ),
        pytest.param(
            Status.UPLOADED,
            "approve",
            {"acting_as": STAFF, "weight_g": "0", "time_hours": "1"},
            {"weight_g": "Weight must be more than 0 g"},
            id="approve with zero grams",
        ),
        pytest.param(
            Status.UPLOADED,
            "approve",
            {"acting_as": STAFF, "weight_g": "10", "time_hours": "1", "authoritative_file": "../x.stl"},
            {"authoritative_file": "Choose one of the job's files."},
            id="approve a file that isn't the job's",
        ),
        pytest.param(
            Status.UPLOADED,
            "reject",
            {"acting_as": STAFF},
            {"reasons": "Give at least one reason for the student."},
            id="reject without a reason",
        ),
        pytest.param(
            Status.UPLOADED,
            "reject",
            {"acting_as": STAFF, "reasons": "Ugly"},
            {"reasons": "Choose reasons from the list, or write your own."},
            id="reject with a made-up reason",
        ),
        pytest.param(
            Status.READYTOPRINT,
            "start_printing",
            {"acting_as": STAFF, "printer": "Formlabs Form 3"},
            {"printer": "Choose a Filament printer the lab has."},
            id="start on a printer of the other method",
        ),
        pytest.param(
            Status.PRINTING,
            "print_failed",
            {"acting_as": STAFF, "reason": "  "},
            {"reason": "Give what went wrong."},
            id="print failed without a reason",
        ),
        pytest.param(
            Status.COMPLETED,
            "record_pickup",
            {"acting_as": STAFF, "method": "CARD", "payment_reference": "R-1"},
            {"weighed_g": "Enter the weighed grams, or keep the quoted price."},
            id="pickup without grams",
        ),
        pytest.param(
            Status.COMPLETED,
            "record_pickup",
            {"acting_as": STAFF, "method": "CARD", "weighed_g": "-3"},
            {"weighed_g": "Weighed grams must be more than 0"},
            id="pickup with negative grams",
        ),
        pytest.param(
            Status.COMPLETED,
            "revert",
            {"acting_as": STAFF},
            {"reason": "Give a reason."},
            id="revert without a reason",
        ),
    ],
)
def test_action_refusals_show_the_message_next_to_the_field(
    staff_client, session, storage, status, action, fields, errors
):
    job = make_job(session, storage, status)
    before = (job.status, job.updated_at)

    response = act(staff_client, job.id, action, **fields)

    assert response.status_code == 422
    shown = field_errors(response)
    assert set(shown) == set(errors)
    for field, message in errors.items():
        if message is not None:
            assert shown[field] == message
        else:
            assert shown[field]
    assert "Please fix this" in text(response)
    fresh(session)
    after = session.get(Job, job.id)
    assert (after.status, after.updated_at) == before  # type: ignore[union-attr]


def test_an_inactive_staff_name_is_refused(staff_client, session, storage):
    job = make_job(session, storage)
    page = staff_client.get(f"/jobs/{job.id}/act/approve").get_data(as_text=True)
    staff_service.set_active(session, OTHER, False)  # deactivated while the dialog was open
    data = {**hidden_fields(page), "acting_as": OTHER, "weight_g": "10", "time_hours": "1"}
    response = staff_client.post(f"/jobs/{job.id}/act/approve", data=data)
    assert response.status_code == 422
    assert field_errors(response) == {"acting_as": f"{OTHER} is not on the active staff list."}
    assert f'<option value="{OTHER}"' not in response.get_data(as_text=True)
    assert _status(session, job.id) == Status.UPLOADED.value


def test_stale_view_is_refused_with_who_changed_it(staff_client, session, storage):
    job = make_job(session, storage)
    page = staff_client.get(f"/jobs/{job.id}/act/reject").get_data(as_text=True)
    workflow.approve(session, storage, job.id, actor=actor(OTHER, "LAB-PC-2"), weight_g=42, time_hours=2)

    data = {**hidden_fields(page), "acting_as": STAFF, "reasons": "Walls too thin"}
    response = staff_client.post(f"/jobs/{job.id}/act/reject", data=data)

    assert response.status_code == 409
    page = text(response)
    assert re.search(
        rf"This job was changed by {OTHER} at \d{{4}}-\d\d-\d\d \d\d:\d\d [A-Z]{{3,4}} and is now Pending\. Reload and try again\.",
        page,
    )
    assert 'id="conflict"' in page and ">Reload</a>" in page
    assert re.search(r'id="action-submit"[^>]* disabled', page)
    assert _status(session, job.id) == Status.PENDING.value


def test_stale_view_names_the_person_not_the_email_sent_after(app, staff_client, session, storage):
    job = make_job(session, storage)
    page = staff_client.get(f"/jobs/{job.id}/act/reject").get_data(as_text=True)
    workflow.approve(session, storage, job.id, actor=actor(OTHER, "LAB-PC-2"), weight_g=42, time_hours=2)
    report = mail.Deliverer.from_config(app.extensions["printlab"].config)(session)  # the worker's next tick
    assert report is not None and report.sent >= 1  # writes EmailSent, which changes nothing on the job

    data = {**hidden_fields(page), "acting_as": STAFF, "reasons": "Walls too thin"}
    response = staff_client.post(f"/jobs/{job.id}/act/reject", data=data)

    assert response.status_code == 409
    assert f"This job was changed by {OTHER} at " in text(response)


def test_stale_version_in_the_same_status_is_refused(staff_client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    page = staff_client.get(f"/jobs/{job.id}/act/complete").get_data(as_text=True)
    workflow.print_failed(session, storage, job.id, actor=actor(OTHER), reason="Spaghetti")
    workflow.start_printing(session, storage, job.id, actor=actor(OTHER))  # back in Printing, newer version

    response = staff_client.post(
        f"/jobs/{job.id}/act/complete", data={**hidden_fields(page), "acting_as": STAFF}
    )

    assert response.status_code == 409
    assert f"This job was changed by {OTHER}" in text(response)
    assert _status(session, job.id) == Status.PRINTING.value


def test_action_while_someone_else_holds_the_lock_is_refused(staff_client, session, storage):
    job = make_job(session, storage)
    page = staff_client.get(f"/jobs/{job.id}/act/approve").get_data(as_text=True)
    locks.take(session, job.id, actor=actor(OTHER, "LAB-PC-2"))
    data = {**hidden_fields(page), "acting_as": STAFF, "weight_g": "42", "time_hours": "2"}

    response = staff_client.post(f"/jobs/{job.id}/act/approve", data=data)

    assert response.status_code == 409
    assert f"This job is being edited by {OTHER}. Try again when they are done." in text(response)
    assert _status(session, job.id) == Status.UPLOADED.value


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (Status.PENDING, "approve"),
        (Status.UPLOADED, "start_printing"),
        (Status.REJECTED, "complete"),
        (Status.PAIDPICKEDUP, "record_pickup"),
        (Status.UPLOADED, "resend_quote"),
    ],
)
def test_action_not_allowed_in_the_status_says_so(staff_client, session, storage, status, action):
    job = make_job(session, storage, status)
    response = staff_client.get(f"/jobs/{job.id}/act/{action}")
    assert response.status_code == 409
    assert f"This job is {status.label}; “{ACTIONS[action].label}” isn't possible now." in text(response)
    assert re.search(r'id="action-submit"[^>]* disabled', text(response))

    posted = act(staff_client, job.id, action, acting_as=STAFF, weight_g="42", time_hours="2", reason="x")
    assert posted.status_code in (409, 422)
    assert _status(session, job.id) == status.value


def test_revert_after_24_hours_is_refused(staff_client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    workflow.complete(session, storage, job.id, actor=actor(), now=utcnow() - timedelta(hours=25))
    response = act(staff_client, job.id, "revert", acting_as=STAFF, reason="Oops")
    assert response.status_code == 422
    assert field_errors(response)["reason"].startswith(
        "Only a change made in the last 24 hours can be reverted"
    )
    assert _status(session, job.id) == Status.COMPLETED.value


def test_actions_need_the_csrf_token(staff_client, session, storage):
    job = make_job(session, storage)
    response = staff_client.post(
        f"/jobs/{job.id}/act/approve", data={"acting_as": STAFF, "weight_g": "42", "time_hours": "2"}
    )
    assert response.status_code == 400
    assert _status(session, job.id) == Status.UPLOADED.value
