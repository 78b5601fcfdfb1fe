"""Quick end-to-end of the factories: every status reachable through the real workflow."""

import pytest

from printlab.domain.statuses import Status
from printlab.models import Event

from .factories import make_job


@pytest.mark.parametrize("status", list(Status))
def test_every_status_is_reachable(session, storage, status):
    job = make_job(session, storage, status)
    assert job.status == status.value
    assert storage.resolve(job.file_path).is_file()
    assert storage.resolve(job.metadata_path).is_file()
    assert session.query(Event).filter_by(job_id=job.id).count() >= 1
