"""An API move racing the same move from a page, in two processes on one job: one winner, the other
refused (412 or 409 from the API; a stale or conflicting job from the page's workflow call), 20 trials."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import Event, Job
from printlab.services.api import tokens

from .conftest import BACKENDS
from .factories import STAFF, make_job, make_staff
from .servers import PrintlabServer
from .test_concurrency import START_AHEAD_S, Racer, Seat

TRIALS = 20

pytestmark = pytest.mark.parametrize(
    "backend",
    [pytest.param(b, marks=pytest.mark.postgres_only) if b == "postgresql" else b for b in BACKENDS],
)


def _post(url: str, secret: str, etag: str, at: float, result: dict) -> None:
    request = urllib.request.Request(
        url, data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {secret}", "If-Match": etag, "Content-Type": "application/json"},
    )  # fmt: skip
    time.sleep(max(0.0, at - time.time() - 0.002))
    while time.time() < at:
        pass
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            result["status"] = answer.status
    except urllib.error.HTTPError as refused:
        result["status"] = refused.code
        result["type"] = refused.headers.get("Content-Type")
        refused.close()


def test_an_api_move_racing_a_page_move_has_one_winner(session, storage, lab_env, tmp_path: Path):
    make_staff(session)
    seat = Seat("Morgan Lee", "LAB-PC-2")
    make_staff(session, seat.staff)
    secret = tokens.create(session, name="Race", staff_name=STAFF, scope="write", rate_per_minute=6000).secret
    server = PrintlabServer(lab_env | {"PRINTLAB_WORKER": "off"}, tmp_path / "serve.log").ready()
    racer = Racer(seat, {**os.environ, **lab_env}, tmp_path / "racer.stderr")
    outcomes: list[tuple[int, bool]] = []
    try:
        assert racer.answer() == {"ready": True}
        for trial in range(TRIALS):
            job = make_job(session, storage, Status.PRINTING, student_email=f"racer{trial}@example.edu")
            version = job.updated_at
            assert version is not None
            at = time.time() + START_AHEAD_S + 0.1
            result: dict = {}
            caller = threading.Thread(
                target=_post,
                args=(f"http://127.0.0.1:{server.port}/api/v1/jobs/{job.id}/complete", secret, f'"{version.isoformat()}"', at, result),
            )  # fmt: skip
            caller.start()
            racer.send({
                "action": "complete", "job_id": job.id, "staff": seat.staff, "workstation": seat.workstation,
                "expected": {"status": "PRINTING", "updated_at": version.isoformat()}, "args": {},
                # The HTTP request has further to go than the page's call: the page starts 0–60 ms
                # later by turns, so each side is sometimes first to the row lock.
                "at": at + (trial % 5) * 0.015,
            })  # fmt: skip
            page = racer.answer()
            caller.join(timeout=60)
            api_won = result.get("status") == 200
            assert api_won != page["ok"], (trial, result, page)
            if not api_won:
                assert result["status"] in (409, 412) and result["type"] == "application/problem+json", result
            else:
                assert page["error"] in ("StaleJob", "InvalidTransition", "JobLocked"), page
            session.rollback()
            assert session.get(Job, job.id).status == Status.COMPLETED
            completions = session.scalars(
                select(Event).where(Event.job_id == job.id, Event.details["to"].as_string() == "COMPLETED")
            ).all()
            assert len(completions) == 1, [(e.event_type, e.details) for e in completions]
            outcomes.append((result["status"], api_won))
    finally:
        racer.close()
        server.stop()
    assert "Traceback" not in server.output()
    print(f"{TRIALS} trials: the API won {sum(w for _, w in outcomes)}, the page won the rest")
