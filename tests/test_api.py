"""The /api/v1 API: tokens (shown once, hashed, scoped, expiring, revocable, rate-limited), reading jobs,
every staff move through the workflow with If-Match, and the one error shape (problem details)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import AdminLogEntry, ApiToken, Event, Job, Payment
from printlab.services.api import tokens
from printlab.services.errors import ValidationError

from .conftest import sign_in_client
from .factories import STAFF, make_job, make_staff

PROBLEM = "application/problem+json"


def _token(session, scope: str = "write", **extra) -> str:
    make_staff(session)
    made = tokens.create(
        session, name=extra.pop("name", f"Sync {scope}"), staff_name=STAFF, scope=scope, **extra
    )
    return made.secret


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["type"] == "about:blank" and body["title"] and body["detail"]
    return body


def _etag(client, job_id: str, headers) -> str:
    answer = client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert answer.status_code == 200
    return answer.headers["ETag"]


# -- tokens ----------------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_only_its_hash_is_kept(session):
    make_staff(session)
    made = tokens.create(session, name="Finance sync", staff_name=STAFF, scope="read", days=30)
    assert made.secret.startswith("plt_") and len(made.secret) > 40
    row = session.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(made.secret.encode()).hexdigest()
    stored = [str(v) for v in vars(row).values()]
    assert not any(made.secret in value for value in stored)
    assert row.prefix == made.secret[:8]
    assert row.expires_at - row.created_at == timedelta(days=30)
    log = session.scalars(select(AdminLogEntry).where(AdminLogEntry.action == "ApiTokenCreated")).one()
    assert made.secret not in str(log.details)


def test_token_form_values_are_checked_per_field(session):
    make_staff(session)
    with pytest.raises(ValidationError) as refused:
        tokens.create(session, name="", staff_name="Nobody", scope="admin", days="0", rate_per_minute="x")
    assert set(refused.value.errors) == {"name", "staff_name", "scope", "days", "rate_per_minute"}
    tokens.create(session, name="Signage", staff_name=STAFF, scope="read")
    with pytest.raises(ValidationError) as taken:
        tokens.create(session, name="Signage", staff_name=STAFF, scope="read")
    assert "already exists" in taken.value.errors["name"]


def test_unknown_expired_revoked_and_deactivated_tokens_are_refused(client, session, storage):
    job = make_job(session, storage)
    secret = _token(session, "read")
    assert client.get(f"/api/v1/jobs/{job.id}", headers=_auth(secret)).status_code == 200
    for header in ("Bearer plt_nope", "Basic abc", "Bearer "):
        body = _problem(client.get("/api/v1/jobs", headers={"Authorization": header}), 401)
        assert body["detail"]
    anonymous = client.get("/api/v1/jobs")
    _problem(anonymous, 401)
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    session.rollback()  # the app wrote the token's last use since this session last read
    row = session.scalars(select(ApiToken)).one()
    row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert "expired" in _problem(client.get("/api/v1/jobs", headers=_auth(secret)), 401)["detail"]
    row.expires_at = utcnow() + timedelta(days=1)
    session.commit()
    assert client.get("/api/v1/jobs", headers=_auth(secret)).status_code == 200

    tokens.revoke(session, row.id)
    assert "revoked" in _problem(client.get("/api/v1/jobs", headers=_auth(secret)), 401)["detail"]
    assert session.scalars(select(AdminLogEntry.action)).all()[-1] == "ApiTokenRevoked"

    other = _token(session, "read", name="Other")
    from printlab.services.lab import staff as staff_service

    staff_service.set_active(session, STAFF, False)
    assert "no longer active" in _problem(client.get("/api/v1/jobs", headers=_auth(other)), 401)["detail"]


def test_last_used_is_noted(client, session, storage):
    secret = _token(session, "read")
    row = session.scalars(select(ApiToken)).one()
    assert row.last_used_at is None
    before = utcnow()
    assert client.get("/api/v1/jobs", headers=_auth(secret)).status_code == 200
    session.rollback()  # a fresh snapshot: the app changed the database
    assert row.last_used_at is not None and row.last_used_at >= before - timedelta(seconds=1)


def test_each_token_has_its_own_rate_limit(app, client, session):
    app.config["RATELIMIT_ENABLED"] = True
    slow = _token(session, "read", name="Slow", rate_per_minute=3)
    other = _token(session, "read", name="Other", rate_per_minute=3)
    for _ in range(3):
        assert client.get("/api/v1/jobs", headers=_auth(slow)).status_code == 200
    refused = client.get("/api/v1/jobs", headers=_auth(slow))
    body = _problem(refused, 429)
    assert "3 requests a minute" in body["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.get("/api/v1/jobs", headers=_auth(other)).status_code == 200


# -- reading ---------------------------------------------------------------------------------------


def test_jobs_list_one_job_events_and_files(client, session, storage):
    job = make_job(session, storage, Status.PENDING)
    headers = _auth(_token(session, "read"))
    listed = client.get("/api/v1/jobs", query_string={"status": "PENDING"}, headers=headers).get_json()
    assert [j["id"] for j in listed["jobs"]] == [job.id] and listed["counts"]["PENDING"] == 1
    one = client.get(f"/api/v1/jobs/{job.id}", headers=headers)
    assert one.get_json()["status"] == "PENDING" and one.get_json()["status_label"] == "Pending"
    assert one.headers["ETag"] == f'"{one.get_json()["version"]}"'
    events = client.get(f"/api/v1/jobs/{job.id}/events", headers=headers).get_json()["events"]
    assert [e["type"] for e in events][:1] == ["JobCreated"]
    assert any(e["by"] == STAFF and e["sentence"].startswith("Approved by Alex Rivera") for e in events)
    files = client.get(f"/api/v1/jobs/{job.id}/files", headers=headers).get_json()["files"]
    assert files and all("/" not in f["name"] for f in files)
    assert any(f["is_authoritative"] for f in files)
    _problem(client.get("/api/v1/jobs/nope", headers=headers), 404)
    _problem(client.get("/api/v1/jobs", query_string={"per_page": "0"}, headers=headers), 422)


def test_the_workstation_session_still_reads_but_never_moves(app, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    browser = sign_in_client(app.test_client(), session)
    assert browser.get("/api/v1/jobs").status_code == 200
    assert browser.get("/api/v1/price?weight_g=10&method=Filament").get_json()["display"].startswith("$")
    version = browser.get(f"/api/v1/jobs/{job.id}").headers["ETag"]
    _problem(browser.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers={"If-Match": version}), 403)


# -- moves -----------------------------------------------------------------------------------------


def test_a_read_token_cannot_move_a_job(client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    headers = _auth(_token(session, "read"))
    etag = _etag(client, job.id, headers)
    _problem(
        client.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers | {"If-Match": etag}), 403
    )
    session.rollback()  # a fresh snapshot: the app changed the database
    assert session.get(Job, job.id).status == Status.PRINTING


MOVES = [
    (Status.UPLOADED, "approve", {"weight_g": 40, "time_hours": 2}, Status.PENDING),
    (Status.UPLOADED, "reject", {"reasons": ["Walls too thin"]}, Status.REJECTED),
    (Status.UPLOADED, "request-changes", {"other_reason": "Thicker walls, please."}, Status.UPLOADED),
    (Status.PENDING, "edit-quote", {"weight_g": 50, "time_hours": 3}, Status.PENDING),
    (Status.PENDING, "confirm-for-student", {"note": "Agreed at the desk"}, Status.READYTOPRINT),
    (Status.PENDING, "resend-quote", {}, Status.PENDING),
    (Status.PENDING, "cancel", {"reason": "Student asked by phone"}, Status.REJECTED),
    (Status.READYTOPRINT, "start-printing", {}, Status.PRINTING),
    (Status.PRINTING, "complete", {}, Status.COMPLETED),
    (Status.PRINTING, "print-failed", {"reason": "Spaghetti"}, Status.READYTOPRINT),
    (Status.COMPLETED, "record-pickup", {"method": "CARD", "weighed_g": 40, "payment_reference": "R-9"}, Status.PAIDPICKEDUP),
    (Status.COMPLETED, "revert", {"reason": "Marked complete by mistake"}, Status.PRINTING),
    (Status.PAIDPICKEDUP, "refund", {"kind": "REFUND", "amount_usd": "1.00", "method": "CARD", "reason": "Scratched"}, Status.PAIDPICKEDUP),
]  # fmt: skip


@pytest.mark.parametrize(("start", "move", "body", "end"), MOVES, ids=[m[1] for m in MOVES])
def test_each_move_goes_through_the_workflow(client, session, storage, start, move, body, end):
    job = make_job(session, storage, start)
    headers = _auth(_token(session, "write"))
    etag = _etag(client, job.id, headers)
    events_before = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    answer = client.post(f"/api/v1/jobs/{job.id}/{move}", json=body, headers=headers | {"If-Match": etag})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == end.value
    assert answer.headers["ETag"] != etag
    session.rollback()  # a fresh snapshot: the app changed the database
    assert session.get(Job, job.id).status == end.value
    new = session.scalars(select(Event).where(Event.id > events_before, Event.job_id == job.id)).all()
    assert new and all(e.triggered_by == STAFF and e.workstation_id == "API: Sync write" for e in new)
    if move == "refund":
        assert session.scalars(select(Payment.kind).where(Payment.job_id == job.id)).all()[-1] == "REFUND"


def test_if_match_is_required_and_a_stale_one_changes_nothing(client, session, storage):
    job = make_job(session, storage, Status.PRINTING)
    headers = _auth(_token(session, "write"))
    etag = _etag(client, job.id, headers)
    _problem(client.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers), 428)
    _problem(
        client.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers | {"If-Match": "*"}), 428
    )
    for stale in ('"2020-01-01T00:00:00"', '"not a version"', "W/" + etag):
        body = _problem(
            client.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers | {"If-Match": stale}),
            412,
        )
        assert "Nothing was changed" in body["detail"] or "nothing was changed" in body["detail"]
    session.rollback()  # a fresh snapshot: the app changed the database
    assert session.get(Job, job.id).status == Status.PRINTING
    first = client.post(f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers | {"If-Match": etag})
    assert first.status_code == 200
    again = client.post(
        f"/api/v1/jobs/{job.id}/print-failed", json={"reason": "x"}, headers=headers | {"If-Match": etag}
    )
    assert "changed by Alex Rivera" in _problem(again, 412)["detail"]
    wrong = client.post(
        f"/api/v1/jobs/{job.id}/complete", json={}, headers=headers | {"If-Match": first.headers["ETag"]}
    )
    _problem(wrong, 409)


def test_refused_fields_are_named(client, session, storage):
    job = make_job(session, storage)
    headers = _auth(_token(session, "write"))
    etag = _etag(client, job.id, headers)
    typed = client.post(
        f"/api/v1/jobs/{job.id}/approve", json={"weight_g": "heavy"}, headers=headers | {"If-Match": etag}
    )
    assert set(_problem(typed, 422)["errors"]) >= {"weight_g", "time_hours"}
    extra = client.post(
        f"/api/v1/jobs/{job.id}/reject", json={"reason": "typo"}, headers=headers | {"If-Match": etag}
    )
    assert "reason" in _problem(extra, 422)["errors"]
    service = client.post(
        f"/api/v1/jobs/{job.id}/reject", json={"reasons": []}, headers=headers | {"If-Match": etag}
    )
    assert _problem(service, 422)["errors"]
    _problem(client.post("/api/v1/jobs", headers=headers), 405)
    _problem(client.get("/api/v1/nothing-here", headers=headers), 404)


def test_the_document_is_openapi_3_1_and_lists_every_operation(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    paths = spec["paths"]
    assert {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/jobs/{job_id}/files",
    } <= set(paths)
    moves = [p for p in paths if "post" in paths[p]]
    assert len(moves) == 13
    complete = paths["/api/v1/jobs/{job_id}/complete"]["post"]
    assert {"412", "428", "403", "409", "422", "429"} <= set(complete["responses"])
    assert PROBLEM in complete["responses"]["412"]["content"]
    assert "requestBody" not in complete  # a move with nothing to say takes no body
    assert paths["/api/v1/jobs/{job_id}/approve"]["post"]["requestBody"]["required"]
    page = client.get("/api/v1/reference")
    assert page.status_code == 200 and "Record pickup and payment" in page.get_data(as_text=True)


def test_report_figures_are_read_without_money_for_a_token(client, app, session, storage):
    make_job(session, storage, Status.PAIDPICKEDUP)
    headers = _auth(_token(session, "read"))
    answer = client.get("/api/v1/reports", query_string={"period": "7d"}, headers=headers)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    body = answer.get_json()
    assert body["period"] and "revenue" not in json_text(body)
    bad = client.get(
        "/api/v1/reports",
        query_string={"period": "custom", "from": "2026-03-15", "to": "2026-03-01"},
        headers=headers,
    )
    assert _problem(bad, 422)["errors"]
    assert (
        client.get("/api/v1/reports", query_string={"period": "fortnight"}, headers=headers).status_code
        == 422
    )


def json_text(body: object) -> str:
    import json

    return json.dumps(body)


def test_an_admin_workstations_browser_reads_the_money_figures(app, session, storage):
    from printlab.services.lab import workstations

    make_job(session, storage, Status.PAIDPICKEDUP)
    workstations.add_workstation(session, "ADMIN-PC", "a-long-admin-password", is_admin=True)
    admin = sign_in_client(app.test_client(), session, "ADMIN-PC", "a-long-admin-password")
    body = admin.get("/api/v1/reports", query_string={"period": "7d"}).get_json()
    assert "revenue_usd" in body and "average_ticket_usd" in body


def test_the_printer_board_is_read_with_each_printers_state_print_and_queue(client, session, storage):
    from .fleet_factories import make_poll, make_printer, make_run

    mk4s = make_printer(session, "Prusa MK4S")
    make_printer(session, "Raise3D Pro 2 Plus", "NONE", state="PAUSED")
    printing = make_job(
        session, storage, Status.PRINTING, printer="Prusa MK4S", student_name="Priya Printing"
    )
    make_run(session, printing, mk4s, started_at=utcnow() - timedelta(minutes=20))
    make_poll(
        session, mk4s, "printing", file=f"{printing.display_name}.gcode", progress=61.0, seconds_left=2400
    )
    queued = make_job(
        session, storage, Status.READYTOPRINT, printer="Prusa MK4S", student_email="q@example.edu"
    )
    answer = client.get("/api/v1/printers", headers=_auth(_token(session, "read")))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    lanes = {p["name"]: p for p in answer.get_json()["printers"]}
    mk4s_lane = lanes["Prusa MK4S"]
    assert (mk4s_lane["state"], mk4s_lane["state_label"]) == ("printing", "Printing")
    [now] = mk4s_lane["printing"]
    assert (now["job"]["id"], now["state"], now["progress"], now["seconds_left"], now["started_by"]) == (
        printing.id, "printing", 61.0, 2400, STAFF
    )  # fmt: skip
    assert now["time_left"] == "about 40 minutes left" and now["started_at"].endswith(("Z", "+00:00"))
    assert [job["id"] for job in mk4s_lane["queue"]] == [queued.id]
    assert lanes["Raise3D Pro 2 Plus"]["state"] == "out-of-service"
    assert client.get("/api/v1/printers").status_code == 401
