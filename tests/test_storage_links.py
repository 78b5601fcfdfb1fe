"""Symbolic links planted in the storage tree (the shared drive is writable from lab computers).

A link named like one of a job's files, pointing outside the root or into another job's folder, is
never listed, served, moved, backed up or deleted as the job's file; `printlab check` reports it.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from printlab import config as config_module
from printlab.domain.statuses import Status
from printlab.models import Job
from printlab.services.files.storage import UnsafePath
from printlab.services.jobs import workflow
from printlab.services.jobs.records import job_files
from printlab.services.lab import workstations
from printlab.services.upkeep.findings import Kind, check
from printlab.services.views.job_detail import file_for_download, job_detail

from .factories import STAFF, actor, make_job, make_staff

ADMIN_PC, PASSWORD = "ADMIN-PC", "a-long-password-1"
SECRET = b"root:x:0:0:root:/root:/bin/bash\nPRINTLAB_SECRET_KEY=do-not-serve-me\n"


@pytest.fixture
def web(lab_env, session):
    from printlab.web.app import create_app

    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}, config=config_module.load(lab_env))
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, PASSWORD, is_admin=True)
    yield app
    app.extensions["printlab"].engine.dispose()


@pytest.fixture
def admin(web):
    client = web.test_client()
    assert client.post("/login", data={"workstation": ADMIN_PC, "password": PASSWORD}).status_code == 303
    return client


def plant(storage, job, tmp_path, other):  # type: ignore[no-untyped-def]
    """Two links in the job's folder, named like its files: one out of the root, one into another job's folder."""
    secret = tmp_path / "outside" / "settings.env"
    secret.parent.mkdir(exist_ok=True)
    secret.write_bytes(SECRET)
    folder = storage.resolve(job.file_path).parent
    out = folder / f"{job.display_name}.gcode"
    out.symlink_to(secret)
    inside = folder / f"{job.display_name}_copy.stl"
    inside.symlink_to(storage.resolve(other.file_path))
    return out.name, inside.name


def two_jobs(session, storage, status=Status.UPLOADED):  # type: ignore[no-untyped-def]
    job = make_job(session, storage, status)
    other = make_job(
        session, storage, Status.PENDING, student_name="Other Student", student_email="o@example.edu"
    )
    return job, other


# -- the storage itself ----------------------------------------------------------------------------


def test_job_files_never_lists_a_link(session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    plant(storage, job, tmp_path, other)
    assert sorted(job_files(storage, job)) == sorted([job.file_path, job.metadata_path])


def test_resolve_refuses_a_link_even_when_it_stays_inside_the_root(session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    _out, inside = plant(storage, job, tmp_path, other)
    with pytest.raises(UnsafePath):
        storage.resolve(f"Uploaded/{inside}")


def test_a_download_never_serves_a_link(session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    for name in plant(storage, job, tmp_path, other):
        with pytest.raises(FileNotFoundError):
            file_for_download(storage, job, name)


def test_a_status_move_leaves_the_links_behind(session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    out, inside = plant(storage, job, tmp_path, other)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2)
    pending = storage.root / "Pending"
    assert not (pending / out).exists() and not (pending / out).is_symlink()
    assert not (pending / inside).is_symlink()
    moved = session.get(Job, job.id)
    assert sorted(job_files(storage, moved)) == sorted([moved.file_path, moved.metadata_path])
    assert (storage.root / "Uploaded" / out).is_symlink()  # not ours to remove: check reports it


def test_a_link_where_the_move_would_put_the_jobs_file_stops_the_move_safely(session, storage, tmp_path):
    job = make_job(session, storage)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    planted = storage.root / "Pending" / job.file_path.rsplit("/", 1)[-1]
    planted.symlink_to(secret)
    with pytest.raises(UnsafePath, match="symbolic link"):
        workflow.approve(session, storage, job.id, actor=actor(), weight_g=42, time_hours=2.2)
    session.rollback()
    assert session.get(Job, job.id).status == Status.UPLOADED.value
    assert storage.resolve(job.file_path).is_file() and secret.read_bytes() == SECRET
    assert planted.is_symlink()


def test_check_reports_each_planted_link(session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    out, inside = plant(storage, job, tmp_path, other)
    found = check(session, storage)
    unsafe = {item.path: item for item in found.items if item.kind == Kind.UNSAFE}
    assert set(unsafe) == {f"Uploaded/{out}", f"Uploaded/{inside}"}
    assert all(item.repair is None for item in unsafe.values())
    assert not found.ok


def test_check_reports_a_link_in_the_temporary_folder(session, storage, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    (storage.root / ".incoming" / "upload-0123456789abcdef.part").symlink_to(secret)
    found = check(session, storage)
    assert [(i.kind, i.path) for i in found.items] == [
        (Kind.UNSAFE, ".incoming/upload-0123456789abcdef.part")
    ]


# -- through the pages -----------------------------------------------------------------------------


def test_pages_neither_serve_nor_list_planted_links(web, admin, session, storage, tmp_path):
    job, other = two_jobs(session, storage)
    out, inside = plant(storage, job, tmp_path, other)
    other_bytes = storage.resolve(other.file_path).read_bytes()
    for name in (out, inside):
        response = admin.get(f"/jobs/{job.id}/files/{name}")
        assert response.status_code == 404, name
        assert SECRET not in response.data and other_bytes not in response.data
    page = admin.get(f"/jobs/{job.id}")
    assert page.status_code == 200
    assert out not in page.get_data(as_text=True) and inside not in page.get_data(as_text=True)
    dialog = admin.get(f"/jobs/{job.id}/act/approve")
    assert dialog.status_code == 200
    assert out not in dialog.get_data(as_text=True) and inside not in dialog.get_data(as_text=True)
    model = admin.get(f"/jobs/{job.id}/model")
    assert model.status_code == 200 and model.data == storage.resolve(job.file_path).read_bytes()
    model.close()


def test_the_model_preview_never_serves_a_link(web, admin, session, storage, tmp_path):
    job = make_job(session, storage)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    upload = storage.resolve(job.file_path)
    upload.unlink()
    upload.symlink_to(secret)  # the student's model itself replaced by a link
    response = admin.get(f"/jobs/{job.id}/model")
    assert response.status_code == 404 and SECRET not in response.data
    assert admin.get(f"/jobs/{job.id}/files/{upload.name}").status_code == 404
    assert admin.get(f"/jobs/{job.id}").status_code == 200


def test_the_delete_files_page_lists_and_deletes_only_the_jobs_own_files(
    web, admin, session, storage, tmp_path
):
    job, other = two_jobs(session, storage, Status.REJECTED)
    out, inside = plant(storage, job, tmp_path, other)
    url = f"/admin/jobs/{job.id}/delete-files"
    page = admin.get(url)
    assert page.status_code == 200
    names = re.findall(r'name="files" value="([^"]+)"', page.get_data(as_text=True))
    assert sorted(names) == sorted([job.file_path, job.metadata_path])
    folder = storage.resolve(job.file_path).parent
    version = re.search(r'name="expected_version" value="([^"]+)"', page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    response = admin.post(
        url, data={"acting_as": STAFF, "reason": "Student asked", "files": names, "expected_version": version}
    )
    assert response.status_code == 303
    assert (folder / out).is_symlink() and (folder / inside).is_symlink()
    assert (tmp_path / "outside" / "settings.env").read_bytes() == SECRET
    assert storage.resolve(other.file_path).is_file()
    session.rollback()
    assert session.scalar(select(Job.file_path).where(Job.id == job.id)) is None
    assert job_detail(session, storage, job.id, _catalog()).files == []


def _catalog():  # type: ignore[no-untyped-def]
    from printlab.domain.catalog import DEFAULT_CATALOG

    return DEFAULT_CATALOG


def test_the_approve_dialog_explains_a_link_in_the_way(web, admin, session, storage, tmp_path):
    job = make_job(session, storage)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(SECRET)
    (storage.root / "Pending" / job.file_path.rsplit("/", 1)[-1]).symlink_to(secret)
    page = admin.get(f"/jobs/{job.id}/act/approve").get_data(as_text=True)
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    response = admin.post(
        f"/jobs/{job.id}/act/approve",
        data={**fields, "acting_as": STAFF, "weight_g": "42", "time_hours": "2"},
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 409, body[:2000]
    assert "is a symbolic link" in body and "Remove it, then try again." in body
    assert "Traceback" not in body and SECRET.decode() not in body
    session.rollback()
    assert session.get(Job, job.id).status == Status.UPLOADED.value


def test_the_model_analysis_never_reads_a_link(session, storage, tmp_path):
    from printlab.models import AnalysisState, Task
    from printlab.services.files import model_analysis

    job = make_job(session, storage)
    secret = tmp_path / "secret.stl"
    secret.write_bytes(storage.resolve(job.file_path).read_bytes())  # a model, but not the student's
    upload = storage.resolve(job.file_path)
    upload.unlink()
    upload.symlink_to(secret)
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    analysis = session.get(Job, job.id).analysis
    assert analysis.state == AnalysisState.FAILED and "no longer on the lab's storage" in analysis.error
    assert upload.is_symlink()
