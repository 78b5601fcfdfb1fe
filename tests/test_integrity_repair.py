"""Integrity check and repair on SQLite and PostgreSQL: a tree damaged every way, repaired, then clean; rows rebuilt from sidecars; nothing outside the root touched; the command and the admin page."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.config import SETTINGS
from printlab.db import make_engine, session_factory, write_transaction
from printlab.domain.statuses import Status
from printlab.models import MILESTONE_COLUMNS, AdminLogEntry, Event, Job, JobAnalysis, JobMilestone
from printlab.services.files.storage import TEMP_FOLDER, FileMove, Storage
from printlab.services.jobs import job_desk, workflow
from printlab.services.jobs.file_deletion import delete_job_files
from printlab.services.jobs.records import job_files, sidecar_record
from printlab.services.lab import workstations
from printlab.services.lab.actors import CONSOLE, Actor
from printlab.services.upkeep.findings import LOST_AND_FOUND, Kind, Result, check
from printlab.services.upkeep.repair import repair, repair_all

from .conftest import _fresh_postgres_database
from .factories import STAFF, make_job, make_staff, quote_token

ADMIN_PC = "FRONT-DESK"
STAFF_PC = "LAB-PC-2"
CONSOLE_ACTOR = Actor(None, CONSOLE)


class InjectedFault(Exception):
    """The crash a test simulates."""


# -- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def admin(session: Session) -> Actor:
    make_staff(session)
    workstations.add_workstation(session, ADMIN_PC, "admin-password-1", is_admin=True)
    return Actor(STAFF, ADMIN_PC)


def tree(root: Path) -> dict[str, bytes]:
    """Every regular file under `root` (temporary uploads aside) with its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink() and TEMP_FOLDER not in p.parts
    }


def found(session: Session, storage: Storage) -> set[tuple[str, str | None]]:
    """(kind, job id) of every finding."""
    return {(item.kind.value, item.job_id) for item in check(session, storage).items}


def row(session: Session, job_id: str) -> Job:
    session.rollback()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def columns(job: Job) -> dict[str, object]:
    return {c.key: getattr(job, c.key) for c in Job.__table__.columns}


def overrides(session: Session, job_id: str) -> list[Event]:
    session.rollback()
    return list(
        session.scalars(
            select(Event)
            .where(Event.job_id == job_id, Event.event_type == "AdminOverride")
            .order_by(Event.id)
        )
    )


def admin_log_entries(session: Session) -> list[AdminLogEntry]:
    session.rollback()
    return list(
        session.scalars(
            select(AdminLogEntry).where(AdminLogEntry.action == "IntegrityRepair").order_by(AdminLogEntry.id)
        )
    )


def sidecar_matches_row(storage: Storage, job: Job) -> bool:
    assert job.metadata_path
    return storage.resolve(job.metadata_path).read_bytes() == storage.encode_sidecar(sidecar_record(job))


def age(path: Path, days: float) -> None:
    moment = (utcnow() - timedelta(days=days)).timestamp()
    os.utime(path, (moment, moment))


def kill_after_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next moves commit but never remove their sources, as a process killed right after the commit."""
    monkeypatch.setattr(FileMove, "finish", lambda self, keep_folder=None: None)


def kill_before_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next commit fails and nothing is taken back, as a process killed between writing and committing."""
    real_commit = Session.commit
    fired: list[bool] = []

    def commit(self: Session) -> None:
        if not fired:
            fired.append(True)
            raise InjectedFault("killed before the commit")
        real_commit(self)

    monkeypatch.setattr(Session, "commit", commit)
    monkeypatch.setattr(FileMove, "abort", lambda self: None)


# -- damage, repair, clean ----------------------------------------------------------------------


