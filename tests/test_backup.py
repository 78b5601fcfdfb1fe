"""Backup and restore on SQLite and PostgreSQL: a snapshot taken while jobs arrive and move, everything lost, restored and compared."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from printlab.config import SETTINGS
from printlab.db import make_engine, session_factory
from printlab.domain.statuses import Status
from printlab.models import Event, Job
from printlab.services.files.storage import Storage
from printlab.services.jobs import workflow
from printlab.services.upkeep import backup as backup_module
from printlab.services.upkeep.integrity import Orphan, StaleCopy, scan

from .conftest import SLICED
from .factories import actor, make_job, submit_job

MODEL_FILES = ["stl_binary_20mm_xyz_cube.stl", "box.obj", "3mf_inch_featuretype.3MF"]


def run(env: dict[str, str], *args: str) -> Result:
    from printlab.cli import main

    clean: dict[str, str | None] = {s.env: None for s in SETTINGS}
    return CliRunner().invoke(main, list(args), env=clean | env, catch_exceptions=False)


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.exit_code == code, result.output
    error = result.stderr.strip()
    assert error.startswith("printlab: ") and "\n" not in error and "Traceback" not in result.output
    return error


def rows(url: str, model: type[Job] | type[Event]) -> dict[Any, dict[str, Any]]:
    """Every row of the job or event table, by id, as plain values."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return {row.id: dict(row._mapping) for row in connection.execute(select(model.__table__))}
    finally:
        engine.dispose()


