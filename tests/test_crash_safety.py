"""Crash safety of status changes (SPEC §5) and the integrity scan that checks it, on SQLite and PostgreSQL.

A fault at any point of a move — in-process exceptions, a failed commit, or a SIGKILLed child process —
must leave the job in its old or its new status, with every file where the row points, plus at most
stale copies that the scan reports.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.domain.statuses import Status
from printlab.models import Event, Job, OutboxMessage, Payment
from printlab.services.files import storage as storage_module
from printlab.services.files.storage import TEMP_FOLDER, Storage
from printlab.services.jobs.records import sidecar_record
from printlab.services.upkeep.integrity import (
    IntegrityReport,
    LeftoverUpload,
    Misplaced,
    MissingFile,
    Orphan,
    SidecarMismatch,
    StaleCopy,
    UnsafeEntry,
    scan,
)

from .conftest import SLICED
from .crash_child import TRANSITIONS, run_transition
from .factories import make_job

CHILD = Path(__file__).with_name("crash_child.py")
GCODE = SLICED / "prusaslicer_2.1.1_mk3s_body_stripped.gcode"


class InjectedFault(Exception):
    """The crash a test simulates."""


# -- helpers -----------------------------------------------------------------------------------


def tree(storage: Storage) -> dict[str, bytes]:
    """Every file under the root (temporary uploads aside), root-relative, with its bytes."""
    return {
        p.relative_to(storage.root).as_posix(): p.read_bytes()
        for p in sorted(storage.root.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.parent.name != TEMP_FOLDER
    }


def fresh(session: Session, job_id: str) -> Job:
    """The job as committed now (ending the session's snapshot, which on SQLite would be older)."""
    session.rollback()
    job = session.get(Job, job_id)
    assert job is not None
    return job


def db_state(session: Session, job_id: str) -> dict[str, object]:
    """What a transition changes in the database for one job: the row and its events, emails, payments."""
    job = fresh(session, job_id)
    counts = {
        table.__name__: session.scalar(select(func.count()).select_from(table).where(table.job_id == job_id))
        for table in (Event, OutboxMessage, Payment)
    }
    return {"row": sidecar_record(job), "locked_by": job.locked_by, **counts}


def prepare(session: Session, storage: Storage, transition: str, index: int) -> str:
    """A job ready for `transition`; an approval also gets a sliced file saved beside the upload."""
    source, _ = TRANSITIONS[transition]
    job = make_job(session, storage, source, student_email=f"student{index}@example.edu")
    if transition == "approve":
        shutil.copyfile(GCODE, storage.resolve(f"{source.folder}/{job.display_name}.gcode"))
    return job.id


def assert_files_where_the_row_points(storage: Storage, job: Job) -> None:
    assert job.file_path and job.metadata_path
    assert storage.resolve(job.file_path).is_file(), job.file_path
    assert storage.resolve(job.metadata_path).is_file(), job.metadata_path
    folder = PurePosixPath(job.file_path).parent.as_posix()
    assert folder == (job.status_enum.folder or folder)


def only_stale_copies(report: IntegrityReport, *, sidecar_ahead: Collection[str] = ()) -> None:
    """Nothing missing, misplaced or unowned; sidecar mismatches only for the jobs named."""
    assert report.missing == []
    assert report.orphans == []
    assert report.misplaced == []
    assert report.unsafe == []
    assert report.leftover_uploads == []
    assert {m.job_id for m in report.sidecar_mismatches} <= set(sidecar_ahead)


# -- the integrity scan ------------------------------------------------------------------------


def test_a_healthy_lab_scans_clean(session, storage):
    jobs = [
        make_job(session, storage, status, student_email=f"s{i}@example.edu")
        for i, status in enumerate(Status)
    ]
    in_flight = storage.root / TEMP_FOLDER / "upload-0123456789abcdef.part"
    in_flight.write_bytes(b"still arriving")
    report = scan(session, storage)
    assert report.ok, list(report.findings())
    assert not report.serious
    assert report.jobs_checked == len(jobs)
    assert report.files_checked == 2 * len(jobs)  # each job: its upload and its sidecar


def test_scan_reports_a_missing_file_and_a_missing_sidecar(session, storage):
    lost_file = make_job(session, storage, Status.PENDING, student_email="a@example.edu")
    lost_sidecar = make_job(session, storage, Status.UPLOADED, student_email="b@example.edu")
    storage.resolve(lost_file.file_path).unlink()
    storage.resolve(lost_sidecar.metadata_path).unlink()
    report = scan(session, storage)
    assert report.serious
    assert sorted(report.missing, key=lambda m: m.kind) == [
        MissingFile(lost_file.id, "PENDING", "file", lost_file.file_path, "missing"),
        MissingFile(lost_sidecar.id, "UPLOADED", "sidecar", lost_sidecar.metadata_path, "missing"),
    ]
    assert report.orphans == [] and report.stale_copies == []


def test_scan_reports_files_that_belong_to_no_job(session, storage):
    job = make_job(session, storage)
    for name in (
        "Pending/JaneDoe_Filament_TrueRed_ffffff.stl",
        "Uploaded/notes.txt",
        f"Printing/{job.id}.stl",
    ):
        (storage.root / name).write_bytes(b"?")
    # a longer simple id is a different job, never this one's file
    (storage.root / f"Uploaded/{job.display_name}7.stl").write_bytes(b"?")
    report = scan(session, storage)
    assert report.orphans == [
        Orphan("Pending/JaneDoe_Filament_TrueRed_ffffff.stl"),
        Orphan(f"Printing/{job.id}.stl"),
        Orphan(f"Uploaded/{job.display_name}7.stl"),
        Orphan("Uploaded/notes.txt"),
    ]
    assert not report.serious


def test_scan_leaves_a_sidecar_being_written_alone_until_it_is_an_hour_old(session, storage):
    """Storage.write_atomic writes `.name.xxxx.tmp` beside the file, then renames it over: while the
    worker rewrites a sidecar, the scan (and so a repair) must not take that file for an orphan."""
    job = make_job(session, storage, Status.PENDING)
    sidecar = storage.resolve(job.metadata_path)
    writing = sidecar.with_name(f".{sidecar.name}.1a2b3c4d.tmp")
    writing.write_bytes(b"{}")
    report = scan(session, storage)
    assert report.orphans == [] and report.stale_copies == []
    assert report.files_checked >= 2
    later = scan(session, storage, now=utcnow() + timedelta(minutes=61))
    assert later.orphans == [Orphan(f"Pending/{writing.name}")]


def test_scan_reports_copies_left_in_another_folder(session, storage):
    job = make_job(session, storage, Status.READYTOPRINT)
    name = PurePosixPath(job.file_path).name
    shutil.copyfile(storage.resolve(job.file_path), storage.root / "Pending" / name)
    (storage.root / "Uploaded" / f"{job.display_name}.gcode").write_bytes(b"G28")
    report = scan(session, storage)
    assert report.stale_copies == [
        StaleCopy(job.id, f"Pending/{name}", "ReadyToPrint"),
        StaleCopy(job.id, f"Uploaded/{job.display_name}.gcode", "ReadyToPrint"),
    ]
    assert report.missing == [] and report.orphans == [] and report.sidecar_mismatches == []


def test_scan_reports_a_sidecar_that_disagrees_with_the_row(session, storage):
    changed = make_job(session, storage, Status.PENDING, student_email="a@example.edu")
    garbled = make_job(session, storage, Status.UPLOADED, student_email="b@example.edu")
    record = storage.read_sidecar(changed.metadata_path)
    record.update(status="READYTOPRINT", cost_usd="0.01")
    storage.write_atomic(storage.resolve(changed.metadata_path), storage.encode_sidecar(record))
    storage.resolve(garbled.metadata_path).write_bytes(b'{"status": "UPLOA')
    report = scan(session, storage)
    assert sorted(report.sidecar_mismatches, key=lambda m: m.unreadable) == [
        SidecarMismatch(changed.id, changed.metadata_path, ("cost_usd", "status")),
        SidecarMismatch(garbled.id, garbled.metadata_path, (), unreadable=True),
    ]
    assert report.missing == []


def test_scan_reports_a_job_whose_folder_is_not_its_status_folder(session, storage):
    job = make_job(session, storage, Status.PRINTING)
    for path in (job.file_path, job.metadata_path):
        storage.resolve(path).rename(storage.root / "Completed" / PurePosixPath(path).name)
    session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(
            file_path=job.file_path.replace("Printing/", "Completed/"),
            metadata_path=job.metadata_path.replace("Printing/", "Completed/"),
        )
    )
    session.commit()
    report = scan(session, storage)
    assert report.misplaced == [Misplaced(job.id, "PRINTING", "Completed", "Printing")]
    assert report.missing == [] and report.stale_copies == []