def test_what_interrupted_moves_and_hand_edits_leave_is_repaired_then_the_check_is_clean(
    session, storage, admin, monkeypatch
):
    killed = make_job(session, storage, Status.READYTOPRINT, student_email="a@example.edu")
    kill_after_commit(monkeypatch)
    workflow.start_printing(session, storage, killed.id, actor=admin)
    monkeypatch.undo()
    # A reject killed between rewriting the sidecar in place and its commit: the sidecar is ahead.
    ahead = make_job(session, storage, Status.UPLOADED, student_email="b@example.edu")
    kill_before_commit(monkeypatch)
    with pytest.raises(InjectedFault):
        workflow.reject(session, storage, ahead.id, actor=admin, reasons=["Walls too thin"])
    monkeypatch.undo()
    noted = make_job(session, storage, Status.PENDING, student_email="c@example.edu")
    # Routine changes keep the sidecar in step (test_sidecars_in_step); a row edited by hand doesn't.
    with write_transaction(session):
        session.execute(
            update(Job)
            .where(Job.id == noted.id)
            .values(notes="Use the 0.6 mm nozzle", updated_at=Job.updated_at)
        )
    different = make_job(session, storage, Status.PRINTING, student_email="d@example.edu")
    name = PurePosixPath(different.file_path).name
    (storage.root / "Completed" / name).write_bytes(b"someone's edited copy")
    real_file = storage.resolve(different.file_path).read_bytes()

    before = check(session, storage)
    assert {(i.kind, i.job_id, i.path.split("/")[0]) for i in before.items} == {
        (Kind.STALE_COPY, killed.id, "ReadyToPrint"),  # the upload and the old sidecar
        (Kind.SIDECAR_MISMATCH, ahead.id, "Uploaded"),
        (Kind.SIDECAR_MISMATCH, noted.id, "Pending"),
        (Kind.STALE_COPY, different.id, "Completed"),
    }
    by_job = {(i.job_id, i.path): i for i in before.items}
    assert len([i for i in before.items if i.job_id == killed.id]) == 2
    assert all(i.repair.startswith("Remove it") for i in before.items if i.job_id == killed.id)
    assert "status" in by_job[ahead.id, ahead.metadata_path].problem
    assert "about the staff notes. PrintLab keeps them in step, so one of them was changed by hand" in (
        by_job[noted.id, noted.metadata_path].problem
    )
    assert f"{LOST_AND_FOUND}/Completed/" in by_job[different.id, f"Completed/{name}"].repair
    assert not before.ok and before.report.ok is False

    outcomes = repair_all(session, storage, actor=admin)

    assert {o.result for o in outcomes} == {Result.DONE}
    assert len(outcomes) == len(before.items)
    after = check(session, storage)
    assert after.ok, after.items
    assert storage.folder_files("ReadyToPrint") == []
    assert {p.name for p in storage.folder_files("Printing")} >= {
        PurePosixPath(row(session, killed.id).file_path).name
    }
    # The database is the truth: the rejection that never committed is not in the sidecar any more.
    assert row(session, ahead.id).status == Status.UPLOADED
    assert storage.read_sidecar(ahead.metadata_path)["status"] == "UPLOADED"
    for job_id in (ahead.id, noted.id):
        assert sidecar_matches_row(storage, row(session, job_id))
        [event] = overrides(session, job_id)
        assert event.details["override"] == "rewrite_sidecar"
        assert (event.triggered_by, event.workstation_id) == (STAFF, ADMIN_PC)
    # A copy that differs from the job's file is kept, never deleted.
    assert (storage.root / LOST_AND_FOUND / "Completed" / name).read_bytes() == b"someone's edited copy"
    assert storage.resolve(different.file_path).read_bytes() == real_file
    logged = admin_log_entries(session)
    assert sorted(e.details["repair"] for e in logged) == [
        "stale_copy_removed",
        "stale_copy_removed",
        "stale_copy_to_lost_and_found",
    ]
    assert all(e.triggered_by == STAFF and e.workstation_id == ADMIN_PC for e in logged)
    assert not any("JaneDoe" in str(e.details) for e in logged)  # job files are named without the student

    files = tree(storage.root)
    assert repair_all(session, storage, actor=admin) == []  # a second run does nothing
    assert tree(storage.root) == files
    assert len(admin_log_entries(session)) == len(logged)


