"""The job page's read model: files, the timeline, and download checks."""

from __future__ import annotations

import pytest

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.statuses import Status
from printlab.services import mail
from printlab.services.lab import staff as staff_service
from printlab.services.mail.render import Links
from printlab.services.mail.transport import FolderTransport
from printlab.services.views.job_detail import file_for_download, job_detail

from .factories import STAFF, make_job


def test_detail_lists_files_with_the_authoritative_one_first(session, storage):
    job = make_job(session, storage, Status.PENDING)
    detail = job_detail(session, storage, job.id, DEFAULT_CATALOG)
    assert detail.files[0].is_authoritative and detail.files[0].relative == job.file_path
    assert {f.kind for f in detail.files} == {"model", "sidecar"}
    # Approving writes StaffApproved and StatusChanged (SPEC §4); History tells it once.
    assert [t.event_type for t in detail.timeline] == ["JobCreated", "StaffApproved"]
    assert [t.sentence for t in detail.timeline] == [
        "Submitted by the student",
        "Approved by Alex Rivera — quote $4.20 emailed",
    ]


def test_history_names_which_email_went_out_and_marks_a_departed_staff_member(session, storage, tmp_path):
    job = make_job(session, storage, Status.PRINTING)
    mail.deliver_due(
        session,
        mail.Mailer(
            transport=FolderTransport(tmp_path / "mail"),
            links=Links("http://printlab.test", "x" * 32),
            mail_from=None,
            identity="test:1:mail",
        ),
    )
    staff_service.set_active(session, STAFF, False)
    sentences = [t.sentence for t in job_detail(session, storage, job.id, DEFAULT_CATALOG).timeline]
    assert sentences[:4] == [
        "Submitted by the student",
        f"Approved by {STAFF} (inactive) — quote $4.20 emailed",
        "Confirmed by the student",
        f"Moved from Ready to Print to Printing by {STAFF} (inactive) — on the Prusa MK4S",
    ]
    # Delivered after the job moved on, the quote is dropped; the others name which email went out.
    assert sorted(sentences[4:]) == ["Confirmation received email sent", "Receipt email sent"]


def test_downloads_are_limited_to_the_jobs_own_files(session, storage):
    job = make_job(session, storage)
    other = make_job(session, storage, student_email="other@example.edu", student_name="Other Person")
    own = storage.resolve(job.file_path).name
    assert file_for_download(storage, job, own).name == own
    for name in (storage.resolve(other.file_path).name, f"../Pending/{own}", "../../etc/passwd", ""):
        with pytest.raises(FileNotFoundError):
            file_for_download(storage, job, name)