def test_scan_reports_only_temporary_uploads_older_than_an_hour(storage, session):
    incoming = storage.root / TEMP_FOLDER
    (incoming / "upload-new.part").write_bytes(b"arriving")
    old = incoming / "upload-old.part"
    old.write_bytes(b"abandoned")
    over_an_hour_ago = (utcnow() - timedelta(minutes=61)).timestamp()
    os.utime(old, (over_an_hour_ago, over_an_hour_ago))
    report = scan(session, storage)
    assert [leftover.path for leftover in report.leftover_uploads] == [f"{TEMP_FOLDER}/upload-old.part"]
    assert isinstance(report.leftover_uploads[0], LeftoverUpload)
    later = scan(session, storage, now=utcnow() + timedelta(minutes=61))
    assert [leftover.path for leftover in later.leftover_uploads] == [
        f"{TEMP_FOLDER}/upload-new.part",
        f"{TEMP_FOLDER}/upload-old.part",
    ]


def test_scan_never_follows_paths_out_of_the_root(session, storage, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    job = make_job(session, storage, Status.UPLOADED)
    # Someone points the row at files outside the root, where files of the same name do exist.
    escaped = outside / PurePosixPath(job.file_path).name
    shutil.copyfile(storage.resolve(job.file_path), escaped)
    shutil.copyfile(storage.resolve(job.metadata_path), outside / "sidecar.json")
    (storage.root / "Uploaded" / "link.json").symlink_to(outside / "sidecar.json")
    (storage.root / "Pending" / f"{job.display_name}.gcode").symlink_to(escaped)
    session.execute(
        update(Job)
        .where(Job.id == job.id)
        .values(file_path=f"../outside/{escaped.name}", metadata_path="Uploaded/link.json")
    )
    session.commit()
    report = scan(session, storage)
    assert report.missing == [
        MissingFile(job.id, "UPLOADED", "file", f"../outside/{escaped.name}", "outside the storage root"),
        MissingFile(job.id, "UPLOADED", "sidecar", "Uploaded/link.json", "outside the storage root"),
    ]
    assert report.unsafe == [
        UnsafeEntry(f"Pending/{job.display_name}.gcode", "symbolic link (not followed)"),
        UnsafeEntry("Uploaded/link.json", "symbolic link (not followed)"),
    ]
    assert report.sidecar_mismatches == []


def test_scan_changes_nothing_and_leaves_the_callers_session_alone(session, storage):
    job = make_job(session, storage, Status.PENDING)
    storage.resolve(job.metadata_path).write_bytes(b"{}")
    (storage.root / "Archived" / "stray.stl").write_bytes(b"?")
    before_files = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.root.rglob("*") if p.is_file()}
    before_db = db_state(session, job.id)
    job = fresh(session, job.id)
    job.notes = "typed but not saved"
    report = scan(session, storage)
    assert not report.ok
    assert list(session.dirty) == [job] and job.notes == "typed but not saved"  # the caller's work is intact
    session.rollback()
    assert {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in storage.root.rglob("*") if p.is_file()
    } == before_files
    assert db_state(session, job.id) == before_db