def test_missing_files_sidecars_and_misplaced_jobs_are_put_right(session, storage, admin):
    lost = make_job(session, storage, Status.PRINTING, student_email="a@example.edu")
    original = storage.resolve(lost.file_path).read_bytes()
    name = PurePosixPath(lost.file_path).name
    shutil.copyfile(storage.resolve(lost.file_path), storage.root / "Completed" / name)
    storage.resolve(lost.file_path).unlink()
    no_sidecar = make_job(session, storage, Status.UPLOADED, student_email="b@example.edu")
    storage.resolve(no_sidecar.metadata_path).unlink()
    garbled = make_job(session, storage, Status.UPLOADED, student_email="c@example.edu")
    storage.resolve(garbled.metadata_path).write_bytes(b'{"status": "UPLOA')
    # An older database put back over newer files: the row says Printing, the files are in Completed/.
    misplaced = make_job(session, storage, Status.COMPLETED, student_email="d@example.edu")
    version = misplaced.updated_at
    session.execute(update(Job).where(Job.id == misplaced.id).values(status=Status.PRINTING.value))
    session.commit()
    gone = make_job(session, storage, Status.PENDING, student_email="e@example.edu")
    storage.resolve(gone.file_path).unlink()

    before = check(session, storage)
    assert {(i.kind, i.job_id) for i in before.items} == {
        (Kind.MISSING_FILE, lost.id),
        (Kind.STALE_COPY, lost.id),  # the copy that will be put back
        (Kind.MISSING_SIDECAR, no_sidecar.id),
        (Kind.SIDECAR_MISMATCH, garbled.id),
        (Kind.MISPLACED, misplaced.id),
        (Kind.SIDECAR_MISMATCH, misplaced.id),
        (Kind.MISSING_FILE, gone.id),
    }
    put_back = next(i for i in before.items if i.kind == Kind.MISSING_FILE and i.job_id == lost.id)
    assert put_back.source == f"Completed/{name}" and "same SHA-256 as the upload" in put_back.repair
    unrepairable = next(i for i in before.items if i.job_id == gone.id)
    assert unrepairable.repair is None and "restore it from a backup" in unrepairable.problem

    outcomes = repair_all(session, storage, actor=admin)

    assert {(o.kind, o.path.split("/")[0], o.result) for o in outcomes} == {
        (Kind.MISSING_FILE, "Printing", Result.DONE),
        (Kind.STALE_COPY, "Completed", Result.NOTHING),  # the copy put back is no longer there
        (Kind.MISSING_SIDECAR, "Uploaded", Result.DONE),
        (Kind.SIDECAR_MISMATCH, "Uploaded", Result.DONE),
        (Kind.MISPLACED, "Completed", Result.DONE),
        (Kind.SIDECAR_MISMATCH, "Completed", Result.NOTHING),  # the move wrote a fresh sidecar
    }
    after = check(session, storage)
    assert [(i.kind, i.job_id) for i in after.items] == [(Kind.MISSING_FILE, gone.id)]
    assert storage.resolve(lost.file_path).read_bytes() == original
    assert not (storage.root / "Completed" / name).exists()
    assert [e.details["override"] for e in overrides(session, lost.id)] == ["restore_file"]
    assert storage.read_sidecar(no_sidecar.metadata_path)["id"] == no_sidecar.id
    assert sidecar_matches_row(storage, row(session, garbled.id))
    moved = row(session, misplaced.id)
    assert moved.file_path == f"Printing/{PurePosixPath(misplaced.file_path).name}"
    assert moved.metadata_path.startswith("Printing/") and sidecar_matches_row(storage, moved)
    assert moved.updated_at > version
    assert [p.name for p in storage.folder_files("Completed")] == []
    assert "move_to_status_folder" in [e.details["override"] for e in overrides(session, misplaced.id)]

    files = tree(storage.root)
    assert repair_all(session, storage, actor=admin) == []
    assert tree(storage.root) == files
    refused = repair(session, storage, unrepairable.key, actor=admin)
    assert refused.result == Result.REFUSED and "can't repair" in refused.message


def test_a_database_older_than_the_files_wins_and_the_newer_sidecar_is_kept(session, storage, admin):
    job = make_job(session, storage, Status.PENDING)
    pending_row = {k: v for k, v in columns(job).items() if k != "id"}
    upload = storage.resolve(job.file_path).read_bytes()
    workflow.confirm(session, storage, quote_token(session, job.id))
    confirmed = row(session, job.id)
    newer_sidecar = storage.resolve(confirmed.metadata_path).read_bytes()
    # The database is put back from a backup taken before the student confirmed.
    session.execute(update(Job).where(Job.id == job.id).values(**pending_row))
    session.commit()

    assert {(i.kind, i.path.split("/")[0]) for i in check(session, storage).items} == {
        (Kind.MISSING_FILE, "Pending"),
        (Kind.MISSING_SIDECAR, "Pending"),
        (Kind.STALE_COPY, "ReadyToPrint"),  # the upload, and the sidecar the confirmation wrote
    }
    repair_all(session, storage, actor=admin)

    assert check(session, storage).ok
    assert row(session, job.id).status == Status.PENDING
    assert storage.resolve(job.file_path).read_bytes() == upload
    assert storage.read_sidecar(job.metadata_path)["status"] == "PENDING"
    assert storage.folder_files("ReadyToPrint") == []
    # What the database no longer knows is not thrown away: the newer sidecar waits in Lost+Found.
    kept = storage.root / LOST_AND_FOUND / "ReadyToPrint" / PurePosixPath(confirmed.metadata_path).name
    assert kept.read_bytes() == newer_sidecar