def checksums(root: Path) -> dict[str, str]:
    """SHA-256 of every regular file under the root, hidden top-level folders (.incoming) aside."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if relative.parts[0].startswith(".") or path.is_symlink() or not path.is_file():
            continue
        found[relative.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def manifest_checksums(manifest: dict[str, Any]) -> dict[str, str]:
    return {
        item["path"].removeprefix("storage/"): item["sha256"]
        for item in manifest["files"]
        if item["path"].startswith("storage/")
    }


def destroy(url: str, backend: str, storage: Storage) -> None:
    """Lose the database and every file, as a dead disk would."""
    if backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        for lost in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            lost.unlink(missing_ok=True)
    else:
        engine = make_engine(url)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    shutil.rmtree(storage.root)


def restore_env(lab_env: dict[str, str], url: str, storage_root: Path) -> dict[str, str]:
    return lab_env | {"PRINTLAB_DATABASE_URL": url, "PRINTLAB_STORAGE_DIR": str(storage_root)}


class Submitter(threading.Thread):
    """Students submitting one job after another through the real service, on its own engine."""

    def __init__(self, database_url: str, storage: Storage):
        super().__init__(daemon=True)
        self.engine = make_engine(database_url)
        self.storage = storage
        self.committed: list[str] = []
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.changed = threading.Condition()

    def run(self) -> None:
        try:
            with session_factory(self.engine)() as session:
                number = 0
                while not self.stop.is_set():
                    job = submit_job(
                        session,
                        self.storage,
                        MODEL_FILES[number % len(MODEL_FILES)],
                        student_email=f"student{number}@example.edu",
                        student_name=f"Student Number{number}",
                    )
                    number += 1
                    with self.changed:
                        self.committed.append(job.id)
                        self.changed.notify_all()
                    time.sleep(0.005)
        except BaseException as exc:  # reported by the test, never lost in the thread
            self.failure = exc
        finally:
            self.engine.dispose()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.committed) >= count or self.failure, timeout=20)
        assert self.failure is None, self.failure


def test_backup_while_jobs_arrive_and_move_restores_the_snapshot_exactly(
    backend, database_url, empty_database_url, session, storage, lab_env, tmp_path, monkeypatch
):
    for status in Status:
        make_job(session, storage, status, student_email=f"{status.value.lower()}@example.edu")
    moving = [
        make_job(session, storage, student_email=f"moving{n}@example.edu", student_name=f"Moving Student{n}")
        for n in range(2)
    ]
    # A slicer file saved beside one upload: it must travel with the job like the upload does.
    gcode = storage.root / "Uploaded" / f"{moving[0].display_name}.gcode"
    shutil.copyfile(SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode", gcode)
    gcode_sha256 = hashlib.sha256(gcode.read_bytes()).hexdigest()
    moved_ids = {job.id for job in moving}
    before_jobs, before_events = rows(database_url, Job), rows(database_url, Event)

    submitter = Submitter(database_url, storage)
    approver = session_factory(make_engine(database_url))()

    def after_snapshot(step: str) -> None:
        # Jobs keep arriving after the snapshot, and two jobs in it are approved (their files move
        # to Pending/) before the storage copy starts: the backup must still hold them in Uploaded/.
        assert step == "database-snapshot-taken"
        submitter.wait_for(len(submitter.committed) + 1)
        for job in moving:
            workflow.approve(approver, storage, job.id, actor=actor(), weight_g=30, time_hours=1.5)

    monkeypatch.setattr(backup_module, "_checkpoint", after_snapshot)
    submitter.start()
    try:
        submitter.wait_for(2)
        backup_dir = tmp_path / "backup"
        result = run(lab_env, "backup", str(backup_dir))
        submitter.wait_for(len(submitter.committed) + 1)  # still submitting after the backup
    finally:
        submitter.stop.set()
        submitter.join(timeout=30)
        approver.close()
        approver.get_bind().dispose()
    assert submitter.failure is None, submitter.failure
    assert result.exit_code == 0, result.output
    assert f"Backup written to {backup_dir}" in result.output
    assert "changed while the backup ran were matched to the database snapshot" in result.output

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    live_jobs, live_events = rows(database_url, Job), rows(database_url, Event)
    session.close()
    session.get_bind().dispose()
    destroy(database_url, backend, storage)
    assert not storage.root.exists()

    restored_root = tmp_path / "restored-storage"
    result = run(restore_env(lab_env, empty_database_url, restored_root), "restore", str(backup_dir))
    assert result.exit_code == 0, result.output
    assert "Backup checked: every checksum matches" in result.output
    assert "Integrity check:" in result.output and "missing" not in result.output.lower()

    jobs, events = rows(empty_database_url, Job), rows(empty_database_url, Event)
    assert manifest["backend"] == backend
    assert manifest["counts"] == {"jobs": len(jobs), "events": len(events)}
    assert manifest["tables"]["job"] == len(jobs) and manifest["schema_revision"]

    # Every job of the snapshot, exactly as it was then: the moved ones as before their approval.
    assert set(before_jobs) <= set(jobs) <= set(live_jobs)
    for job_id, row in jobs.items():
        assert row == (before_jobs[job_id] if job_id in moved_ids else live_jobs[job_id])
    assert all(jobs[job_id]["file_path"].startswith("Uploaded/") for job_id in moved_ids)
    # Submissions in the snapshot are a prefix of the order they committed in: nothing in between lost.
    kept = [job_id for job_id in submitter.committed if job_id in jobs]
    assert kept == submitter.committed[: len(kept)] and 2 <= len(kept) < len(submitter.committed)
    # Events are append-only, so each restored one equals the live one; the moved jobs' approvals came after.
    for event_id, row in events.items():
        assert row == live_events[event_id] and row["job_id"] in jobs
    for job_id in jobs:
        restored_ids = {e for e, row in events.items() if row["job_id"] == job_id}
        source = before_events if job_id in moved_ids else live_events
        assert restored_ids == {e for e, row in source.items() if row["job_id"] == job_id}

    # Every file byte for byte as the manifest recorded it, and each job's file is its upload.
    restored = checksums(restored_root)
    assert restored == manifest_checksums(manifest)
    for row in jobs.values():
        assert restored[row["file_path"]] == row["file_hash"]
    assert restored[f"Uploaded/{gcode.name}"] == restored[f"Pending/{gcode.name}"] == gcode_sha256
    actions = {
        (note["job_id"], PurePosixPath(note["path"]).name): note["action"] for note in manifest["reconciled"]
    }
    for job in moving:
        assert actions[(job.id, PurePosixPath(job.file_path).name)].startswith("copied from Pending/")
        assert actions[(job.id, PurePosixPath(job.metadata_path).name)].startswith(
            "rewritten from the snapshot"
        )
    assert actions[(moving[0].id, gcode.name)].startswith("copied from Pending/")

    # The restored lab is whole: no file missing, every sidecar agrees; what is left over is the
    # moved jobs' later copies and the files of jobs that arrived after the snapshot.
    engine = make_engine(empty_database_url)
    try:
        with session_factory(engine)() as check:
            report = scan(check, Storage(restored_root))
        assert report.jobs_checked == len(jobs)
        assert not report.missing and not report.sidecar_mismatches and not report.misplaced
        assert {copy.job_id for copy in report.stale_copies} == moved_ids
        later = {j: live_jobs[j]["display_name"] for j in submitter.committed if j not in jobs}
        leftovers = 0
        for finding in report.findings():
            if isinstance(finding, StaleCopy):
                continue
            leftovers += 1
            if isinstance(finding, Orphan):
                assert PurePosixPath(finding.path).name.startswith(tuple(later.values())), finding
            else:  # a job newer than the snapshot, whose sidecar can rebuild its row
                assert getattr(finding, "job_id", None) in later, finding
        assert leftovers
        # The audit trail is append-only again: the triggers came back with the schema.
        with engine.connect() as connection, pytest.raises(DBAPIError, match="append-only"):
            connection.execute(text("UPDATE event SET event_type = 'Edited'"))
    finally:
        engine.dispose()


def make_backup(database_url: str, storage: Storage, session, lab_env, directory: Path) -> list[Job]:  # type: ignore[no-untyped-def]
    jobs = [
        make_job(session, storage, Status.UPLOADED, student_email="one@example.edu"),
        make_job(session, storage, Status.PRINTING, student_email="two@example.edu"),
    ]
    result = run(lab_env, "backup", str(directory))
    assert result.exit_code == 0, result.output
    return jobs


def test_a_damaged_backup_is_refused_naming_the_file(
    backend, database_url, empty_database_url, session, storage, lab_env, tmp_path
):
    backup_dir = tmp_path / "backup"
    jobs = make_backup(database_url, storage, session, lab_env, backup_dir)
    model = f"storage/{jobs[1].file_path}"
    database = "database.sqlite" if backend == "sqlite" else "database.pgdump"

    def flip_a_byte(copy: Path) -> None:
        data = bytearray((copy / model).read_bytes())
        data[len(data) // 2] ^= 0x01
        (copy / model).write_bytes(bytes(data))

    damages = {
        "one byte changed": (flip_a_byte, model, "checksum does not match"),
        "truncated": (lambda c: os.truncate(c / database, 100), database, "100 bytes"),
        "deleted": (lambda c: (c / model).unlink(), model, "missing"),
        "added": (
            lambda c: (c / "storage/Pending/extra.stl").write_bytes(b"x"),
            "storage/Pending/extra.stl",
            "not in the manifest",
        ),
    }
    target = tmp_path / "target-storage"
    env = restore_env(lab_env, empty_database_url, target)
    for name, (damage, path, reason) in damages.items():
        copy = tmp_path / f"damaged-{name.replace(' ', '-')}"
        shutil.copytree(backup_dir, copy)
        damage(copy)
        error = one_line_error(run(env, "restore", str(copy)))
        assert f"{path} ({reason}" in error and "damaged, nothing was restored" in error, (name, error)
        # Nothing was touched: the database still has no tables, the storage root was not made.
        engine = make_engine(empty_database_url)
        assert inspect(engine).get_table_names() == []
        engine.dispose()
        assert not target.exists()
    assert "not a complete PrintLab backup" in one_line_error(run(env, "restore", str(tmp_path / "nowhere")))


def test_a_database_or_storage_with_data_is_replaced_only_with_force(
    backend, database_url, empty_database_url, session, storage, lab_env, tmp_path
):
    backup_dir = tmp_path / "backup"
    backed_up = {job.id for job in make_backup(database_url, storage, session, lab_env, backup_dir)}
    later = make_job(session, storage, Status.PENDING, student_email="later@example.edu").id
    session.execute(text("CREATE TABLE scratch (id INTEGER PRIMARY KEY)"))
    session.commit()
    session.close()
    session.get_bind().dispose()
    before = checksums(storage.root)

    # An empty database, but a storage root with files: refused, naming the storage root.
    error = one_line_error(
        run(restore_env(lab_env, empty_database_url, storage.root), "restore", str(backup_dir))
    )
    assert (
        error == f"printlab: the storage root {storage.root} is not empty (6 files); use --force to replace"
    )
    engine = make_engine(empty_database_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()

    # The lab's own database and storage: refused, nothing changed.
    error = one_line_error(run(lab_env, "restore", str(backup_dir)))
    assert "is not empty (" in error and "3 jobs" in error and "use --force to replace" in error
    assert set(rows(database_url, Job)) == backed_up | {later}
    assert checksums(storage.root) == before

    result = run(lab_env, "restore", "--force", str(backup_dir))
    assert result.exit_code == 0, result.output
    assert set(rows(database_url, Job)) == backed_up
    engine = make_engine(database_url)
    assert "scratch" not in inspect(engine).get_table_names()
    engine.dispose()
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert checksums(storage.root) == manifest_checksums(manifest)
    set_aside = next(storage.root.glob(".before-restore-*"))
    assert f"What the storage root held before is in {set_aside}" in result.output
    assert checksums(set_aside) == before  # the replaced files are kept, out of the lab's folders
    assert "Integrity check: 2 jobs and 4 files checked: no findings." in result.output


def test_backup_refuses_a_folder_with_files_or_inside_the_storage_root(
    backend, database_url, session, storage, lab_env, tmp_path
):
    make_job(session, storage, student_email="one@example.edu")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("last week's")
    assert "is not empty" in one_line_error(run(lab_env, "backup", str(full)))
    assert [p.name for p in full.iterdir()] == ["notes.txt"]
    assert "inside the storage root" in one_line_error(
        run(lab_env, "backup", str(storage.root / "Uploaded" / "b"))
    )

    # Without the PostgreSQL client tools: one clear line, and no half-written backup left behind.
    new = tmp_path / "new"
    result = run(lab_env | {"PATH": str(tmp_path / "no-tools")}, "backup", str(new))
    if backend == "sqlite":  # SQLite needs no outside tool
        assert result.exit_code == 0, result.output
        assert (new / "manifest.json").is_file() and new.stat().st_mode & 0o777 == 0o700
        return
    assert "pg_dump not found on PATH: install the PostgreSQL client tools" in one_line_error(result)
    assert not new.exists()
    # A pg_dump that fails (here: older than the server) is reported with its error and detail lines.
    tools = tmp_path / "old-tools"
    tools.mkdir()
    (tools / "pg_dump").write_text(
        "#!/bin/sh\necho 'pg_dump: error: aborting because of server version mismatch' >&2\n"
        "echo 'pg_dump: detail: server version: 15.2; pg_dump version: 13.1' >&2\nexit 1\n"
    )
    (tools / "pg_dump").chmod(0o755)
    empty = tmp_path / "empty"
    empty.mkdir()
    error = one_line_error(run(lab_env | {"PATH": str(tools)}, "backup", str(empty)))
    assert error == (
        "printlab: pg_dump failed: pg_dump: error: aborting because of server version mismatch; "
        "pg_dump: detail: server version: 15.2; pg_dump version: 13.1"
    )
    assert empty.is_dir() and list(empty.iterdir()) == []


def test_links_are_recorded_not_followed_and_damage_found_before_is_kept(
    backend, database_url, empty_database_url, session, storage, lab_env, tmp_path
):
    pending = make_job(session, storage, Status.PENDING, student_email="one@example.edu")
    lost = make_job(session, storage, Status.UPLOADED, student_email="two@example.edu")
    edited = make_job(session, storage, Status.COMPLETED, student_email="three@example.edu")
    secret = tmp_path / "outside.txt"
    secret.write_text("not the lab's")
    (storage.root / "Pending" / "link.stl").symlink_to(secret)
    # A hard link left by an interrupted move, an upload still arriving, a staff member's sub-folder.
    source = storage.resolve(pending.file_path)
    os.link(source, storage.root / "Uploaded" / source.name)
    (storage.root / ".incoming" / "upload-arriving.part").write_bytes(b"half")
    (storage.root / "Completed" / "photos").mkdir()
    (storage.root / "Completed" / "photos" / "print.jpg").write_bytes(b"\xff\xd8photo")
    # Damage that was there before the backup: it must come back as it was, not be hidden.
    storage.resolve(lost.file_path).unlink()
    sidecar = storage.resolve(edited.metadata_path)
    sidecar.write_text(sidecar.read_text().replace('"COMPLETED"', '"PRINTING"'))

    backup_dir = tmp_path / "backup"
    assert run(lab_env, "backup", str(backup_dir)).exit_code == 0
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["symlinks"] == [{"path": "Pending/link.stl", "target": str(secret)}]
    assert not os.path.lexists(backup_dir / "storage/Pending/link.stl")
    files = manifest_checksums(manifest)
    assert files[f"Uploaded/{source.name}"] == files[pending.file_path]
    assert not (backup_dir / f"storage/Uploaded/{source.name}").samefile(
        backup_dir / f"storage/{pending.file_path}"
    )
    assert "Completed/photos/print.jpg" in files and not any(p.startswith(".incoming") for p in files)
    assert {"path": ".incoming", "reason": "hidden folder at the top of the root"} in manifest["skipped"]
    actions = {note["path"]: note["action"] for note in manifest["reconciled"]}
    assert actions[lost.file_path].startswith("not found in any status folder")
    assert actions[edited.metadata_path].startswith("kept as found")

    restored_root = tmp_path / "restored"
    result = run(restore_env(lab_env, empty_database_url, restored_root), "restore", str(backup_dir))
    assert (
        one_line_error(result, code=2) == "printlab: restored, but 1 job file(s) are missing (listed above)"
    )
    assert f"Not restored: symbolic link Pending/link.stl -> {secret}" in result.output
    assert f"missing: {lost.file_path} (file of job {lost.id}, UPLOADED): missing" in result.output
    assert not os.path.lexists(restored_root / "Pending/link.stl")
    assert (restored_root / "Completed/photos/print.jpg").read_bytes() == b"\xff\xd8photo"
    assert checksums(restored_root) == files
    engine = make_engine(empty_database_url)
    try:
        with session_factory(engine)() as check:
            report = scan(check, Storage(restored_root))
    finally:
        engine.dispose()
    assert [(m.job_id, m.kind) for m in report.missing] == [(lost.id, "file")]
    assert [(m.job_id, m.fields) for m in report.sidecar_mismatches] == [(edited.id, ("status",))]
    assert [(s.job_id, s.path) for s in report.stale_copies] == [(pending.id, f"Uploaded/{source.name}")]
    assert "1 missing file, 1 sidecar disagreeing with the database, 1 stale copy." in result.output
