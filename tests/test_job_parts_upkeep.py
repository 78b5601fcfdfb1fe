"""A job's parts in the lab's upkeep: every part's file moves with the job, the integrity check misses
none and the repair puts one back from its copy, a lost row is rebuilt with its parts from the sidecar,
and a backup brings every part back. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import PurePosixPath

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from printlab.db import make_engine, session_factory, upgrade
from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.domain.submission import validate_submission
from printlab.models import Job, JobPart
from printlab.services.files.storage import Storage
from printlab.services.jobs import submissions, workflow
from printlab.services.lab import workstations
from printlab.services.upkeep.findings import Kind, Result, check
from printlab.services.upkeep.integrity import scan
from printlab.services.upkeep.repair import repair_all

from .conftest import MODELS
from .factories import actor, form, make_staff
from .test_backup import checksums, destroy, restore_env, rows, run
from .test_integrity_repair import admin  # noqa: F401 - the fixture

PARTS = (("stl_binary_20mm_xyz_cube.stl", 2), ("3mf_consortium_multiple_cylinders.3mf", 1), ("box.obj", 3))


def submit_in_parts(session: Session, storage: Storage, **overrides: str) -> Job:
    """A three-part job with copies, through the submission service."""
    submission, errors = validate_submission(form(**overrides), PARTS[0][0], DEFAULT_CATALOG)
    assert submission is not None, errors
    parts = []
    for name, copies in PARTS:
        with open(MODELS / name, "rb") as handle:
            parts.append(submissions.NewPart(name, storage.receive(handle, 50 * 1024 * 1024), copies))
    return submissions.submit_parts(session, storage, submission, parts)


def part_files(job: Job) -> list[str]:
    folder = PurePosixPath(job.file_path or "").parent.as_posix()
    return [f"{folder}/{job.display_name}{suffix}" for suffix in (".stl", "_p2.3mf", "_p3.obj")]


def test_every_part_moves_with_the_job_and_the_check_finds_them_all(session, storage):
    job = submit_in_parts(session, storage)
    make_staff(session)
    workflow.approve(session, storage, job.id, actor=actor(), weight_g=30, time_hours=2)
    session.expire_all()
    job = session.get(Job, job.id)
    assert all(storage.resolve(path).is_file() for path in part_files(job))
    assert not list((storage.root / "Uploaded").iterdir())
    assert check(session, storage).items == []


def test_a_missing_part_is_found_and_put_back_from_its_copy(session, storage, admin):  # noqa: F811
    job = submit_in_parts(session, storage)
    part = part_files(job)[1]
    original = storage.resolve(part).read_bytes()
    name = PurePosixPath(part).name
    shutil.copyfile(storage.resolve(part), storage.root / "Completed" / name)
    storage.resolve(part).unlink()
    gone = submit_in_parts(session, storage, student_email="other@example.edu", student_name="Other Student")
    # The other job's files are other copies of the same models: its parts differ only by name.
    storage.resolve(part_files(gone)[2]).unlink()

    before = check(session, storage)
    missing = {i.path: i for i in before.items if i.kind == Kind.MISSING_FILE}
    assert set(missing) == {part, part_files(gone)[2]}
    assert missing[part].problem == "Part 2 of the job (3mf_consortium_multiple_cylinders.3mf) is missing."
    assert (
        missing[part].source == f"Completed/{name}" and "same SHA-256 as the upload" in missing[part].repair
    )
    assert missing[part_files(gone)[2]].repair is None  # no copy anywhere: from a backup

    outcomes = repair_all(session, storage, actor=admin)

    assert (Kind.MISSING_FILE, part, Result.DONE) in {(o.kind, o.path, o.result) for o in outcomes}
    assert storage.resolve(part).read_bytes() == original
    assert not (storage.root / "Completed" / name).exists()
    assert [(i.kind, i.path) for i in check(session, storage).items] == [
        (Kind.MISSING_FILE, part_files(gone)[2])
    ]


def test_a_lost_row_is_rebuilt_with_its_parts_from_the_sidecar(
    backend,
    database_url,
    empty_database_url,
    session,
    storage,
    lab_env,
    admin,  # noqa: F811
):
    job = submit_in_parts(session, storage)
    expected = [(p.number, p.original_filename, p.file_hash, p.copies) for p in job.parts]
    # The database is lost; a fresh one knows nothing of the job, the files and sidecar remain.
    upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with session_factory(engine)() as fresh:
            make_staff(fresh)
            workstations.add_workstation(fresh, admin.workstation, "admin-password-1", is_admin=True)
            outcomes = repair_all(fresh, storage, actor=admin)
            assert (Kind.MISSING_ROW, Result.DONE) in {(o.kind, o.result) for o in outcomes}
            rebuilt = fresh.get(Job, job.id)
            assert rebuilt is not None
            assert [(p.number, p.original_filename, p.file_hash, p.copies) for p in rebuilt.parts] == expected
            assert all(p.state == "PENDING" for p in rebuilt.parts)  # analysed again for the thumbnails
            assert not scan(fresh, storage).missing
    finally:
        engine.dispose()


def test_a_backup_brings_back_every_part_and_its_row(
    backend, database_url, empty_database_url, session, storage, lab_env, tmp_path
):
    job = submit_in_parts(session, storage)
    backup_dir = tmp_path / "backup"
    result = run(lab_env, "backup", str(backup_dir))
    assert result.exit_code == 0, result.output
    before = rows(database_url, JobPart)
    files = {path: hashlib.sha256(storage.resolve(path).read_bytes()).hexdigest() for path in part_files(job)}
    session.close()
    session.get_bind().dispose()
    destroy(database_url, backend, storage)

    restored_root = tmp_path / "restored-storage"
    result = run(restore_env(lab_env, empty_database_url, restored_root), "restore", str(backup_dir))
    assert result.exit_code == 0, result.output
    assert rows(empty_database_url, JobPart) == before and len(before) == 3
    restored = checksums(restored_root)
    assert {path: restored[path] for path in files} == files
    hashes = {row["number"]: row["file_hash"] for row in before.values()}
    assert [restored[path] for path in part_files(job)] == [hashes[1], hashes[2], hashes[3]]
    engine = make_engine(empty_database_url)
    try:
        with session_factory(engine)() as fresh:
            assert fresh.scalar(select(JobPart.copies).where(JobPart.number == 3)) == 3
            assert not scan(fresh, Storage(restored_root)).missing
            fresh.execute(text("SELECT 1"))
    finally:
        engine.dispose()