# -- faults injected in-process ----------------------------------------------------------------

FAULTS = [
    (transition, fault)
    for transition in TRANSITIONS
    for fault in ("placed", "sidecar-written", "commit", "source-removed")
    # a rejection keeps the folder: nothing is placed and no source is removed
    if not (transition == "reject" and fault in ("placed", "source-removed"))
]


def inject(monkeypatch: pytest.MonkeyPatch, fault: str) -> list[str]:
    """Make the first `fault` raise; returns the list of faults that fired."""
    fired: list[str] = []
    if fault == "commit":
        real_commit = Session.commit

        def commit(self: Session) -> None:
            if not fired:
                fired.append(fault)
                raise InjectedFault("the database refused the commit")
            real_commit(self)

        monkeypatch.setattr(Session, "commit", commit)
    else:

        def checkpoint(step: str) -> None:
            if step == fault and not fired:
                fired.append(step)
                raise InjectedFault(step)

        monkeypatch.setattr(storage_module, "_checkpoint", checkpoint)
    return fired


@pytest.mark.parametrize(("transition", "fault"), FAULTS)
def test_a_fault_during_a_transition_loses_nothing(session, storage, monkeypatch, transition, fault):
    source, target = TRANSITIONS[transition]
    job_id = prepare(session, storage, transition, 0)
    before_db, before_files = db_state(session, job_id), tree(storage)
    fired = inject(monkeypatch, fault)

    try:
        run_transition(transition, session, storage, job_id)
    except InjectedFault:
        pass
    else:  # only a fault after the commit may be absorbed (the cleanup of sources is best effort)
        assert fault == "source-removed"
    assert fired == [fault]
    monkeypatch.undo()

    job = fresh(session, job_id)
    assert_files_where_the_row_points(storage, job)
    report = scan(session, storage)
    if fault == "source-removed":  # after the commit: the new state, with the old folder's leftovers
        assert job.status == target
        only_stale_copies(report)
        assert {s.path.split("/")[0] for s in report.stale_copies} == {source.folder}
        return
    # Before the commit: the database and every file are exactly as they were.
    assert job.status == source
    assert db_state(session, job_id) == before_db
    assert tree(storage) == before_files
    assert report.ok, list(report.findings())
    # ... and the same action simply works when tried again.
    run_transition(transition, session, storage, job_id)
    job = fresh(session, job_id)
    assert job.status == target
    assert_files_where_the_row_points(storage, job)
    assert scan(session, storage).ok