def test_orphans_go_to_lost_and_found_and_are_never_deleted_abandoned_uploads_are_removed(
    session, storage, admin
):
    job = make_job(session, storage, Status.PENDING)
    orphans = {
        "Pending/notes.txt": b"shopping list",
        "Uploaded/JaneDoe_Filament_TrueRed_ffffff.stl": b"solid nobody",
        f"Printing/{job.display_name}7.stl": b"another job's simple id",
    }
    for relative, data in orphans.items():
        (storage.root / relative).write_bytes(data)
    (storage.root / LOST_AND_FOUND / "Pending").mkdir(parents=True)
    (storage.root / LOST_AND_FOUND / "Pending" / "notes.txt").write_bytes(b"an older, different note")
    old_upload = storage.root / TEMP_FOLDER / "upload-0000000000000000.part"
    old_upload.write_bytes(b"half a model")
    age(old_upload, 2)
    arriving = storage.root / TEMP_FOLDER / "upload-1111111111111111.part"
    arriving.write_bytes(b"still arriving")

    before = check(session, storage)
    assert {(i.kind, i.path) for i in before.items} == {
        *((Kind.ORPHAN, path) for path in orphans),
        (Kind.LEFTOVER_UPLOAD, f"{TEMP_FOLDER}/{old_upload.name}"),
    }
    assert before.lost_and_found == 1

    one = next(i for i in before.items if i.path == "Pending/notes.txt")
    done = repair(session, storage, one.key, actor=admin)
    assert done.result == Result.DONE, done
    assert (storage.root / LOST_AND_FOUND / "Pending" / "notes (2).txt").read_bytes() == b"shopping list"
    assert (
        storage.root / LOST_AND_FOUND / "Pending" / "notes.txt"
    ).read_bytes() == b"an older, different note"
    assert repair(session, storage, one.key, actor=admin).result == Result.NOTHING
    assert all(storage.resolve(p).exists() for p in orphans if p != one.path)  # only the one asked for

    outcomes = repair_all(session, storage, actor=admin)

    assert [o.result for o in outcomes] == [Result.DONE] * 3
    assert check(session, storage).ok
    assert not old_upload.exists() and not (storage.root / LOST_AND_FOUND / "incoming").exists()
    assert arriving.read_bytes() == b"still arriving"
    for relative, data in orphans.items():
        if relative != one.path:
            assert (storage.root / LOST_AND_FOUND / relative).read_bytes() == data
    assert sidecar_matches_row(storage, row(session, job.id))
    logged = admin_log_entries(session)
    assert sorted(e.details["repair"] for e in logged) == [
        "leftover_upload_removed",
        *["orphan_to_lost_and_found"] * 3,
    ]
    assert {e.details["to"] for e in logged if e.details["path"] == one.path} == {
        f"{LOST_AND_FOUND}/Pending/notes (2).txt"
    }
    assert repair_all(session, storage, actor=admin) == []


