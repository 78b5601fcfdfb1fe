"""The upload-analysis task: analyse a job's model (each of its parts) in the worker and keep the result with the
job and its sidecar."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.catalog import Catalog
from printlab.domain.naming import extension_of
from printlab.models import AnalysisState, Job, JobAnalysis, Task
from printlab.services import tasks
from printlab.services.files.storage import Storage, StorageError
from printlab.services.jobs.records import job_folder, lock_job, parts_of, sidecar_record
from printlab.services.lab.catalog import load_catalog

log = logging.getLogger(__name__)

TASK_KIND = "analyse_model"


def request(session: Session, job: Job, now: datetime) -> None:
    """Inside the submission's transaction: mark the analysis pending and queue the task."""
    session.add(JobAnalysis(job_id=job.id, state=AnalysisState.PENDING))
    tasks.enqueue(session, TASK_KIND, job=job, now=now)


def request_again(session: Session, job: Job, now: datetime) -> None:
    """Inside a replacement's transaction: forget the old file's analysis and queue the new one's."""
    analysis = job.analysis
    if analysis is None:
        request(session, job, now)
        return
    analysis.state = AnalysisState.PENDING
    analysis.results = None
    analysis.error = None
    analysis.thumbnail_png = None
    analysis.analysed_at = None
    tasks.enqueue(session, TASK_KIND, job=job, now=now)


def model_path(storage: Storage, job: Job) -> Path | None:
    """The student's original upload (the authoritative file may later be a slicer file)."""
    folder = job_folder(job)
    if folder is None or not job.display_name:
        return None
    return storage.resolve(f"{folder}/{job.display_name}{extension_of(job.original_filename or '')}")


def run(session: Session, storage: Storage, task: Task) -> None:
    """Analyse the task's job (each of its parts, then the whole job). A model that can't be analysed
    is recorded as FAILED with the reason; a file caught mid-move is retried."""
    job = session.get(Job, task.job_id)
    if job is None:
        return
    if job.parts:
        _run_parts(session, storage, job)
        return
    try:
        path = model_path(storage, job)
    except StorageError:  # a link (never followed) or a path out of the root where the model should be
        path = None
    extension = extension_of(job.original_filename or "")
    catalog = load_catalog(session)
    method, printer = job.material or "", job.printer or ""
    session.rollback()  # don't hold a read transaction open during the heavy work
    outcome = _analyse(path, extension, catalog, method, printer)
    _store(session, storage, task.job_id, **outcome)


def _analyse(
    path: Path | None, extension: str, catalog: Catalog, method: str, printer: str
) -> dict[str, Any]:
    """One model's check as _store's keywords: results and thumbnail, or the error. Raises RetryLater."""
    # Imported here: trimesh and numpy take a moment to load, and only the worker needs them.
    from printlab.services.files.analysis import AnalysisFailed, analyse_with_thumbnail

    if path is None:
        return {"error": "The model file is no longer on the lab's storage."}
    if not path.is_file():
        raise tasks.RetryLater("model file not found (moved while analysing?)")
    try:
        results, thumbnail = analyse_with_thumbnail(
            path, extension, catalog=catalog, method=method, printer=printer
        )
    except AnalysisFailed as exc:
        return {"error": str(exc)}
    except FileNotFoundError as exc:
        raise tasks.RetryLater("model file moved while analysing") from exc
    return {"results": results, "thumbnail": thumbnail}


def _run_parts(session: Session, storage: Storage, job: Job) -> None:
    """Each part not yet checked, stored as it is done (a retry goes on from there), then the whole
    job's check from all of them into the job's analysis."""
    from printlab.services.files.analysis import combine_parts

    job_id = job.id
    catalog = load_catalog(session)
    method, printer = job.material or "", job.printer or ""
    folder = job_folder(job)
    waiting = [
        part
        for part in parts_of(job)
        if part.state != AnalysisState.DONE and part.state != AnalysisState.FAILED
    ]
    session.rollback()
    for part in waiting:
        try:
            path = storage.resolve(f"{folder}/{part.stored_name}") if folder else None
        except StorageError:
            path = None
        outcome = _analyse(path, part.extension, catalog, method, printer)
        _store_part(session, job_id, part.number, **outcome)
    with write_transaction(session):
        job = lock_job(session, job_id)
        parts = parts_of(job)
        combined = combine_parts(
            [
                (p.original_filename, p.copies, p.results if p.state == AnalysisState.DONE else None, p.error)
                for p in parts
            ],
            catalog=catalog,
            method=method,
            printer=printer,
        )
        thumbnail = job.parts[0].thumbnail_png if job.parts else None
    session.rollback()
    _store(session, storage, job_id, results=combined, thumbnail=thumbnail)


def _store_part(
    session: Session,
    job_id: str,
    number: int,
    *,
    results: dict | None = None,  # type: ignore[type-arg]
    thumbnail: bytes | None = None,
    error: str | None = None,
) -> None:
    with write_transaction(session):
        job = lock_job(session, job_id)
        row = next((p for p in job.parts if p.number == number), None)
        if row is None:
            return
        row.state = AnalysisState.FAILED if error else AnalysisState.DONE
        row.results = results
        row.error = error
        row.thumbnail_png = thumbnail
        row.analysed_at = utcnow()


def _store(
    session: Session,
    storage: Storage,
    job_id: str | None,
    *,
    results: dict | None = None,  # type: ignore[type-arg]
    thumbnail: bytes | None = None,
    error: str | None = None,
) -> None:
    with write_transaction(session):
        job = lock_job(session, job_id or "")
        analysis = job.analysis or JobAnalysis(job_id=job.id)
        analysis.state = AnalysisState.FAILED if error else AnalysisState.DONE
        analysis.results = results
        analysis.error = error
        analysis.thumbnail_png = thumbnail
        analysis.analysed_at = utcnow()
        session.add(analysis)
        session.flush()
        # Under the job's row lock no move is half-done, so metadata_path is where the sidecar is.
        if job.metadata_path:
            sidecar = storage.resolve(job.metadata_path)
            if sidecar.is_file():
                storage.write_atomic(sidecar, storage.encode_sidecar(sidecar_record(job)))