# -- SIGKILL in a child process ----------------------------------------------------------------


def crash(
    lab_env: dict[str, str], transition: str, jobs: dict[str, str]
) -> tuple[dict[str, tuple[int, str | None]], str]:
    """Run the child on every (crash point → job) at once.

    Returns point → (exit code, step it died at), and the child's stderr for failure messages.
    """
    reports = tempfile.mkdtemp(prefix="printlab-crash-")
    try:
        child = subprocess.run(
            [
                sys.executable,
                str(CHILD),
                transition,
                *(f"{job_id}@{point}" for point, job_id in jobs.items()),
            ],
            env={**os.environ, **lab_env, "PRINTLAB_CRASH_REPORTS": reports},
            capture_output=True,
            text=True,
            timeout=120,
        )
        died = {name: (Path(reports) / name).read_text() for name in os.listdir(reports)}
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    assert child.returncode == 0, child.stderr
    codes = {}
    for line in child.stdout.splitlines():  # written by the parent alone, one line per child
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "exit":
            codes[parts[1]] = parts[2]
    assert set(codes) == set(jobs), child.stdout + child.stderr
    return {point: (int(codes[point]), died.get(point)) for point in jobs}, child.stderr


def checkpoints_of(session, storage, monkeypatch, transition: str) -> list[str]:
    """The checkpoints a transition passes, from a dry run on a job of its own."""
    job_id = prepare(session, storage, transition, 999)
    seen: list[str] = []
    monkeypatch.setattr(storage_module, "_checkpoint", seen.append)
    run_transition(transition, session, storage, job_id)
    monkeypatch.undo()
    assert "sidecar-written" in seen
    return seen


@pytest.mark.parametrize("transition", list(TRANSITIONS))
def test_sigkill_at_any_point_of_a_transition_loses_nothing(
    session, storage, lab_env, monkeypatch, transition
):
    source, target = TRANSITIONS[transition]
    steps = checkpoints_of(session, storage, monkeypatch, transition)
    crash_points = [f"checkpoint:{n}" for n in range(1, len(steps) + 1)] + ["after-commit"]
    where = dict(zip(crash_points, [*steps, "after-commit"], strict=True))
    jobs = {point: prepare(session, storage, transition, i) for i, point in enumerate(crash_points)}
    before = {point: db_state(session, job_id) for point, job_id in jobs.items()}

    results, stderr = crash(lab_env, transition, jobs)
    for point in crash_points:
        assert results[point] == (-signal.SIGKILL, where[point]), f"{point}\n{stderr}"

    report = scan(session, storage)
    same_folder = source.folder is not None and target.folder is None
    committed = {p for p in crash_points if where[p] in ("source-removed", "after-commit")}
    # A rejection rewrites the sidecar in place before its commit: a kill between the two leaves a
    # sidecar one step ahead of the row (reported, and rewritten from the row by a repair or a retry).
    ahead = {jobs[p] for p in crash_points if same_folder and p not in committed}
    only_stale_copies(report, sidecar_ahead=ahead)
    assert {s.job_id for s in report.stale_copies} <= set(jobs.values())  # the dry run left none

    for point, job_id in jobs.items():
        job = fresh(session, job_id)
        assert_files_where_the_row_points(storage, job)
        if point in committed:
            assert job.status == target, point
            continue
        assert job.status == source, point
        assert db_state(session, job_id) == before[point], point
        run_transition(transition, session, storage, job_id)  # the retry succeeds
        assert fresh(session, job_id).status == target
        assert scan(session, storage).for_job(job_id) == [], point


def test_a_kill_after_the_commit_leaves_only_copies_in_the_old_folder(session, storage, lab_env):
    job_id = prepare(session, storage, "start_printing", 0)
    old_files = sorted(p.name for p in storage.folder_files("ReadyToPrint"))
    results, stderr = crash(lab_env, "start_printing", {"after-commit": job_id})
    assert results == {"after-commit": (-signal.SIGKILL, "after-commit")}, stderr
    job = fresh(session, job_id)
    assert job.status == Status.PRINTING
    assert_files_where_the_row_points(storage, job)
    report = scan(session, storage)
    only_stale_copies(report)
    assert sorted(s.path for s in report.stale_copies) == [f"ReadyToPrint/{n}" for n in old_files]
    assert sorted(p.name for p in storage.folder_files("Printing")) == old_files
    # The sidecar in the new folder describes the committed row.
    assert storage.read_sidecar(job.metadata_path)["status"] == "PRINTING"
