"""Staff add sliced or project files to a job while it is still being worked on, never once it is closed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from printlab.domain.statuses import Status
from printlab.models import Event
from printlab.services.errors import ValidationError
from printlab.services.jobs import job_desk

from .conftest import SLICED
from .factories import actor, make_job

GCODE = SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode"


def _files(storage, job) -> list[str]:  # type: ignore[no-untyped-def]
    folder = storage.resolve(job.file_path).parent
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("status", [Status.UPLOADED, Status.READYTOPRINT, Status.PRINTING, Status.COMPLETED])
def test_a_sliced_file_is_added_to_an_open_job(session, storage, status):
    job = make_job(session, storage, status)
    with GCODE.open("rb") as stream:
        name = job_desk.attach_file(
            session, storage, job.id, stream, GCODE.name, actor=actor(), max_bytes=10**8
        )
    session.refresh(job)
    assert name in _files(storage, job)
    events = session.scalars(select(Event.event_type).where(Event.job_id == job.id)).all()
    assert "FileAttached" in events


@pytest.mark.parametrize("status", [Status.PAIDPICKEDUP, Status.REJECTED, Status.ARCHIVED])
def test_a_closed_job_takes_no_more_files_and_nothing_changes(session, storage, status):
    job = make_job(session, storage, status)
    files_before = _files(storage, job)
    events_before = session.scalars(select(Event.id).where(Event.job_id == job.id)).all()

    with GCODE.open("rb") as stream, pytest.raises(ValidationError) as refused:
        job_desk.attach_file(session, storage, job.id, stream, GCODE.name, actor=actor(), max_bytes=10**8)

    assert refused.value.errors == {
        "file": f"This job is {status.label}: files can't be added to it any more."
    }
    session.refresh(job)
    assert _files(storage, job) == files_before
    assert session.scalars(select(Event.id).where(Event.job_id == job.id)).all() == events_before