def test_an_upload_abandoned_by_a_killed_server_is_reported_after_an_hour_and_removed(
    session, storage, lab_env
):
    incoming = storage.root / TEMP_FOLDER
    abandoned = incoming / "upload-0123456789abcdef.part"
    with open(abandoned, "wb") as out:  # 18.7 MB of a model, cut off where the server was killed
        for _ in range(187):
            out.write(b"facet normal 0 0 1\n" * 5000 + b"\0" * 5000)
    age(abandoned, 61 / (24 * 60))
    recent = incoming / "upload-fedcba9876543210.part"
    recent.write_bytes(b"half a model, still arriving")
    age(recent, 30 / (24 * 60))

    before = check(session, storage)
    assert [(i.kind, i.path) for i in before.items] == [
        (Kind.LEFTOVER_UPLOAD, f"{TEMP_FOLDER}/{abandoned.name}")
    ]
    assert before.items[0].repair.startswith("Remove it")
    assert re.search(
        r"last written \d{2} \w{3} \d{4} \d{2}:\d{2} C[SD]T\)", before.items[0].problem
    )  # lab time
    result = _run(lab_env)
    assert result.exit_code == 1 and "Abandoned uploads (1)" in result.output

    result = _run(lab_env, "--repair")
    assert result.exit_code == 0, result.output
    assert not abandoned.exists() and recent.read_bytes() == b"half a model, still arriving"
    assert not (storage.root / LOST_AND_FOUND).exists()
    [entry] = admin_log_entries(session)
    assert entry.details["repair"] == "leftover_upload_removed"
    assert entry.details["path"] == f"{TEMP_FOLDER}/{abandoned.name}"
    assert (entry.triggered_by, entry.workstation_id) == (None, CONSOLE)


def test_an_abandoned_upload_that_may_be_a_jobs_only_copy_is_kept(session, storage, admin):
    job = make_job(session, storage, Status.UPLOADED)
    upload = storage.resolve(job.file_path)
    data = upload.read_bytes()
    # The upload's name in .incoming survived (the server died before discarding it), then the job's
    # file itself was lost: these bytes are now the only copy of the student's model.
    leftover = storage.root / TEMP_FOLDER / "upload-00000000000000aa.part"
    os.link(upload, leftover)
    upload.unlink()
    stray = storage.root / TEMP_FOLDER / "someones-model.stl"
    stray.write_bytes(b"solid not ours")
    for path in (leftover, stray):
        age(path, 1)

    items = {i.path: i for i in check(session, storage).items if i.kind == Kind.LEFTOVER_UPLOAD}
    assert set(items) == {f"{TEMP_FOLDER}/{leftover.name}", f"{TEMP_FOLDER}/{stray.name}"}
    assert all(i.repair.startswith("Move it to") for i in items.values())
    for item in items.values():
        assert repair(session, storage, item.key, actor=admin).result == Result.DONE
    assert (storage.root / LOST_AND_FOUND / "incoming" / leftover.name).read_bytes() == data
    assert (storage.root / LOST_AND_FOUND / "incoming" / stray.name).read_bytes() == b"solid not ours"
    assert (
        sorted(e.details["repair"] for e in admin_log_entries(session))
        == ["leftover_upload_to_lost_and_found"] * 2
    )


def test_files_left_behind_by_an_admin_deletion_are_removed_others_kept(session, storage, admin):
    job = make_job(session, storage, Status.REJECTED)
    names = job_files(storage, job)
    kept = {name: storage.resolve(name).read_bytes() for name in names}
    delete_job_files(session, storage, job.id, actor=admin, reason="student asked", confirmed=names)
    # The deletion committed, then crashed before removing the files; someone also dropped a new one.
    for name, data in kept.items():
        storage.resolve(name).write_bytes(data)
    stray = f"Uploaded/{job.display_name}_v2.gcode"
    (storage.root / stray).write_bytes(b"G28")

    assert {(i.kind, i.path) for i in check(session, storage).items} == {
        *((Kind.STALE_COPY, name) for name in names),
        (Kind.STALE_COPY, stray),
    }
    repair_all(session, storage, actor=admin)

    assert check(session, storage).ok
    assert [p for p in storage.folder_files("Uploaded")] == []
    assert (storage.root / LOST_AND_FOUND / stray).read_bytes() == b"G28"
    assert not any((storage.root / LOST_AND_FOUND / name).exists() for name in names)


# -- rebuilding rows from sidecars --------------------------------------------------------------


@pytest.fixture
def other_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    """A second fresh, migrated, empty database on the same backend: the lab's database, lost."""
    if backend == "sqlite":
        path = tmp_path / "lost.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        with session_factory(engine)() as session:
            yield session
        engine.dispose()
        return
    with _fresh_postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        engine = make_engine(url)
        with session_factory(engine)() as session:
            yield session
        engine.dispose()


