"""The student's action pages through the app: forms with CSRF and the job's version, clear refusals,
private answers, and nothing left behind by a refused file."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from printlab.domain.statuses import Status
from printlab.models import Event, Job, JobResubmission, OutboxMessage
from printlab.services.jobs import student_actions, workflow
from printlab.services.jobs.references import make_reference

from .conftest import MODELS
from .factories import actor, make_job, quote_token

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION_FIELD = re.compile(r'name="expected_version" value="([^"]+)"')
SECRET = "test-secret-key-that-is-long-enough-0123456789"


def form_of(page: str) -> dict[str, str]:
    data = {"csrf_token": CSRF_FIELD.search(page).group(1)}  # type: ignore[union-attr]
    if found := VERSION_FIELD.search(page):
        data["expected_version"] = found.group(1)
        data["expected_status"] = re.search(r'name="expected_status" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    return data


def private(response) -> str:  # type: ignore[no-untyped-def]
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    return body


def incoming(storage) -> list[str]:  # type: ignore[no-untyped-def]
    folder = storage.root / ".incoming"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_the_cancel_step_asks_first_and_the_post_needs_the_pages_version(client, session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    reference = make_reference(SECRET, job.id)
    status_page = client.get(f"/status/{reference}").get_data(as_text=True)
    assert f"/status/{reference}/cancel" in status_page and "Cancel my request" in status_page

    step = client.get(f"/status/{reference}/cancel")
    page = private(step)
    assert step.status_code == 200 and "Yes, cancel my request" in page
    assert session.get(Job, job.id).status == Status.UPLOADED.value  # a GET changes nothing

    data = form_of(page)
    unversioned = client.post(f"/status/{reference}/cancel", data={"csrf_token": data["csrf_token"]})
    assert unversioned.status_code == 400
    assert client.post(f"/status/{reference}/cancel", data={}).status_code == 400  # no CSRF token
    session.rollback()
    assert session.get(Job, job.id).status == Status.UPLOADED.value

    done = client.post(f"/status/{reference}/cancel", data=data)
    assert done.status_code == 303
    session.rollback()
    assert session.get(Job, job.id).status == Status.REJECTED.value
    after = client.get(f"/status/{reference}", follow_redirects=True).get_data(as_text=True)
    assert "Cancelled by the student" in after and "Cancel my request" not in after
    # Asked again (a second tab), it goes back to the status page: nothing left to cancel.
    assert client.get(f"/status/{reference}/cancel").status_code == 303


def test_a_forged_status_link_cancels_nothing(client, session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    assert (
        client.get(
            f"/status/{make_reference('another-secret-key-long-enough-000', job.id)}/cancel"
        ).status_code
        == 404
    )


def test_a_decline_with_a_hidden_character_is_shown_again_with_the_answer(client, session, storage):
    job = make_job(session, storage, Status.PENDING)
    token = quote_token(session, job.id)
    page = private(client.get(f"/confirm/{token}"))
    assert "Decline the quote" in page
    refused = client.post(f"/confirm/{token}/decline", data={**form_of(page), "reason": "too \u202edear"})
    body = private(refused)
    assert refused.status_code == 422 and "Your reason contains" in body
    session.rollback()
    assert session.get(Job, job.id).status == Status.PENDING.value
    declined = client.post(f"/confirm/{token}/decline", data={**form_of(page), "reason": "Too dear"})
    assert declined.status_code == 200 and "You declined the quote" in private(declined)
    again = client.post(f"/confirm/{token}/decline", data=form_of(page))
    assert again.status_code == 404  # a spent link: the plain "not valid" page


def test_a_file_for_a_job_no_longer_waiting_is_refused_and_nothing_stays(client, session, storage):
    job = make_job(session, storage, Status.UPLOADED)
    student_actions.request_changes(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])
    token = session.scalars(
        select(OutboxMessage.context).where(OutboxMessage.template == "changes_needed")
    ).one()["token"]
    page = private(client.get(f"/replace/{token}"))
    assert "Walls too thin" in page and "Send the corrected file" in page
    workflow.reject(session, storage, job.id, actor=actor(), reasons=["Walls too thin"])
    session.rollback()
    events = session.scalar(select(func.count()).select_from(Event))
    files = sorted(p.name for p in (storage.root / "Uploaded").iterdir())

    with open(MODELS / "box.obj", "rb") as handle:
        refused = client.post(
            f"/replace/{token}",
            data={**form_of(page), "file": (io.BytesIO(handle.read()), "box.obj")},
            content_type="multipart/form-data",
        )

    assert refused.status_code == 410
    assert "no longer needs a corrected file" in private(refused)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Event)) == events
    assert sorted(p.name for p in (storage.root / "Uploaded").iterdir()) == files
    assert incoming(storage) == []
    assert client.get("/replace/never-sent").status_code == 404


def test_a_corrected_file_for_a_rejected_job_is_prefilled_and_linked(client, session, storage):
    rejected = make_job(session, storage, Status.REJECTED)
    reference = make_reference(SECRET, rejected.id)
    status_page = client.get(f"/status/{reference}").get_data(as_text=True)
    assert f"/submit?after={reference}" in status_page
    form = client.get(f"/submit?after={reference}").get_data(as_text=True)
    assert 'value="Jane Doe"' in form and f'name="resubmission_of" value="{reference}"' in form
    with open(MODELS / "box.obj", "rb") as handle:
        sent = client.post(
            "/submit",
            data={
                "csrf_token": CSRF_FIELD.search(form).group(1),  # type: ignore[union-attr]
                "student_name": "Jane Doe", "student_email": "jane.doe@example.edu",
                "discipline": "Engineering", "class_number": "ME 2110", "print_method": "Filament",
                "color": "True Red", "printer": "Prusa MK4S", "acknowledged_minimum_charge": "on",
                "resubmission_of": reference, "file": (io.BytesIO(handle.read()), "box.obj"),
            },
            content_type="multipart/form-data",
        )  # fmt: skip
    assert sent.status_code == 303, sent.get_data(as_text=True)
    session.rollback()
    link = session.scalars(select(JobResubmission)).one()
    assert link.earlier_job_id == rejected.id
    later = client.get(f"/status/{reference}").get_data(as_text=True)
    assert "You sent a corrected file as job" in later
