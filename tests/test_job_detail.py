"""The job page's read model: files, the timeline, and download checks."""

from __future__ import annotations

import pytest

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.services.views.job_detail import file_for_download, job_detail

from .factories import make_job


def test_detail_lists_files_with_the_authoritative_one_first(session, storage):
    job = make_job(session, storage, Status.PENDING)
    detail = job_detail(session, storage, job.id, DEFAULT_CATALOG)
    assert detail.files[0].is_authoritative and detail.files[0].relative == job.file_path
    assert {f.kind for f in detail.files} == {"model", "sidecar"}
    assert [t.event_type for t in detail.timeline] == ["JobCreated", "StaffApproved", "StatusChanged"]


def test_downloads_are_limited_to_the_jobs_own_files(session, storage):
    job = make_job(session, storage)
    other = make_job(session, storage, student_email="other@example.edu", student_name="Other Person")
    own = storage.resolve(job.file_path).name
    assert file_for_download(storage, job, own).name == own
    for name in (storage.resolve(other.file_path).name, f"../Pending/{own}", "../../etc/passwd", ""):
        with pytest.raises(FileNotFoundError):
            file_for_download(storage, job, name)