def test_rows_missing_from_the_database_are_rebuilt_from_their_sidecars(
    session, storage, other_database, monkeypatch
):
    jobs = [make_job(session, storage, s, student_email=f"s{i}@example.edu") for i, s in enumerate(Status)]
    by_status = {Status(job.status): job for job in jobs}
    job_desk.update_notes(
        session, storage, by_status[Status.PRINTING].id, "Brim on", actor=Actor(STAFF, "LAB-PC-1")
    )
    with write_transaction(session):
        analysis = session.get(JobAnalysis, by_status[Status.UPLOADED].id)
        analysis.state, analysis.results = "DONE", {"triangles": 12, "watertight": True}
    # Sidecars are rewritten on the next move or repair; bring them up to date so they hold every column.
    assert {o.result for o in repair_all(session, storage, actor=CONSOLE_ACTOR)} == {Result.DONE}
    # And one job was being moved when everything was lost: its sidecar is in two folders.
    moving = make_job(session, storage, Status.READYTOPRINT, student_email="moving@example.edu")
    kill_after_commit(monkeypatch)
    workflow.start_printing(session, storage, moving.id, actor=Actor(STAFF, "LAB-PC-1"))
    monkeypatch.undo()
    originals = {job.id: columns(row(session, job.id)) for job in [*jobs, moving]}
    analysed = row(session, by_status[Status.UPLOADED].id).analysis.results
    files = {
        k: v for k, v in tree(storage.root).items() if not k.startswith(f"ReadyToPrint/{moving.display_name}")
    }

    lost = other_database
    before = check(lost, storage)
    assert {(i.kind, i.job_id) for i in before.items} == {(Kind.MISSING_ROW, job_id) for job_id in originals}
    two_folders = next(i for i in before.items if i.job_id == moving.id)
    assert two_folders.path.startswith("Printing/")  # the newer of its two sidecars
    pending = next(i for i in before.items if i.job_id == by_status[Status.PENDING].id)
    assert "resend" in pending.repair

    outcomes = repair_all(lost, storage, actor=CONSOLE_ACTOR)

    assert all(o.result == Result.DONE for o in outcomes), outcomes
    assert check(lost, storage).ok
    for job_id, original in originals.items():
        rebuilt = columns(row(lost, job_id))
        assert rebuilt.pop("confirm_token") is None
        original.pop("confirm_token")
        assert rebuilt == original, job_id
        [event] = overrides(lost, job_id)
        assert event.details["override"] == "rebuilt_from_sidecar"
        assert event.details.get("needs_resend", False) == (original["status"] == Status.PENDING)
        assert (event.triggered_by, event.workstation_id) == (None, CONSOLE)
    assert row(lost, by_status[Status.UPLOADED].id).analysis.results == analysed
    assert tree(storage.root) == files  # the stale copies in ReadyToPrint/ are gone, nothing else changed
    assert repair_all(lost, storage, actor=CONSOLE_ACTOR) == []


def test_a_job_rebuilt_past_uploaded_gets_its_milestone_row(session, storage, other_database):
    # Every job past Uploaded has a milestone row, which the reports read (with copies of the job's
    # figures) instead of the job; one rebuilt from its sidecar too.
    statuses = (Status.UPLOADED, Status.PENDING, Status.COMPLETED, Status.REJECTED)
    jobs = {
        status: make_job(session, storage, status, student_email=f"m{i}@example.edu", class_number="ME 2110")
        for i, status in enumerate(statuses)
    }
    lost = other_database
    assert all(o.result == Result.DONE for o in repair_all(lost, storage, actor=CONSOLE_ACTOR))

    rows = {m.job_id: m for m in lost.scalars(select(JobMilestone))}
    # A rejected job may never have been approved: like a rejected upload, no row.
    assert set(rows) == {jobs[Status.PENDING].id, jobs[Status.COMPLETED].id}
    for status in (Status.PENDING, Status.COMPLETED):
        job, kept = jobs[status], rows[jobs[status].id]
        copied = (kept.uploaded_at, kept.printer, kept.material, kept.time_hours, kept.weight_g)
        assert copied == (job.created_at, job.printer, job.material, job.time_hours, job.weight_g)
        assert None not in copied
        assert (kept.discipline, kept.class_number) == (job.discipline, "ME 2110")
        # When it reached each stage was in its event trail, lost with its row: no stage times.
        assert all(getattr(kept, column) is None for column in MILESTONE_COLUMNS.values())

    # The rebuilt job's next move is kept in its row like any other's.
    make_staff(lost)
    done = jobs[Status.COMPLETED].id
    workflow.record_pickup(lost, storage, done, actor=Actor(STAFF, "LAB-PC-1"), method="CASH", weighed_g=40)
    lost.expire_all()
    picked = lost.get(JobMilestone, done)
    assert picked is not None and picked.picked_up_at is not None and picked.hours_to_pickup is None


