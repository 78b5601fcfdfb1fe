"""The upload-analysis task: analyse a job's model in the worker and keep the result with the job and its sidecar."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from printlab.clock import utcnow
from printlab.db import write_transaction
from printlab.domain.naming import extension_of
from printlab.models import AnalysisState, Job, JobAnalysis, Task
from printlab.services import tasks
from printlab.services.files.storage import Storage, StorageError
from printlab.services.jobs.records import job_folder, lock_job, sidecar_record
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
    """Analyse the task's job. A model that can't be analysed is recorded as FAILED with the reason;
    a file caught mid-move is retried."""
    # Imported here: trimesh and numpy take a moment to load, and only the worker needs them.
    from printlab.services.files.analysis import AnalysisFailed, analyse_with_thumbnail

    job = session.get(Job, task.job_id)
    if job is None:
        return
    try:
        path = model_path(storage, job)
    except StorageError:  # a link (never followed) or a path out of the root where the model should be
        path = None
    extension = extension_of(job.original_filename or "")
    catalog = load_catalog(session)
    method, printer = job.material or "", job.printer or ""
    session.rollback()  # don't hold a read transaction open during the heavy work
    if path is None:
        _store(session, storage, task.job_id, error="The model file is no longer on the lab's storage.")
        return
    if not path.is_file():
        raise tasks.RetryLater("model file not found (moved while analysing?)")
    try:
        results, thumbnail = analyse_with_thumbnail(
            path, extension, catalog=catalog, method=method, printer=printer
        )
    except AnalysisFailed as exc:
        _store(session, storage, task.job_id, error=str(exc))
        return
    except FileNotFoundError as exc:
        raise tasks.RetryLater("model file moved while analysing") from exc
    _store(session, storage, task.job_id, results=results, thumbnail=thumbnail)


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