# -- outside the storage root -------------------------------------------------------------------


def test_nothing_outside_the_storage_root_is_ever_touched(session, storage, admin, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    linked = make_job(session, storage, Status.PENDING, student_email="a@example.edu")
    (outside / "model.gcode").write_bytes(b"G28 outside")
    (storage.root / "Pending" / f"{linked.display_name}.gcode").symlink_to(outside / "model.gcode")
    # A sidecar of a job with no row, whose file path leads out of the root.
    foreign = make_job(session, storage, Status.UPLOADED, student_email="b@example.edu")
    record = sidecar_record(foreign)
    base = "JohnRoe_Filament_TrueRed_abcdef"
    record.update(
        id=uuid.uuid4().hex,
        display_name=base,
        file_path=f"../outside/{base}.stl",
        metadata_path=f"Uploaded/{base}.stl.metadata.json",
    )
    (outside / f"{base}.stl").write_bytes(b"solid outside")
    (storage.root / "Uploaded" / f"{base}.stl.metadata.json").write_bytes(storage.encode_sidecar(record))
    # A row pointing out of the root, and a file whose only namesake is behind a linked folder.
    escaped = make_job(session, storage, Status.UPLOADED, student_email="c@example.edu")
    shutil.copyfile(storage.resolve(escaped.file_path), outside / "escaped.stl")
    session.execute(update(Job).where(Job.id == escaped.id).values(file_path="../outside/escaped.stl"))
    session.commit()
    hidden = make_job(session, storage, Status.PRINTING, student_email="d@example.edu")
    shutil.move(storage.resolve(hidden.file_path), outside / PurePosixPath(hidden.file_path).name)
    (storage.root / "Elsewhere").symlink_to(outside)
    # Lost+Found itself leads out of the root.
    (outside / "lost").mkdir()
    (storage.root / LOST_AND_FOUND).symlink_to(outside / "lost")
    (storage.root / "Archived" / "stray.stl").write_bytes(b"?")
    outside_before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outside.rglob("*") if p.is_file()}

    before = check(session, storage)
    items = {(i.kind, i.path): i for i in before.items}
    assert items[Kind.UNSAFE, f"Pending/{linked.display_name}.gcode"].repair is None
    rebuild = items[Kind.MISSING_ROW, f"Uploaded/{base}.stl.metadata.json"]
    assert rebuild.repair is None and "leaves the storage root" in rebuild.problem
    assert items[Kind.MISSING_FILE, "../outside/escaped.stl"].repair is None
    # ... and nothing else of that job is touched: its sidecar may be all that says where its file is.
    assert {i.kind: i.repair for i in before.items if i.job_id == escaped.id} == {
        Kind.MISSING_FILE: None,
        Kind.MISPLACED: None,
        Kind.SIDECAR_MISMATCH: None,
        Kind.STALE_COPY: None,  # its upload and sidecar, still in Uploaded/
    }
    assert items[Kind.MISSING_FILE, hidden.file_path].repair is None  # not found behind the link

    outcomes = {o.path: o for o in repair_all(session, storage, actor=admin)}

    assert outcomes["Archived/stray.stl"].result == Result.REFUSED
    assert "leaves the storage root" in outcomes["Archived/stray.stl"].message
    assert {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in outside.rglob("*") if p.is_file()
    } == outside_before
    assert (storage.root / "Pending" / f"{linked.display_name}.gcode").is_symlink()
    assert (storage.root / "Archived" / "stray.stl").read_bytes() == b"?"
    after = check(session, storage)
    assert {i.key for i in after.items} == {i.key for i in before.items}
    assert not after.ok


# -- the command -------------------------------------------------------------------------------


def _run(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    from printlab.cli import main

    clean = {s.env: None for s in SETTINGS} | env
    return CliRunner().invoke(main, ["check", *args], env=clean, catch_exceptions=False)


def test_printlab_check_reports_repairs_and_exits_by_what_remains(session, storage, lab_env):
    job = make_job(session, storage, Status.PENDING)
    (storage.root / "Pending" / "notes.txt").write_bytes(b"?")
    storage.resolve(job.metadata_path).unlink()

    reported = _run(lab_env)
    assert reported.exit_code == 1, reported.output
    assert "Files that belong to no job (1)" in reported.output
    assert "Pending/notes.txt" in reported.output and "Lost+Found/Pending/" in reported.output
    assert "Jobs whose sidecar is missing (1)" in reported.output
    assert (storage.root / "Pending" / "notes.txt").exists()  # the report changed nothing

    refused = _run(lab_env, "--repair", "--acting-as", "Nobody Here")
    assert refused.exit_code == 1 and "not on the active staff list" in refused.stderr
    assert (storage.root / "Pending" / "notes.txt").exists()

    repaired = _run(lab_env, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "[done] Pending/notes.txt" in repaired.output
    assert "No problems found" in repaired.output
    [event] = overrides(session, job.id)
    assert (event.triggered_by, event.workstation_id) == (None, CONSOLE)

    again = _run(lab_env)
    assert again.exit_code == 0 and "No problems found" in again.output

    storage.resolve(job.file_path).unlink()
    make_staff(session)
    unrepairable = _run(lab_env, "--repair", "--acting-as", STAFF)
    assert unrepairable.exit_code == 1
    assert (
        "Nothing to repair" in unrepairable.output and "Jobs whose file is missing (1)" in unrepairable.output
    )


# -- the admin page ----------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _sign_in(client, workstation_id: str) -> None:  # type: ignore[no-untyped-def]
    """What a sign-in leaves in the session: the workstation and its current session epoch."""
    with client.session_transaction() as browser:
        browser["workstation_id"] = workstation_id
        browser["workstation_epoch"] = 0  # a workstation's sessions start in epoch 0


def test_the_admin_page_reports_and_repairs_from_an_admin_workstation_only(client, session, storage, admin):
    workstations.add_workstation(session, STAFF_PC, "staff-password-1")
    job = make_job(session, storage, Status.PENDING)
    with write_transaction(session):  # a row edited by hand: its sidecar no longer agrees
        session.execute(
            update(Job).where(Job.id == job.id).values(notes="Check the base", updated_at=Job.updated_at)
        )
    (storage.root / "Pending" / "notes.txt").write_bytes(b"?")
    (storage.root / "Uploaded" / "todo.txt").write_bytes(b"?")

    signed_out = client.get("/admin/integrity")
    assert signed_out.status_code == 302 and "/login" in signed_out.headers["Location"]
    _sign_in(client, STAFF_PC)
    assert client.get("/admin/integrity").status_code == 403
    assert client.post("/admin/integrity/repair", data={"all": "1"}).status_code in (400, 403)
    assert (storage.root / "Pending" / "notes.txt").exists()

    _sign_in(client, ADMIN_PC)
    page = client.get("/admin/integrity")
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert (
        "Files that belong to no job (2)" in body and "Sidecars that disagree with the database (1)" in body
    )
    assert "Move it to Lost+Found/Pending/" in body and "Rewrite the sidecar from the database" in body
    assert "Repair all 3" in body
    token = CSRF.search(body).group(1)
    key = next(i.key for i in check(session, storage).items if i.path == "Pending/notes.txt")

    unnamed = client.post("/admin/integrity/repair", data={"csrf_token": token, "key": key})
    assert unnamed.status_code == 400 and "Choose who is acting" in unnamed.get_data(as_text=True)
    assert (storage.root / "Pending" / "notes.txt").exists()

    one = client.post("/admin/integrity/repair", data={"csrf_token": token, "key": key, "acting_as": STAFF})
    body = one.get_data(as_text=True)
    assert one.status_code == 200
    assert "Moved to Lost+Found/Pending/notes.txt" in body
    assert (storage.root / LOST_AND_FOUND / "Pending" / "notes.txt").exists()
    assert (storage.root / "Uploaded" / "todo.txt").exists()
    assert "Files that belong to no job (1)" in body

    everything = client.post(
        "/admin/integrity/repair", data={"csrf_token": token, "all": "1", "acting_as": STAFF}
    )
    body = everything.get_data(as_text=True)
    assert everything.status_code == 200
    assert "Moved to Lost+Found/Uploaded/todo.txt" in body and "from the database" in body
    assert "No problems found" in body
    assert check(session, storage).ok
    [entry] = [e for e in admin_log_entries(session) if e.details["path"] == "Uploaded/todo.txt"]
    assert (entry.triggered_by, entry.workstation_id) == (STAFF, ADMIN_PC)
